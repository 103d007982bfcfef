"""``sla.clock`` against a slow, obviously right reference, around real DST changes.

The reference walks the UTC timeline minute by minute, reads each minute on the calendar's
local wall clock and counts it when that reading (date, weekday, time of day) lies in an opening
range of its weekday and the date is not a holiday. Nothing else: no intervals, no folds. Every
zone used changes its offset at whole UTC minutes and all offsets are whole minutes, so a UTC
minute reads as one local minute and minute steps are exact.

The calendars are drawn from a fixed seed (the test is deterministic) around each offset change
of 2026 in zones that change at midnight (Havana, Santiago, Beirut), by 30 minutes (Lord Howe),
at a 45-minute offset (Chatham), and in New York and Berlin: split hours, ranges starting or
ending inside the skipped or repeated hour, 24:00 ends, and holidays on the DST day.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, time, timedelta
from itertools import accumulate
from zoneinfo import ZoneInfo

import pytest

from sla.clock import Calendar, OpeningRange, add_business_minutes, business_time_between, is_open

ZONES = [
    "America/Havana",
    "America/Santiago",
    "Asia/Beirut",
    "Australia/Lord_Howe",
    "Pacific/Chatham",
    "America/New_York",
    "Europe/Berlin",
]
MINUTE = timedelta(minutes=1)
#: Local days walked around each offset change: the day before, the day itself, the day after.
WINDOW_DAYS = 3
CALENDARS_PER_CHANGE = 10
CHECKS_PER_CALENDAR = 12


def offset_changes(zone: ZoneInfo, year: int) -> list[datetime]:
    """The instants (UTC) at which ``zone`` changes its UTC offset in ``year``, minute by minute
    inside each hour whose two ends read different offsets."""
    found = []
    instant = datetime(year, 1, 1, tzinfo=UTC)
    while instant.year == year:
        after = instant + timedelta(hours=1)
        if instant.astimezone(zone).utcoffset() != after.astimezone(zone).utcoffset():
            change = next(
                instant + m * MINUTE
                for m in range(1, 61)
                if (instant + m * MINUTE).astimezone(zone).utcoffset() != instant.astimezone(zone).utcoffset()
            )
            found.append(change)
        instant = after
    return found


def reference_open_minutes(cal: Calendar, first: datetime, count: int) -> list[bool]:
    """For each UTC minute from ``first``: is its local wall-clock reading inside an opening range?"""
    zone = ZoneInfo(cal.tz)
    flags = []
    for i in range(count):
        local = (first + i * MINUTE).astimezone(zone)
        minute_of_day = local.hour * 60 + local.minute
        flags.append(
            local.date() not in cal.holidays
            and any(
                r.weekday == local.weekday()
                and r.start_offset_us // 60_000_000 <= minute_of_day < r.end_offset_us // 60_000_000
                for r in cal.ranges
            )
        )
    return flags


def random_calendar(rng: random.Random, tz: str, change: datetime) -> Calendar:
    """Up to three ranges on each weekday, cut at quarter hours (or any minute), 24:00 allowed;
    on the days of the change, cuts are often inside or next to the skipped or repeated time."""
    zone = ZoneInfo(tz)
    before, after = (change - MINUTE).astimezone(zone), change.astimezone(zone)
    change_day = after.date()
    # Wall readings just before and at the change, and around them (the repeated or skipped span).
    near: dict[int, set[int]] = {before.weekday(): set(), after.weekday(): set()}
    for reading in (before + MINUTE, after):
        for shift in (-30, -15, 0, 15, 30):
            minute = reading.hour * 60 + reading.minute + shift
            if 0 <= minute <= 1440:
                near.setdefault(reading.weekday(), set()).add(minute)
    found = []
    for weekday in range(7):
        cut_count = rng.choice([0, 2, 2, 4, 6])
        pool = {q * 15 for q in range(97)} if rng.random() < 0.8 else set(range(1441))
        cuts = set(rng.sample(sorted(pool), cut_count))
        if len(near.get(weekday, ())) >= 2 and rng.random() < 0.7:
            cuts ^= set(rng.sample(sorted(near[weekday]), 2))
        cuts = sorted(cuts)
        for lo, hi in zip(cuts[::2], cuts[1::2], strict=False):  # an odd last cut is dropped
            end = time(0) if hi == 1440 else time(hi // 60, hi % 60)
            found.append(OpeningRange(weekday, time(lo // 60, lo % 60), end))
    if not found:
        found.append(OpeningRange(change_day.weekday(), time(0), time(0)))
    holidays = {d for d in (before.date(), change_day, change_day + timedelta(days=1)) if rng.random() < 0.2}
    return Calendar(tz, tuple(found), holidays=frozenset(holidays))


def cases() -> list[tuple[str, datetime]]:
    return [(tz, change) for tz in ZONES for change in offset_changes(ZoneInfo(tz), 2026)]


def test_every_zone_changes_its_offset_twice_in_2026() -> None:
    # Guards the fixture: a zone that stopped observing DST would make its cases vacuous.
    per_zone = {tz: sum(1 for zone, _ in cases() if zone == tz) for tz in ZONES}
    assert per_zone == dict.fromkeys(ZONES, 2)


@pytest.mark.parametrize(("tz", "change"), cases(), ids=lambda v: v if isinstance(v, str) else v.isoformat())
def test_matches_the_minute_by_minute_reference_around_offset_changes(tz: str, change: datetime) -> None:
    zone = ZoneInfo(tz)
    rng = random.Random(f"{tz} {change}")  # fixed seed per case: deterministic
    change_day = change.astimezone(zone).date()
    first = datetime.combine(change_day - timedelta(days=1), time(), tzinfo=zone).astimezone(UTC)
    count = WINDOW_DAYS * 24 * 60
    for _ in range(CALENDARS_PER_CHANGE):
        cal = random_calendar(rng, tz, change)
        flags = reference_open_minutes(cal, first, count)
        open_before = [0, *accumulate(flags)]  # open_before[i]: open minutes in [first, first + i)
        for _ in range(CHECKS_PER_CALENDAR):
            i, j = sorted(rng.sample(range(count + 1), 2))
            start, end = first + i * MINUTE, first + j * MINUTE
            assert business_time_between(cal, start, end) == (open_before[j] - open_before[i]) * MINUTE, (
                cal,
                start,
                end,
            )
            available = open_before[count] - open_before[i]
            if available:
                n = rng.randint(1, available)
                # The n-th open minute from i ends where the n minutes run out.
                k = next(m for m in range(i, count) if open_before[m + 1] - open_before[i] == n)
                assert add_business_minutes(cal, start, n) == first + (k + 1) * MINUTE, (cal, start, n)
            probe = rng.randrange(count)
            assert is_open(cal, first + probe * MINUTE) == flags[probe], (cal, first + probe * MINUTE)


@pytest.mark.parametrize(
    ("cal", "start", "minutes", "due"),
    [
        # The example: open Sundays 00:00-01:00; 01:59 EDT on the fall-back day reads
        # outside the range, so the next open minute is the next Sunday 00:00 EST.
        (
            Calendar("America/New_York", (OpeningRange(6, time(0), time(1)),)),
            datetime(2026, 11, 1, 1, 59, tzinfo=ZoneInfo("America/New_York")),
            1,
            datetime(2026, 11, 8, 5, 1, tzinfo=UTC),
        ),
        # Havana falls back from 01:00 CDT to 00:00 CST on Sun 2026-11-01: a range 00:30-01:00
        # holds both passes of 00:30-01:00 (04:30-05:00 and 05:30-06:00 UTC), not the hour between.
        (
            Calendar("America/Havana", (OpeningRange(6, time(0, 30), time(1)),)),
            datetime(2026, 11, 1, 4, 59, tzinfo=UTC),
            2,
            datetime(2026, 11, 1, 5, 31, tzinfo=UTC),
        ),
    ],
)
def test_hand_checked_fall_back_examples(cal: Calendar, start: datetime, minutes: int, due: datetime) -> None:
    assert add_business_minutes(cal, start, minutes) == due
