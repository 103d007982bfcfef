"""Tests for the pure business-time arithmetic in ``sla.clock``.

Hand-checked cases state the expected instant and how it was worked out; property tests
(hypothesis) check the algebra over random calendars, zones, holidays and starts.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sla.clock import (
    MAX_CLOSED_DAYS,
    Calendar,
    OpeningRange,
    add_business_minutes,
    add_business_time,
    business_time_between,
    holiday_dates,
    is_open,
    next_opening,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
MICRO = timedelta(microseconds=1)
MON_FRI = range(5)


def _t(text: str) -> time:
    # "24:00" is how humans write end of day; the API spells it time(0, 0).
    return time(0) if text == "24:00" else time.fromisoformat(text)


def ranges(days: Iterable[int], *spans: tuple[str, str]) -> tuple[OpeningRange, ...]:
    return tuple(OpeningRange(day, _t(a), _t(b)) for day in days for a, b in spans)


def at(zone: ZoneInfo, y: int, mo: int, d: int, h: int = 0, mi: int = 0, *, fold: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=zone, fold=fold)


def utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, s, tzinfo=UTC)


NINE_TO_SIX_BERLIN = Calendar("Europe/Berlin", ranges(MON_FRI, ("09:00", "18:00")))


# --------------------------------------------------------------------------- weekends & holidays


def test_weekend_is_skipped() -> None:
    # Fri 2026-01-16 17:30 CET: 30 min until 18:00, weekend closed, remaining 30 min from
    # Mon 2026-01-19 09:00 CET -> 09:30 CET = 08:30 UTC.
    result = add_business_minutes(NINE_TO_SIX_BERLIN, at(BERLIN, 2026, 1, 16, 17, 30), 60)
    assert result == utc(2026, 1, 19, 8, 30)
    assert result.tzinfo is UTC
    assert result.astimezone(BERLIN).replace(tzinfo=None) == datetime(2026, 1, 19, 9, 30)  # noqa: DTZ001


def test_german_public_holidays_from_holidays_library() -> None:
    bavaria = holiday_dates("DE", "BY", [2026])
    assert date(2026, 4, 3) in bavaria  # Good Friday
    assert date(2026, 4, 6) in bavaria  # Easter Monday
    cal = Calendar("Europe/Berlin", ranges(MON_FRI, ("09:00", "18:00")), holidays=bavaria)
    # Thu 2026-04-02 17:00 CEST: 60 min until 18:00. Fri (Good Friday), the weekend and Mon
    # (Easter Monday) are closed; remaining 60 min from Tue 2026-04-07 09:00 CEST -> 10:00 CEST
    # = 08:00 UTC.
    assert add_business_minutes(cal, at(BERLIN, 2026, 4, 2, 17), 120) == utc(2026, 4, 7, 8)


def test_custom_holiday_dates_combine_with_library_dates() -> None:
    company_day_off = date(2026, 4, 7)
    cal = Calendar(
        "Europe/Berlin",
        ranges(MON_FRI, ("09:00", "18:00")),
        holidays=holiday_dates("DE", "BY", [2026]) | {company_day_off},
    )
    # As above, but Tue 2026-04-07 is closed too: Wed 2026-04-08 10:00 CEST = 08:00 UTC.
    assert add_business_minutes(cal, at(BERLIN, 2026, 4, 2, 17), 120) == utc(2026, 4, 8, 8)


def test_holiday_dates_subdivision_and_errors() -> None:
    assert date(2026, 1, 6) in holiday_dates("DE", "BY", [2026])  # Epiphany is Bavarian only
    assert date(2026, 1, 6) not in holiday_dates("DE", None, [2026])
    several_years = holiday_dates("DE", None, range(2025, 2029))
    assert {d.year for d in several_years} == {2025, 2026, 2027, 2028}
    with pytest.raises(ValueError, match="XX"):
        holiday_dates("XX", None, [2026])
    with pytest.raises(ValueError, match="ZZ"):
        holiday_dates("DE", "ZZ", [2026])


def test_start_on_a_holiday_counts_from_next_opening() -> None:
    cal = Calendar("UTC", ranges(MON_FRI, ("09:00", "17:00")), holidays=frozenset({date(2026, 1, 19)}))
    # Mon 2026-01-19 10:00 is a holiday -> counting starts Tue 09:00 -> 09:05.
    assert add_business_minutes(cal, utc(2026, 1, 19, 10), 5) == utc(2026, 1, 20, 9, 5)
    assert not is_open(cal, utc(2026, 1, 19, 10))
    assert next_opening(cal, utc(2026, 1, 19, 10)) == utc(2026, 1, 20, 9)


# --------------------------------------------------------------------------- split hours, edges


SPLIT = Calendar("UTC", ranges(MON_FRI, ("08:00", "12:00"), ("13:00", "18:00")))


@pytest.mark.parametrize(
    ("start", "minutes", "expected"),
    [
        # Mon 11:30 + 60: 30 min until 12:00, lunch closed, 30 min from 13:00 -> 13:30.
        (utc(2026, 1, 19, 11, 30), 60, utc(2026, 1, 19, 13, 30)),
        # Mon 11:30 + 30 runs out exactly at 12:00: the closing instant, not 13:00.
        (utc(2026, 1, 19, 11, 30), 30, utc(2026, 1, 19, 12)),
        # Starting during lunch counts from 13:00.
        (utc(2026, 1, 19, 12, 30), 10, utc(2026, 1, 19, 13, 10)),
        # A full day is 4 h + 5 h = 540 min: Mon 08:00 + 540 -> Mon 18:00 (closing included).
        (utc(2026, 1, 19, 8), 540, utc(2026, 1, 19, 18)),
        # One more minute -> Tue 08:01.
        (utc(2026, 1, 19, 8), 541, utc(2026, 1, 20, 8, 1)),
    ],
)
def test_split_opening_hours(start: datetime, minutes: int, expected: datetime) -> None:
    assert add_business_minutes(SPLIT, start, minutes) == expected


NINE_TO_SIX_UTC = Calendar("UTC", ranges(MON_FRI, ("09:00", "18:00")))


@pytest.mark.parametrize(
    ("start", "minutes", "expected"),
    [
        # Before opening: Mon 06:00 + 15 -> 09:15.
        (utc(2026, 1, 19, 6), 15, utc(2026, 1, 19, 9, 15)),
        # After closing: Mon 20:00 + 15 -> Tue 09:15.
        (utc(2026, 1, 19, 20), 15, utc(2026, 1, 20, 9, 15)),
        # Exactly at opening.
        (utc(2026, 1, 19, 9), 15, utc(2026, 1, 19, 9, 15)),
        # Runs out exactly at closing: Mon 17:00 + 60 -> Mon 18:00, not Tue 09:00.
        (utc(2026, 1, 19, 17), 60, utc(2026, 1, 19, 18)),
        # Starting at the closing instant is closed: Mon 18:00 + 1 -> Tue 09:01.
        (utc(2026, 1, 19, 18), 1, utc(2026, 1, 20, 9, 1)),
        # Zero minutes returns the start unchanged even when closed (Saturday).
        (utc(2026, 1, 24, 3, 4, 5), 0, utc(2026, 1, 24, 3, 4, 5)),
        # Fractional minutes: 0.5 min = 30 s.
        (utc(2026, 1, 19, 9), 0.5, utc(2026, 1, 19, 9, 0, 30)),
        (utc(2026, 1, 19, 17, 59), 1.25, utc(2026, 1, 20, 9, 0, 15)),
    ],
)
def test_start_and_end_edges(start: datetime, minutes: float, expected: datetime) -> None:
    assert add_business_minutes(NINE_TO_SIX_UTC, start, minutes) == expected


def test_zero_minutes_converts_start_to_utc() -> None:
    start = at(BERLIN, 2026, 1, 24, 12)  # Saturday, closed
    result = add_business_minutes(NINE_TO_SIX_BERLIN, start, 0)
    assert result == start
    assert result.tzinfo is UTC


def test_is_open_and_next_opening() -> None:
    assert is_open(SPLIT, utc(2026, 1, 19, 8))  # opening instant is open
    assert is_open(SPLIT, utc(2026, 1, 19, 11, 59))
    assert not is_open(SPLIT, utc(2026, 1, 19, 12))  # closing instant is closed
    assert not is_open(SPLIT, utc(2026, 1, 24, 10))  # Saturday
    assert next_opening(SPLIT, utc(2026, 1, 19, 12)) == utc(2026, 1, 19, 13)
    assert next_opening(SPLIT, utc(2026, 1, 19, 10)) == utc(2026, 1, 19, 10)  # already open
    # Fri 18:00 -> Mon 2026-01-26 08:00.
    assert next_opening(SPLIT, utc(2026, 1, 23, 18)) == utc(2026, 1, 26, 8)


def test_business_time_between() -> None:
    # A full week of the split calendar: 5 days x 9 h.
    assert business_time_between(SPLIT, utc(2026, 1, 19), utc(2026, 1, 26)) == timedelta(hours=45)
    # Mon 11:00-14:00 spans lunch: 1 h + 1 h.
    assert business_time_between(SPLIT, utc(2026, 1, 19, 11), utc(2026, 1, 19, 14)) == timedelta(hours=2)
    assert business_time_between(SPLIT, utc(2026, 1, 19, 14), utc(2026, 1, 19, 11)) == timedelta(0)
    assert business_time_between(SPLIT, utc(2026, 1, 19, 14), utc(2026, 1, 19, 14)) == timedelta(0)


def test_add_business_time_with_timedelta() -> None:
    # Mon 17:59:59.5 + 1.5 s: 0.5 s until 18:00, then 1 s from Tue 09:00.
    start = utc(2026, 1, 19, 17, 59, 59) + timedelta(milliseconds=500)
    expected = utc(2026, 1, 20, 9, 0, 1)
    assert add_business_time(NINE_TO_SIX_UTC, start, timedelta(seconds=1.5)) == expected


# --------------------------------------------------------------------------- midnight


def test_range_ending_at_midnight_continues_into_next_day() -> None:
    overnight = Calendar(
        "Europe/Berlin",
        (
            OpeningRange(0, time(18), time(0)),  # Mon 18:00-24:00
            OpeningRange(1, time(0), time(6)),  # Tue 00:00-06:00
            OpeningRange(2, time(20), time(0)),  # Wed 20:00-24:00, nothing after it
        ),
    )
    # Mon 2026-01-19 23:30 CET + 60: 30 min to midnight, 30 min on Tue -> Tue 00:30 CET
    # = Mon 23:30 UTC.
    assert add_business_minutes(overnight, at(BERLIN, 2026, 1, 19, 23, 30), 60) == utc(2026, 1, 19, 23, 30)
    # Midnight between the two ranges is open: they merge into one 12 h stretch.
    assert is_open(overnight, at(BERLIN, 2026, 1, 20))
    assert business_time_between(overnight, at(BERLIN, 2026, 1, 19), at(BERLIN, 2026, 1, 21)) == timedelta(
        hours=12
    )
    # Wed 23:00 CET + 60 runs out at Thu 00:00 CET = Wed 23:00 UTC, the closing instant.
    result = add_business_minutes(overnight, at(BERLIN, 2026, 1, 21, 23), 60)
    assert result == at(BERLIN, 2026, 1, 22)
    assert not is_open(overnight, result)
    # One more minute: next opening Mon 2026-01-26 18:00 CET -> 18:01 CET = 17:01 UTC.
    assert add_business_minutes(overnight, at(BERLIN, 2026, 1, 21, 23), 61) == utc(2026, 1, 26, 17, 1)


# --------------------------------------------------------------------------- DST


def test_new_york_spring_forward_range_spanning_the_gap() -> None:
    # Sun 2026-03-08: 02:00 EST jumps to 03:00 EDT, so 00:00-06:00 holds 5 real hours.
    cal = Calendar("America/New_York", (OpeningRange(6, time(0), time(6)),))
    start = at(NEW_YORK, 2026, 3, 8)  # 00:00 EST = 05:00 UTC
    assert business_time_between(cal, start, start + timedelta(days=1)) == timedelta(hours=5)
    # +300 min: 00:00-02:00 EST (2 h) then 03:00-06:00 EDT (3 h) -> 06:00 EDT = 10:00 UTC.
    assert add_business_minutes(cal, start, 300) == utc(2026, 3, 8, 10)
    # +150 min: 2 h, then 30 min after 03:00 EDT -> 03:30 EDT = 07:30 UTC.
    assert add_business_minutes(cal, start, 150) == utc(2026, 3, 8, 7, 30)
    # +301 min: next Sunday 2026-03-15 00:01 EDT = 04:01 UTC.
    assert add_business_minutes(cal, start, 301) == utc(2026, 3, 15, 4, 1)


def test_new_york_spring_forward_short_range_and_gap_times() -> None:
    # 01:00-04:00 on the spring-forward day contains only 2 real hours (the spec's example).
    cal = Calendar("America/New_York", (OpeningRange(6, time(1), time(4)),))
    day = at(NEW_YORK, 2026, 3, 8)
    assert business_time_between(cal, day, day + timedelta(days=1)) == timedelta(hours=2)
    # A range opening at 02:30, a wall time that does not exist that day, opens when the gap
    # ends: 03:00 EDT = 07:00 UTC.
    gap_open = Calendar("America/New_York", (OpeningRange(6, time(2, 30), time(5)),))
    assert next_opening(gap_open, day) == utc(2026, 3, 8, 7)
    assert add_business_minutes(gap_open, day, 1) == utc(2026, 3, 8, 7, 1)
    # The following Sunday behaves normally: 02:30 EDT = 06:30 UTC.
    assert next_opening(gap_open, utc(2026, 3, 9)) == utc(2026, 3, 15, 6, 30)
    # A range lying wholly inside the gap is empty that day: next Sunday 02:00 EDT = 06:00 UTC.
    in_gap = Calendar("America/New_York", (OpeningRange(6, time(2), time(2, 30)),))
    assert add_business_minutes(in_gap, day, 1) == utc(2026, 3, 15, 6, 1)


def test_new_york_fall_back_range_spanning_the_repeated_hour() -> None:
    # Sun 2026-11-01: 02:00 EDT falls back to 01:00 EST, so 00:00-03:00 holds 4 real hours:
    # 00:00 EDT = 04:00 UTC until 03:00 EST = 08:00 UTC.
    cal = Calendar("America/New_York", (OpeningRange(6, time(0), time(3)),))
    start = at(NEW_YORK, 2026, 11, 1)
    assert business_time_between(cal, start, start + timedelta(days=1)) == timedelta(hours=4)
    assert add_business_minutes(cal, start, 240) == utc(2026, 11, 1, 8)
    # +150 min = 06:30 UTC = 01:30 EST, i.e. the second 01:30 of the day.
    result = add_business_minutes(cal, start, 150)
    assert result == utc(2026, 11, 1, 6, 30)
    # (Aware == across zones is always False for ambiguous/imaginary local times, PEP 495, so
    # compare in UTC.)
    assert result == at(NEW_YORK, 2026, 11, 1, 1, 30, fold=1).astimezone(UTC)


def test_new_york_fall_back_ambiguous_end_closes_at_second_occurrence() -> None:
    # 00:00-01:30 on fall-back day counts the instants reading 00:00-01:30: 00:00-01:30 EDT
    # (04:00-05:30 UTC) and the second 01:00-01:30 (EST, 06:00-06:30 UTC), so 2 real hours; the
    # first 01:30-02:00 EDT (05:30-06:00 UTC) reads outside the range and is closed.
    cal = Calendar("America/New_York", (OpeningRange(6, time(0), time(1, 30)),))
    start = at(NEW_YORK, 2026, 11, 1)
    assert business_time_between(cal, start, start + timedelta(days=1)) == timedelta(hours=2)
    assert not is_open(cal, utc(2026, 11, 1, 5, 45))
    assert next_opening(cal, utc(2026, 11, 1, 5, 30)) == utc(2026, 11, 1, 6)
    assert add_business_minutes(cal, start, 100) == utc(2026, 11, 1, 6, 10)
    # An ambiguous start opens at its first occurrence: 01:15 EDT = 05:15 UTC.
    late = Calendar("America/New_York", (OpeningRange(6, time(1, 15), time(3)),))
    assert next_opening(late, start) == utc(2026, 11, 1, 5, 15)


def test_new_york_24h_sunday_range_on_both_dst_days() -> None:
    sunday = Calendar("America/New_York", (OpeningRange(6, time(0), time(0)),))
    spring = at(NEW_YORK, 2026, 3, 8)
    fall = at(NEW_YORK, 2026, 11, 1)
    assert business_time_between(sunday, spring, spring + timedelta(days=2)) == timedelta(hours=23)
    assert business_time_between(sunday, fall, fall + timedelta(days=2)) == timedelta(hours=25)
    # Fall-back Sunday 00:00 EDT (04:00 UTC) + 25 h runs out exactly at Mon 00:00 EST = 05:00 UTC.
    assert add_business_minutes(sunday, fall, 25 * 60) == utc(2026, 11, 2, 5)


def test_new_york_nine_to_five_across_dst_weeks() -> None:
    cal = Calendar("America/New_York", ranges(MON_FRI, ("09:00", "17:00")))
    # Fri 2026-03-06 16:00 EST: 60 min to 17:00; the weekend contains the spring-forward; then
    # Mon 2026-03-09 09:00 EDT + 60 -> 10:00 EDT = 14:00 UTC (not 15:00, the EST reading).
    assert add_business_minutes(cal, at(NEW_YORK, 2026, 3, 6, 16), 120) == utc(2026, 3, 9, 14)
    # Fri 2026-10-30 16:00 EDT + 120 -> Mon 2026-11-02 10:00 EST = 15:00 UTC.
    assert add_business_minutes(cal, at(NEW_YORK, 2026, 10, 30, 16), 120) == utc(2026, 11, 2, 15)
    # A DST week still holds exactly 5 x 8 h of business time.
    week = (at(NEW_YORK, 2026, 3, 2), at(NEW_YORK, 2026, 3, 16))
    assert business_time_between(cal, *week) == timedelta(hours=80)


def test_berlin_spring_forward() -> None:
    # Sun 2026-03-29: 02:00 CET jumps to 03:00 CEST. Range 00:00-06:00 holds 5 real hours:
    # 00:00 CET = Sat 23:00 UTC until 06:00 CEST = 04:00 UTC.
    cal = Calendar("Europe/Berlin", (OpeningRange(6, time(0), time(6)),))
    start = at(BERLIN, 2026, 3, 29)
    assert business_time_between(cal, start, start + timedelta(days=1)) == timedelta(hours=5)
    # +150 min: 00:00-02:00 CET (2 h), then 30 min after 03:00 CEST -> 03:30 CEST = 01:30 UTC.
    assert add_business_minutes(cal, start, 150) == utc(2026, 3, 29, 1, 30)
    assert add_business_minutes(cal, start, 300) == utc(2026, 3, 29, 4)


def test_berlin_fall_back() -> None:
    # Sun 2026-10-25: 03:00 CEST falls back to 02:00 CET. Range 00:00-06:00 holds 7 real hours:
    # 00:00 CEST = Sat 22:00 UTC until 06:00 CET = 05:00 UTC.
    cal = Calendar("Europe/Berlin", (OpeningRange(6, time(0), time(6)),))
    start = at(BERLIN, 2026, 10, 25)
    assert start == utc(2026, 10, 24, 22)
    assert business_time_between(cal, start, start + timedelta(days=1)) == timedelta(hours=7)
    assert add_business_minutes(cal, start, 420) == utc(2026, 10, 25, 5)
    # +270 min = 02:30 UTC = 03:30 CET.
    assert add_business_minutes(cal, start, 270) == utc(2026, 10, 25, 2, 30)
    # Ending inside the repeated hour: 00:00-02:30 CEST (22:00-00:30 UTC) and the second
    # 02:00-02:30 (CET, 01:00-01:30 UTC) read inside the range, 02:30-03:00 CEST does not: 3 h.
    short = Calendar("Europe/Berlin", (OpeningRange(6, time(0), time(2, 30)),))
    assert business_time_between(short, start, start + timedelta(days=1)) == timedelta(hours=3)
    assert add_business_minutes(short, start, 150) == utc(2026, 10, 25, 0, 30)
    assert add_business_minutes(short, start, 151) == utc(2026, 10, 25, 1, 1)


def test_new_york_fall_back_range_ending_in_the_repeated_hour_reopens_next_week() -> None:
    # Sundays 00:00-01:00; 01:59 EDT on the fall-back day reads outside the range, and so does
    # everything until the next Sunday 00:00 (the second 01:00-02:00 is outside too).
    cal = Calendar("America/New_York", (OpeningRange(6, time(0), time(1)),))
    start = at(NEW_YORK, 2026, 11, 1, 1, 59)
    assert add_business_minutes(cal, start, 1) == at(NEW_YORK, 2026, 11, 8, 0, 1).astimezone(UTC)
    # A range starting inside the repeated hour opens at its first occurrence and skips the
    # second pass up to its start: 01:30-03:00 holds 2 h (01:30-02:00 EDT, 01:30-03:00 EST).
    late = Calendar("America/New_York", (OpeningRange(6, time(1, 30), time(3)),))
    day = at(NEW_YORK, 2026, 11, 1)
    assert business_time_between(late, day, day + timedelta(days=1)) == timedelta(hours=2)


def test_berlin_24h_sunday_and_nine_to_five_weeks() -> None:
    sunday = Calendar("Europe/Berlin", (OpeningRange(6, time(0), time(0)),))
    spring, fall = at(BERLIN, 2026, 3, 29), at(BERLIN, 2026, 10, 25)
    assert business_time_between(sunday, spring, spring + timedelta(days=1)) == timedelta(hours=23)
    assert business_time_between(sunday, fall, fall + timedelta(days=1)) == timedelta(hours=25)
    cal = Calendar("Europe/Berlin", ranges(MON_FRI, ("09:00", "17:00")))
    # Fri 2026-03-27 16:00 CET + 120 -> Mon 2026-03-30 10:00 CEST = 08:00 UTC.
    assert add_business_minutes(cal, at(BERLIN, 2026, 3, 27, 16), 120) == utc(2026, 3, 30, 8)
    # Fri 2026-10-23 16:00 CEST + 120 -> Mon 2026-10-26 10:00 CET = 09:00 UTC.
    assert add_business_minutes(cal, at(BERLIN, 2026, 10, 23, 16), 120) == utc(2026, 10, 26, 9)


def test_start_given_in_another_zone() -> None:
    # Mon 2026-01-19 03:30 EST = 09:30 CET, open in Berlin: + 30 -> 10:00 CET = 09:00 UTC.
    assert add_business_minutes(NINE_TO_SIX_BERLIN, at(NEW_YORK, 2026, 1, 19, 3, 30), 30) == utc(
        2026, 1, 19, 9
    )


# --------------------------------------------------------------------------- long spans, 24x7


def test_long_span_twenty_thousand_minutes() -> None:
    cal = Calendar("UTC", ranges(MON_FRI, ("09:00", "17:00")))
    # 20,000 / 480 = 41 full business days + 320 min. From Mon 2026-01-05 09:00: 40 days fill
    # eight weeks up to Fri 2026-02-27, day 41 is Mon 2026-03-02, and the last 320 min run from
    # Tue 2026-03-03 09:00 -> 14:20.
    start = utc(2026, 1, 5, 9)
    result = add_business_minutes(cal, start, 20_000)
    assert result == utc(2026, 3, 3, 14, 20)
    assert business_time_between(cal, start, result) == timedelta(minutes=20_000)


def test_long_span_over_years_of_holidays_is_exact() -> None:
    bavaria = holiday_dates("DE", "BY", range(2026, 2030))
    cal = Calendar("Europe/Berlin", ranges(MON_FRI, ("08:00", "12:00"), ("13:00", "18:00")), holidays=bavaria)
    start = at(BERLIN, 2026, 1, 1)
    result = add_business_minutes(cal, start, 500_000)  # ~926 business days, well over 3 years
    assert business_time_between(cal, start, result) == timedelta(minutes=500_000)
    assert result.astimezone(BERLIN).date().year == 2029
    assert result.astimezone(BERLIN).date() not in bavaria


def test_twenty_four_seven_is_real_time() -> None:
    cal = Calendar.twenty_four_seven("Europe/Berlin")
    # Across the Berlin spring-forward: 01:00 CET = 00:00 UTC, + 120 min real time = 02:00 UTC.
    start = at(BERLIN, 2026, 3, 29, 1)
    assert add_business_minutes(cal, start, 120) == utc(2026, 3, 29, 2)
    # Aware arithmetic on a ZoneInfo datetime is wall-clock arithmetic; real time needs UTC.
    start_utc = start.astimezone(UTC)
    assert add_business_minutes(cal, start, 20_000) == start_utc + timedelta(minutes=20_000)
    assert business_time_between(cal, start, start_utc + timedelta(days=3)) == timedelta(days=3)
    assert is_open(cal, start)
    assert next_opening(cal, start) == start
    assert Calendar.twenty_four_seven() == Calendar("UTC", always_open=True)


# --------------------------------------------------------------------------- invalid input


def test_naive_datetimes_are_rejected() -> None:
    naive = datetime(2026, 1, 19, 9)  # noqa: DTZ001 - deliberately naive
    with pytest.raises(ValueError, match="timezone-aware"):
        add_business_minutes(NINE_TO_SIX_UTC, naive, 10)
    with pytest.raises(ValueError, match="timezone-aware"):
        business_time_between(NINE_TO_SIX_UTC, utc(2026, 1, 19), naive)
    with pytest.raises(ValueError, match="timezone-aware"):
        is_open(NINE_TO_SIX_UTC, naive)
    with pytest.raises(ValueError, match="timezone-aware"):
        next_opening(NINE_TO_SIX_UTC, naive)


@pytest.mark.parametrize("minutes", [-1, -0.5, float("nan"), float("inf")])
def test_negative_or_non_finite_minutes_are_rejected(minutes: float) -> None:
    with pytest.raises(ValueError, match="minutes"):
        add_business_minutes(NINE_TO_SIX_UTC, utc(2026, 1, 19), minutes)


def test_negative_timedelta_is_rejected() -> None:
    with pytest.raises(ValueError, match=">= 0"):
        add_business_time(NINE_TO_SIX_UTC, utc(2026, 1, 19), timedelta(seconds=-1))


def test_overlapping_ranges_are_rejected() -> None:
    with pytest.raises(ValueError, match="overlap"):
        Calendar("UTC", ranges([0], ("08:00", "12:00"), ("11:00", "14:00")))
    # Touching ranges and the same hours on different weekdays are fine.
    Calendar("UTC", ranges([0, 1], ("08:00", "12:00"), ("12:00", "14:00")))


@pytest.mark.parametrize(
    ("weekday", "start", "end"),
    [(0, time(12), time(12)), (0, time(13), time(12)), (7, time(8), time(9)), (-1, time(8), time(9))],
)
def test_invalid_ranges_are_rejected(weekday: int, start: time, end: time) -> None:
    with pytest.raises(ValueError, match="weekday|start < end"):
        OpeningRange(weekday, start, end)


def test_unknown_time_zone_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown time zone"):
        Calendar("Mars/Olympus_Mons", ranges(MON_FRI, ("09:00", "17:00")))
    with pytest.raises(ValueError, match="time zone"):
        Calendar("", ranges(MON_FRI, ("09:00", "17:00")))


def test_calendar_that_never_opens_is_rejected() -> None:
    with pytest.raises(ValueError, match="never opens"):
        Calendar("UTC", ())
    with pytest.raises(ValueError, match="24x7"):
        Calendar("UTC", ranges([0], ("09:00", "17:00")), always_open=True)


def test_calendar_closed_for_years_raises_instead_of_looping() -> None:
    # Open on Mondays only, and every Monday for four years is a holiday.
    mondays = frozenset(date(2026, 1, 5) + timedelta(weeks=w) for w in range(4 * 53))
    cal = Calendar("UTC", ranges([0], ("09:00", "17:00")), holidays=mondays)
    with pytest.raises(ValueError, match="closed for more than"):
        add_business_minutes(cal, utc(2026, 1, 1), 1)
    with pytest.raises(ValueError, match="closed for more than"):
        next_opening(cal, utc(2026, 1, 1))
    # Bounded queries still answer.
    assert business_time_between(cal, utc(2026, 1, 1), utc(2027, 1, 1)) == timedelta(0)
    assert not is_open(cal, utc(2026, 1, 5, 10))
    assert MAX_CLOSED_DAYS > 3 * 365


def test_calendar_normalises_and_hashes() -> None:
    a = Calendar("UTC", ranges([1, 0], ("13:00", "18:00"), ("08:00", "12:00")), holidays={date(2026, 1, 1)})
    b = Calendar("UTC", ranges([0, 1], ("08:00", "12:00"), ("13:00", "18:00")), holidays=[date(2026, 1, 1)])
    assert a == b
    assert hash(a) == hash(b)
    assert isinstance(a.holidays, frozenset)


# --------------------------------------------------------------------------- property tests

ZONES = ["America/New_York", "Europe/Berlin", "Australia/Lord_Howe", "Asia/Kolkata", "UTC"]
FIXED_OFFSET_ZONES = ["Asia/Kolkata", "UTC"]

# Breakpoints: mostly quarter hours (which hit DST transitions), sometimes any minute or 24:00.
_minute_of_day = st.one_of(st.integers(0, 96).map(lambda q: q * 15), st.integers(0, 1440))


@st.composite
def day_ranges(draw: st.DrawFn, weekday: int) -> list[OpeningRange]:
    cuts = sorted(draw(st.sets(_minute_of_day, max_size=6)))
    out = []
    for lo, hi in zip(cuts[::2], cuts[1::2], strict=False):
        end = time(0) if hi == 1440 else time(hi // 60, hi % 60)
        out.append(OpeningRange(weekday, time(lo // 60, lo % 60), end))
    return out


@st.composite
def calendars(draw: st.DrawFn, zones: list[str] = ZONES) -> Calendar:
    tz = draw(st.sampled_from(zones))
    if draw(st.integers(0, 19)) == 0:
        return Calendar.twenty_four_seven(tz)
    found = [r for weekday in range(7) for r in draw(day_ranges(weekday))]
    if not found:
        found = [OpeningRange(draw(st.integers(0, 6)), time(9), time(17))]
    holidays = draw(st.frozensets(st.dates(date(2025, 1, 1), date(2029, 12, 31)), max_size=40))
    return Calendar(tz, tuple(found), holidays=holidays)


def weekly_open_minutes(cal: Calendar) -> int:
    if cal.always_open:
        return 7 * 1440
    return sum((r.end_offset_us - r.start_offset_us) // 60_000_000 for r in cal.ranges)


@st.composite
def minutes_for(draw: st.DrawFn, cal: Calendar) -> int:
    # Keep spans to roughly a year so sparse calendars (one minute a week) stay fast.
    return draw(st.integers(0, min(20_000, 50 * weekly_open_minutes(cal))))


starts = st.datetimes(
    min_value=datetime(2025, 1, 1),  # noqa: DTZ001 - hypothesis bounds are naive by contract
    max_value=datetime(2028, 12, 31),  # noqa: DTZ001
    timezones=st.sampled_from([ZoneInfo(z) for z in ZONES]),
)

PROPERTY_SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY_SETTINGS
@given(data=st.data(), cal=calendars(), start=starts)
def test_adding_a_then_b_equals_adding_a_plus_b(data: st.DataObject, cal: Calendar, start: datetime) -> None:
    a = data.draw(minutes_for(cal), label="a")
    b = data.draw(minutes_for(cal), label="b")
    assert add_business_minutes(cal, add_business_minutes(cal, start, a), b) == add_business_minutes(
        cal, start, a + b
    )


@PROPERTY_SETTINGS
@given(data=st.data(), cal=calendars(), start=starts)
def test_result_lies_in_an_opening_range_closing_instant_included(
    data: st.DataObject, cal: Calendar, start: datetime
) -> None:
    n = data.draw(minutes_for(cal), label="n")
    result = add_business_minutes(cal, start, n)
    assert result.tzinfo is UTC
    # Compare in UTC: hypothesis also draws imaginary/ambiguous local starts, which never
    # compare equal across zones (PEP 495).
    start_utc = start.astimezone(UTC)
    assert result >= start_utc
    if n == 0:
        assert result == start_utc
    else:
        # Business time ran right up to the result, so just before it the calendar was open;
        # the result itself is open or the closing instant of that interval.
        assert is_open(cal, result - MICRO)
        closing_instant = not is_open(cal, result)
        assert is_open(cal, result) or closing_instant


@PROPERTY_SETTINGS
@given(data=st.data(), cal=calendars(), start=starts)
def test_business_time_between_start_and_result_equals_n(
    data: st.DataObject, cal: Calendar, start: datetime
) -> None:
    n = data.draw(minutes_for(cal), label="n")
    result = add_business_minutes(cal, start, n)
    assert business_time_between(cal, start, result) == timedelta(minutes=n)


@PROPERTY_SETTINGS
@given(data=st.data(), cal=calendars(), start=starts)
def test_monotonic_in_minutes(data: st.DataObject, cal: Calendar, start: datetime) -> None:
    a = data.draw(minutes_for(cal), label="a")
    b = data.draw(minutes_for(cal), label="b")
    a, b = min(a, b), max(a, b)
    assert add_business_minutes(cal, start, a) <= add_business_minutes(cal, start, b)


@PROPERTY_SETTINGS
@given(
    cal=calendars(),
    start=starts,
    a=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=3)),
    b=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=3)),
)
def test_microsecond_exact_additivity(cal: Calendar, start: datetime, a: timedelta, b: timedelta) -> None:
    middle = add_business_time(cal, start, a)
    assert add_business_time(cal, middle, b) == add_business_time(cal, start, a + b)
    assert business_time_between(cal, start, middle) == a


@PROPERTY_SETTINGS
@given(cal=calendars(), start=starts)
def test_next_opening_is_open_and_nothing_is_skipped(cal: Calendar, start: datetime) -> None:
    opening = next_opening(cal, start)
    start_utc = start.astimezone(UTC)  # see the PEP 495 note above
    assert opening >= start_utc
    assert is_open(cal, opening)
    assert business_time_between(cal, start, opening) == timedelta(0)
    assert is_open(cal, start) == (opening == start_utc)


def _reference_is_open(cal: Calendar, instant: datetime) -> bool:
    """Independent definition for fixed-offset zones: the local wall reading is in a range."""
    local = instant.astimezone(ZoneInfo(cal.tz))
    if local.date() in cal.holidays:
        return False
    minute = local.hour * 60 + local.minute
    return any(
        r.weekday == local.weekday()
        and r.start_offset_us // 60_000_000 <= minute < r.end_offset_us // 60_000_000
        for r in cal.ranges
    )


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.data(),
    cal=calendars(zones=FIXED_OFFSET_ZONES).filter(lambda c: not c.always_open),
    start=st.datetimes(
        min_value=datetime(2025, 1, 1),  # noqa: DTZ001
        max_value=datetime(2028, 12, 31),  # noqa: DTZ001
    ).map(lambda d: d.replace(second=0, microsecond=0, tzinfo=UTC)),
)
def test_matches_minute_by_minute_reference(data: st.DataObject, cal: Calendar, start: datetime) -> None:
    # Without DST, "open" simply means the wall reading is in a range, so stepping minute by
    # minute gives an independent oracle (Kolkata's +05:30 keeps whole minutes aligned).
    n = data.draw(st.integers(1, min(600, 5 * weekly_open_minutes(cal))), label="n")
    instant, counted = start, 0
    while counted < n:
        if _reference_is_open(cal, instant):
            counted += 1
        instant += timedelta(minutes=1)
    assert add_business_minutes(cal, start, n) == instant
