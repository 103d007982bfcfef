"""A tabulated calendar answers exactly as the calendar's own arithmetic does (it tabulates its intervals)."""

from __future__ import annotations

import datetime as dt
from datetime import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sla import clock

WEEKDAYS_9_17 = tuple(clock.OpeningRange(w, time(9), time(17)) for w in range(5))
CALENDARS = {
    "berlin-with-holidays": clock.Calendar(
        tz="Europe/Berlin",
        ranges=WEEKDAYS_9_17,
        holidays=clock.holiday_dates("DE", None, range(2019, 2031)),
    ),
    # Overnight hours (touching ranges merge across midnight) in a zone with DST.
    "new-york-overnight": clock.Calendar(
        tz="America/New_York",
        ranges=tuple(clock.OpeningRange(w, time(20), time(0)) for w in range(5))
        + tuple(clock.OpeningRange(w, time(0), time(2)) for w in range(1, 6)),
    ),
    "split-days": clock.Calendar(
        tz="Asia/Kolkata",
        ranges=tuple(clock.OpeningRange(w, time(9), time(12, 30)) for w in range(6))
        + tuple(clock.OpeningRange(w, time(13, 15), time(18)) for w in range(6)),
    ),
}
instants = st.datetimes(
    min_value=dt.datetime(2020, 1, 1),  # noqa: DTZ001 - hypothesis bounds are naive; results are UTC
    max_value=dt.datetime(2027, 12, 31),  # noqa: DTZ001
    timezones=st.just(dt.UTC),
)
durations = st.timedeltas(min_value=dt.timedelta(0), max_value=dt.timedelta(days=40))


def tabulated(calendar: clock.Calendar) -> clock.TabulatedCalendar:
    return clock.TabulatedCalendar(lambda since, until: calendar)


@pytest.mark.parametrize("name", sorted(CALENDARS))
@settings(max_examples=150, deadline=None)
@given(start=instants, delta=durations)
def test_add_matches_sla_clock(name, start, delta):
    calendar = CALENDARS[name]
    assert tabulated(calendar).add(start, delta) == clock.add_business_time(calendar, start, delta)


@pytest.mark.parametrize("name", sorted(CALENDARS))
@settings(max_examples=150, deadline=None)
@given(start=instants, end=instants)
def test_between_matches_sla_clock(name, start, end):
    calendar = CALENDARS[name]
    assert tabulated(calendar).between(start, end) == clock.business_time_between(calendar, start, end)


def test_one_table_answers_questions_far_apart_in_time():
    calendar = CALENDARS["berlin-with-holidays"]
    table = tabulated(calendar)
    for year in (2026, 2020, 2029, 2021):
        start = dt.datetime(year, 12, 23, 15, tzinfo=dt.UTC)
        delta = dt.timedelta(hours=30)
        assert table.add(start, delta) == clock.add_business_time(calendar, start, delta)


def test_a_tabulated_24x7_calendar_counts_real_time():
    round_the_clock = tabulated(clock.Calendar.twenty_four_seven("Europe/Berlin"))
    start = dt.datetime(2023, 3, 26, 0, 30, tzinfo=dt.UTC)  # the night Berlin skips an hour
    assert round_the_clock.add(start, dt.timedelta(hours=2)) == dt.datetime(2023, 3, 26, 2, 30, tzinfo=dt.UTC)
    assert round_the_clock.between(start, start + dt.timedelta(hours=2)) == dt.timedelta(hours=2)
    assert round_the_clock.between(start, start - dt.timedelta(hours=1)) == dt.timedelta(0)


def test_a_calendar_and_its_table_are_the_same_arithmetic():
    calendar = CALENDARS["new-york-overnight"]
    start = dt.datetime(2026, 11, 1, 3, tzinfo=dt.UTC)  # the fall-back night
    delta = dt.timedelta(hours=7, minutes=5)
    assert calendar.add(start, delta) == tabulated(calendar).add(start, delta)
    end = calendar.add(start, delta)
    assert calendar.between(start, end) == tabulated(calendar).between(start, end) == delta


def test_a_negative_duration_is_refused():
    table = tabulated(CALENDARS["split-days"])
    with pytest.raises(ValueError, match=">= 0"):
        table.add(dt.datetime(2026, 1, 5, tzinfo=dt.UTC), -dt.timedelta(minutes=1))
