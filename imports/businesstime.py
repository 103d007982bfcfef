"""The business-time arithmetic of ``sla.clock``, answered from a precomputed table of open intervals.

Replaying the SLA clocks of a hundred thousand imported cases asks "start + N business minutes"
and "business time between A and B" a million times; ``sla.clock`` walks the calendar day by day
for each question (tens of microseconds each). Here the open intervals of a window of time are
taken once from ``sla.clock`` itself, with the running total of business time before each, so a
question is two binary searches. The answers are the same, to the microsecond
(tests/imports/test_businesstime.py checks them against ``sla.clock``); the window grows on
demand.
"""

from __future__ import annotations

import datetime as dt
from bisect import bisect_left, bisect_right
from collections.abc import Callable

from sla import clock

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_DAY_US = 86_400_000_000
#: The window grows by at least this much (and at least doubles), so growth is rare.
_MIN_GROWTH_US = 400 * _DAY_US
#: Searching further than this for open time means the calendar (almost) never opens.
_MAX_SPAN_US = 60 * 366 * _DAY_US


def _us(value: dt.datetime) -> int:
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _td_us(delta: dt.timedelta) -> int:
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _instant(us: int) -> dt.datetime:
    return _EPOCH + dt.timedelta(microseconds=us)


class BusinessTime:
    """``add`` and ``between`` of one calendar, exact like ``sla.clock``'s functions.

    ``calendar_for(since, until)`` returns the ``sla.clock.Calendar`` to use for instants in that
    range (holidays are looked up for the years involved), e.g. ``sla.calendars.clock_calendar``.
    """

    def __init__(self, calendar_for: Callable[[dt.datetime, dt.datetime], clock.Calendar]) -> None:
        self.calendar_for = calendar_for
        self._from = self._until = 0
        self._lo: list[int] = []
        self._start_sum: list[int] = []  # business time before each interval
        self._end_sum: list[int] = []  # business time up to the end of each interval
        self._hi: list[int] = []
        self._always_open: bool | None = None

    def _build(self, from_us: int, until_us: int) -> None:
        calendar = self.calendar_for(_instant(from_us), _instant(until_us))
        self._always_open = calendar.always_open
        self._from, self._until = from_us, until_us
        self._lo, self._hi, self._start_sum, self._end_sum = [], [], [], []
        if calendar.always_open:
            return
        total = 0
        # The same generator sla.clock's adders walk: merged, sorted, non-empty intervals.
        for lo, hi in clock._open_intervals(calendar, from_us, until_us=until_us):
            self._lo.append(lo)
            self._hi.append(hi)
            self._start_sum.append(total)
            total += hi - lo
            self._end_sum.append(total)

    def _cover(self, lo_us: int, hi_us: int) -> None:
        if self._always_open is not None and self._from <= lo_us and hi_us <= self._until:
            return
        if self._always_open is None:
            start, end = lo_us - _MIN_GROWTH_US // 4, hi_us + _MIN_GROWTH_US
        else:
            growth = max(_MIN_GROWTH_US, self._until - self._from)
            start = min(self._from, lo_us - (growth if lo_us < self._from else 0))
            end = max(self._until, hi_us + (growth if hi_us > self._until else 0))
        if end - start > _MAX_SPAN_US:
            raise ValueError("The calendar stays closed for decades: no business time can be counted.")
        self._build(start, end)

    @property
    def always_open(self) -> bool:
        if self._always_open is None:
            now = dt.datetime.now(dt.UTC)
            self._cover(_us(now), _us(now))
        return bool(self._always_open)

    def add(self, start: dt.datetime, delta: dt.timedelta) -> dt.datetime:
        """Like ``sla.clock.add_business_time(calendar, start, delta)``."""
        if delta < dt.timedelta(0):
            raise ValueError(f"delta must be >= 0, got {delta!r}")
        start_us, amount = _us(start), _td_us(delta)
        if amount == 0:
            return _instant(start_us)
        self._cover(start_us, start_us + amount)
        while True:
            if self._always_open:
                return _instant(start_us + amount)
            i = bisect_right(self._hi, start_us)
            if i < len(self._lo):
                begin = max(self._lo[i], start_us)
                target = self._start_sum[i] + (begin - self._lo[i]) + amount
                # "<=" like sla.clock: running out exactly at closing returns the closing instant.
                j = bisect_left(self._end_sum, target, lo=i)
                if j < len(self._lo):
                    return _instant(self._lo[j] + (target - self._start_sum[j]))
            self._cover(start_us, self._until + 1)

    def between(self, start: dt.datetime, end: dt.datetime) -> dt.timedelta:
        """Like ``sla.clock.business_time_between(calendar, start, end)``."""
        start_us, end_us = _us(start), _us(end)
        if end_us <= start_us:
            return dt.timedelta(0)
        self._cover(start_us, end_us)
        if self._always_open:
            return dt.timedelta(microseconds=end_us - start_us)
        return dt.timedelta(microseconds=self._sum_at(end_us) - self._sum_at(start_us))

    def _sum_at(self, at: int) -> int:
        i = bisect_right(self._lo, at) - 1
        if i < 0:
            return 0
        return self._start_sum[i] + min(at, self._hi[i]) - self._lo[i]


class RoundTheClock:
    """24x7: business time is real time (``sla.clock`` for an always-open calendar)."""

    always_open = True

    def add(self, start: dt.datetime, delta: dt.timedelta) -> dt.datetime:
        if delta < dt.timedelta(0):
            raise ValueError(f"delta must be >= 0, got {delta!r}")
        return _instant(_us(start) + _td_us(delta))

    def between(self, start: dt.datetime, end: dt.datetime) -> dt.timedelta:
        return max(end - start, dt.timedelta(0))


ROUND_THE_CLOCK = RoundTheClock()
