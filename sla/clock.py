"""Pure business-time arithmetic: "start + N minutes of business time in calendar C".

Nothing here touches the database or Django settings; every function is a pure function of its
arguments, so it can be property-tested and reused by the SLA engine, metrics and reports alike.

Model
-----
A :class:`Calendar` is an IANA time zone, weekly opening hours given as local wall-clock ranges
(several per weekday allowed), a set of local holiday dates (closed all day), or ``always_open``
(24x7). Business time is *real elapsed time* (seconds on the UTC timeline) spent inside opening
ranges, so a DST day really is shorter or longer.

DST rule (how a local range becomes real intervals)
---------------------------------------------------
A range ``[start, end)`` on local date ``d`` covers exactly the instants whose local wall-clock
reading lies in ``[d start, d end)``. Consequences:

* spring forward: 01:00-04:00 in America/New_York on 2026-03-08 lasts 2 real hours (the skipped
  hour is not counted at all, and a range lying wholly inside the gap is empty);
* fall back: 00:00-03:00 in America/New_York on 2026-11-01 lasts 4 real hours (the repeated
  hour counts twice), but 00:00-01:30 lasts 2 hours: 00:00-01:30 EDT plus the second 01:00-01:30
  (EST). The part of the repeated hour whose reading lies outside the range is not counted, so
  a range touching the repeated hour may become two real intervals.

Intervals that overlap or touch (e.g. a range ending 24:00 followed by one starting 00:00, or two
ranges around a repeated hour) are merged, so no instant is ever counted twice.

Time is handled internally as integer microseconds since the Unix epoch, so results are exact.

A :class:`Calendar` answers ``add``/``between`` itself; a :class:`TabulatedCalendar` gives the same
answers from a precomputed table of open intervals, for callers that ask many questions of one
calendar (the history import's clock replay).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from fractions import Fraction
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "MAX_CLOSED_DAYS",
    "Calendar",
    "OpeningRange",
    "TabulatedCalendar",
    "add_business_minutes",
    "add_business_time",
    "business_time_between",
    "holiday_dates",
    "is_open",
    "next_opening",
]

_US_PER_SECOND = 1_000_000
_US_PER_MINUTE = 60 * _US_PER_SECOND
_US_PER_DAY = 24 * 60 * _US_PER_MINUTE
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_DAY = timedelta(days=1)

#: Searching for the next opening gives up (ValueError) after this many consecutive closed days,
#: e.g. a calendar whose only weekday is covered by holidays for more than three years.
MAX_CLOSED_DAYS = 3 * 366 + 1


@dataclass(frozen=True)
class OpeningRange:
    """Open on ``weekday`` (0=Monday .. 6=Sunday) from local ``start`` until local ``end``.

    Times are naive local wall-clock times in the calendar's zone. ``end == time(0, 0)`` means
    24:00, i.e. midnight at the end of the day, so ``OpeningRange(0, time(0), time(0))`` is all
    of Monday. Otherwise ``start < end`` is required. Ranges never cross midnight; model
    overnight hours as ``...-24:00`` plus ``00:00-...`` on the next weekday.
    """

    weekday: int
    start: time
    end: time

    def __str__(self) -> str:
        end = "24:00" if self.end_offset_us == _US_PER_DAY else _format_time(self.end)
        return f"{_format_time(self.start)}-{end}"

    def __post_init__(self) -> None:
        if isinstance(self.weekday, bool) or not isinstance(self.weekday, int):
            raise ValueError(f"weekday must be an int 0..6 (0=Monday), got {self.weekday!r}")
        if not 0 <= self.weekday <= 6:
            raise ValueError(f"weekday must be 0..6 (0=Monday), got {self.weekday}")
        for name, value in (("start", self.start), ("end", self.end)):
            if not isinstance(value, time):
                raise ValueError(f"{name} must be a datetime.time, got {value!r}")
            if value.tzinfo is not None:
                raise ValueError(f"{name} must be a naive local time; the calendar carries the zone")
        if self.start_offset_us >= self.end_offset_us:
            raise ValueError(
                f"opening range must have start < end (end 00:00 means 24:00), got "
                f"{self.start.isoformat()}-{self.end.isoformat()} on weekday {self.weekday}"
            )

    @property
    def start_offset_us(self) -> int:
        """Microseconds from local midnight to ``start``."""
        return _time_to_us(self.start)

    @property
    def end_offset_us(self) -> int:
        """Microseconds from local midnight to ``end``; 24:00 (``time(0)``) is a full day."""
        return _time_to_us(self.end) or _US_PER_DAY


@dataclass(frozen=True)
class Calendar:
    """A business calendar: IANA zone + weekly opening ranges + closed holiday dates, or 24x7.

    Guarantees after construction (ValueError otherwise): ``tz`` is a known IANA zone; ranges of
    the same weekday do not overlap (touching is fine); a non-24x7 calendar has at least one
    range; a 24x7 calendar has neither ranges nor holidays. ``ranges`` is normalised to a tuple
    sorted by (weekday, start) and ``holidays`` to a frozenset, so equal calendars compare and
    hash equal. Holidays are local dates; pass dates for every year the arithmetic may reach
    (see :func:`holiday_dates`).
    """

    tz: str
    ranges: tuple[OpeningRange, ...] = ()
    holidays: frozenset[date] = frozenset()
    always_open: bool = False
    _by_weekday: tuple[tuple[OpeningRange, ...], ...] = field(
        init=False, repr=False, compare=False, hash=False
    )

    def __post_init__(self) -> None:
        if not isinstance(self.tz, str) or not self.tz:
            raise ValueError(f"tz must be an IANA time zone name, got {self.tz!r}")
        try:
            ZoneInfo(self.tz)
        except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
            raise ValueError(f"unknown time zone {self.tz!r}") from exc

        for r in self.ranges:
            if not isinstance(r, OpeningRange):
                raise ValueError(f"ranges must contain OpeningRange objects, got {r!r}")
        ranges = tuple(sorted(self.ranges, key=lambda r: (r.weekday, r.start_offset_us)))
        holidays = frozenset(self.holidays)
        for d in holidays:
            # datetime is a date subclass; a datetime here is almost certainly a caller bug.
            if not isinstance(d, date) or isinstance(d, datetime):
                raise ValueError(f"holidays must be datetime.date objects, got {d!r}")
        object.__setattr__(self, "ranges", ranges)
        object.__setattr__(self, "holidays", holidays)

        if self.always_open:
            if ranges or holidays:
                raise ValueError("a 24x7 calendar (always_open=True) cannot have ranges or holidays")
        elif not ranges:
            raise ValueError(
                "calendar has no opening ranges, so it never opens and no due time can be "
                "computed; use Calendar.twenty_four_seven() for round-the-clock service"
            )

        by_weekday: list[list[OpeningRange]] = [[] for _ in range(7)]
        for r in ranges:
            same_day = by_weekday[r.weekday]
            if same_day and same_day[-1].end_offset_us > r.start_offset_us:
                raise ValueError(f"opening ranges overlap on weekday {r.weekday}: {same_day[-1]} and {r}")
            same_day.append(r)
        object.__setattr__(self, "_by_weekday", tuple(tuple(day) for day in by_weekday))

    @classmethod
    def twenty_four_seven(cls, tz: str = "UTC") -> Calendar:
        """A calendar that is always open: business time equals real time."""
        return cls(tz=tz, always_open=True)

    @property
    def zone(self) -> ZoneInfo:
        """The calendar's time zone (ZoneInfo instances are cached by the stdlib)."""
        return ZoneInfo(self.tz)

    def add(self, start: datetime, delta: timedelta) -> datetime:
        """:func:`add_business_time` in this calendar (the arithmetic ``sla.engine`` counts with)."""
        return add_business_time(self, start, delta)

    def between(self, start: datetime, end: datetime) -> timedelta:
        """:func:`business_time_between` in this calendar."""
        return business_time_between(self, start, end)


def holiday_dates(country: str, subdivision: str | None, years: Iterable[int]) -> frozenset[date]:
    """Public holiday dates of ``country`` (ISO 3166-1 alpha-2, e.g. "DE") and optional
    ``subdivision`` (e.g. "BY") for the given years, from the ``holidays`` library.

    Raises ValueError for an unknown country or subdivision. Combine with custom dates via
    ``holiday_dates(...) | {date(...)}``.
    """
    # Imported lazily: the arithmetic below must stay importable and fast without it.
    import holidays as holidays_lib

    try:
        found = holidays_lib.country_holidays(country, subdiv=subdivision, years=sorted(set(years)))
    except NotImplementedError as exc:
        raise ValueError(str(exc)) from exc
    return frozenset(found.keys())


# --------------------------------------------------------------------------- public arithmetic


def add_business_minutes(calendar: Calendar, start: datetime, minutes: int | float) -> datetime:
    """The instant when ``minutes`` of business time have elapsed after ``start``, in UTC.

    Guarantees: ``start`` must be aware and ``minutes`` finite and >= 0 (ValueError otherwise).
    Fractional minutes are honoured to the microsecond (rounded to nearest). For 0 minutes the
    result is ``start`` itself (converted to UTC), even when closed. Otherwise counting begins at
    ``start`` or the next opening if closed, and the result lies inside an opening interval with
    its closing instant included: if the time runs out exactly at closing, the closing instant is
    returned, not the next opening. For a 24x7 calendar the result is ``start + minutes`` of real
    (UTC) time, not wall-clock arithmetic in the start's zone.
    """
    if isinstance(minutes, bool):
        raise ValueError("minutes must be a number, not a bool")
    try:
        amount = Fraction(minutes)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ValueError(f"minutes must be a finite number, got {minutes!r}") from exc
    if amount < 0:
        raise ValueError(f"minutes must be >= 0, got {minutes!r}")
    return _from_us(_add_us(calendar, _aware_to_us(start, "start"), round(amount * _US_PER_MINUTE)))


def add_business_time(calendar: Calendar, start: datetime, delta: timedelta) -> datetime:
    """Like :func:`add_business_minutes` with a non-negative ``timedelta`` (exact to the µs)."""
    if not isinstance(delta, timedelta):
        raise ValueError(f"delta must be a timedelta, got {delta!r}")
    if delta < timedelta(0):
        raise ValueError(f"delta must be >= 0, got {delta!r}")
    return _from_us(_add_us(calendar, _aware_to_us(start, "start"), _td_to_us(delta)))


def business_time_between(calendar: Calendar, start: datetime, end: datetime) -> timedelta:
    """Business time elapsed from ``start`` to ``end`` (both aware); zero if ``end <= start``.

    Exact inverse of the adders: ``business_time_between(c, s, add_business_time(c, s, d)) == d``.
    """
    start_us = _aware_to_us(start, "start")
    end_us = _aware_to_us(end, "end")
    if end_us <= start_us:
        return timedelta(0)
    if calendar.always_open:
        return timedelta(microseconds=end_us - start_us)
    total = 0
    for lo, hi in _open_intervals(calendar, start_us, until_us=end_us):
        if lo >= end_us:
            break
        total += max(0, min(hi, end_us) - max(lo, start_us))
    return timedelta(microseconds=total)


def is_open(calendar: Calendar, instant: datetime) -> bool:
    """Whether ``instant`` (aware) lies in an opening interval ``[opening, closing)``.

    The closing instant itself counts as closed here, although the adders may return it.
    """
    at = _aware_to_us(instant, "instant")
    if calendar.always_open:
        return True
    first = next(_open_intervals(calendar, at, until_us=at), None)
    return first is not None and first[0] <= at < first[1]


def next_opening(calendar: Calendar, instant: datetime) -> datetime:
    """The earliest instant ``>= instant`` at which the calendar is open, in UTC.

    That is ``instant`` itself when already open. Raises ValueError if the calendar stays closed
    for more than :data:`MAX_CLOSED_DAYS` days.
    """
    at = _aware_to_us(instant, "instant")
    if calendar.always_open:
        return _from_us(at)
    lo, _hi = next(_open_intervals(calendar, at))
    return _from_us(max(lo, at))


# --------------------------------------------------------------------------- tabulated calendar

#: A table grows by at least this much (and at least doubles), so growth is rare.
_MIN_GROWTH_US = 400 * _US_PER_DAY
#: Searching further than this for open time means the calendar (almost) never opens.
_MAX_SPAN_US = 60 * 366 * _US_PER_DAY
_NO_TIME = timedelta(0)


def open_spans(calendar: Calendar, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """The stretches of ``[start, end)`` in which ``calendar`` is open, in order, merged, as UTC
    instants: what :func:`business_time_between` adds up (a clock's explanation lists them)."""
    lo, hi = _aware_to_us(start, "start"), _aware_to_us(end, "end")
    if hi <= lo:
        return []
    if calendar.always_open:
        return [(_from_us(lo), _from_us(hi))]
    spans = []
    for a, b in _open_intervals(calendar, lo, until_us=hi):
        a, b = max(a, lo), min(b, hi)
        if a < b:
            spans.append((_from_us(a), _from_us(b)))
    return spans


class TabulatedCalendar:
    """``add`` and ``between`` of one calendar answered from a table of its open intervals.

    For many questions about one calendar (replaying the clocks of a hundred thousand imported
    cases asks "start + N business minutes" and "business time between A and B" millions of
    times): the functions above walk the calendar day by day for each question (tens of
    microseconds); here the merged open intervals of a window of time are computed once, with the
    running total of business time before each, so a question is two binary searches. The answers
    are the functions' own, to the microsecond. The window grows on demand.

    ``calendar_for(since, until)`` returns the :class:`Calendar` to use for instants in that range
    (so holidays can be looked up for the years involved); it is called again when the window grows.
    """

    def __init__(self, calendar_for: Callable[[datetime, datetime], Calendar]) -> None:
        self.calendar_for = calendar_for
        self._from = self._until = 0
        self._lo: list[int] = []
        self._start_sum: list[int] = []  # business time before each interval
        self._end_sum: list[int] = []  # business time up to the end of each interval
        self._hi: list[int] = []
        self._always_open: bool | None = None

    def _build(self, from_us: int, until_us: int) -> None:
        calendar = self.calendar_for(_from_us(from_us), _from_us(until_us))
        self._always_open = calendar.always_open
        self._from, self._until = from_us, until_us
        self._lo, self._hi, self._start_sum, self._end_sum = [], [], [], []
        if calendar.always_open:
            return
        total = 0
        # The same generator the functions walk: merged, sorted, non-empty intervals.
        for lo, hi in _open_intervals(calendar, from_us, until_us=until_us):
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

    def add(self, start: datetime, delta: timedelta) -> datetime:
        """Like :func:`add_business_time` (``start`` aware, ``delta`` >= 0)."""
        if delta < _NO_TIME:
            raise ValueError(f"delta must be >= 0, got {delta!r}")
        start_us, amount = _td_to_us(start - _EPOCH), _td_to_us(delta)
        if self._always_open:  # known 24x7: no table needed
            return _from_us(start_us + amount)
        if amount == 0:
            return _from_us(start_us)
        self._cover(start_us, start_us + amount)
        while True:
            if self._always_open:
                return _from_us(start_us + amount)
            i = bisect_right(self._hi, start_us)
            if i < len(self._lo):
                begin = max(self._lo[i], start_us)
                target = self._start_sum[i] + (begin - self._lo[i]) + amount
                # "<=" like the adders: running out exactly at closing returns the closing instant.
                j = bisect_left(self._end_sum, target, lo=i)
                if j < len(self._lo):
                    return _from_us(self._lo[j] + (target - self._start_sum[j]))
            self._cover(start_us, self._until + 1)

    def between(self, start: datetime, end: datetime) -> timedelta:
        """Like :func:`business_time_between`."""
        start_us, end_us = _td_to_us(start - _EPOCH), _td_to_us(end - _EPOCH)
        if end_us <= start_us:
            return _NO_TIME
        if self._always_open:
            return timedelta(microseconds=end_us - start_us)
        self._cover(start_us, end_us)
        if self._always_open:
            return timedelta(microseconds=end_us - start_us)
        return timedelta(microseconds=self._sum_at(end_us) - self._sum_at(start_us))

    def _sum_at(self, at: int) -> int:
        i = bisect_right(self._lo, at) - 1
        if i < 0:
            return 0
        return self._start_sum[i] + min(at, self._hi[i]) - self._lo[i]


# --------------------------------------------------------------------------- internals


def _add_us(calendar: Calendar, start_us: int, amount_us: int) -> int:
    if amount_us == 0 or calendar.always_open:
        return start_us + amount_us
    remaining = amount_us
    for lo, hi in _open_intervals(calendar, start_us):
        available = hi - max(lo, start_us)
        # "<=" rather than "<": running out exactly at closing returns the closing instant.
        if remaining <= available:
            return max(lo, start_us) + remaining
        remaining -= available
    raise AssertionError("unreachable: _open_intervals is endless or raises")  # pragma: no cover


def _open_intervals(
    calendar: Calendar, from_us: int, until_us: int | None = None
) -> Iterator[tuple[int, int]]:
    """Merged, sorted, non-empty open intervals ``(lo, hi)`` with ``hi > from_us``.

    Endless unless ``until_us`` is given, in which case it stops after the last interval that
    can start at or before ``until_us``. Raises ValueError after MAX_CLOSED_DAYS closed days.
    """
    zone = calendar.zone
    # Start two local days early: with a range ending 24:00 (or DST at midnight) the previous
    # day's interval can reach past ``from_us`` and must be merged with today's.
    day = _from_us(from_us).astimezone(zone).date() - 2 * _ONE_DAY
    # Intervals not yet yielded, sorted and merged. A fall-back can interleave the intervals of
    # two ranges (or of two days, when it crosses midnight), so new ones are sorted in.
    pending: list[tuple[int, int]] = []
    closed_days = 0
    while True:
        if pending or until_us is not None:
            day_start = _wall_to_us(zone, day, 0, latest=False)
            # Every interval of this and later days starts at or after ``day_start``, so a
            # pending interval ending before it can no longer grow by merging.
            while pending and day_start > pending[0][1]:
                done = pending.pop(0)
                if done[1] > from_us:
                    yield done
            if until_us is not None and day_start > until_us:
                break
        intervals = _day_intervals(calendar, zone, day)
        if intervals:
            closed_days = 0
            pending = _merge([*pending, *intervals])
        else:
            closed_days += 1
            if closed_days > MAX_CLOSED_DAYS and until_us is None:
                raise ValueError(
                    f"calendar {calendar.tz!r} stays closed for more than {MAX_CLOSED_DAYS} "
                    f"consecutive days (from {day - MAX_CLOSED_DAYS * _ONE_DAY}); "
                    "check its ranges and holidays"
                )
        day += _ONE_DAY
    for done in pending:
        if done[1] > from_us:
            yield done


def _merge(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted union of ``intervals``; overlapping or touching intervals become one."""
    merged: list[tuple[int, int]] = []
    for lo, hi in sorted(intervals):
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged


def _day_intervals(calendar: Calendar, zone: ZoneInfo, day: date) -> list[tuple[int, int]]:
    """Real intervals of the ranges opening on local date ``day``, sorted and merged."""
    if day in calendar.holidays:
        return []
    intervals: list[tuple[int, int]] = []
    for r in calendar._by_weekday[day.weekday()]:
        intervals.extend(_range_intervals(zone, day, r.start_offset_us, r.end_offset_us))
    return _merge(intervals)


def _range_intervals(zone: ZoneInfo, day: date, start_us: int, end_us: int) -> list[tuple[int, int]]:
    """The instants whose wall reading lies in ``[day + start_us, day + end_us)``, as intervals.

    The earliest instant reading ``start`` and the latest reading ``end`` bound them; between
    the two, each stretch of constant UTC offset keeps only the instants whose reading (instant
    + offset) is inside the range, which drops the part of a repeated hour outside it.
    """
    lo = _wall_to_us(zone, day, start_us, latest=False)
    hi = _wall_to_us(zone, day, end_us, latest=True)
    if hi <= lo:  # a range wholly inside a spring-forward gap is empty
        return []
    midnight = _naive_to_us(datetime.combine(day, time()))
    wall_lo, wall_hi = midnight + start_us, midnight + end_us
    out = []
    for seg_lo, seg_hi, offset in _offset_stretches(zone, lo, hi):
        a, b = max(seg_lo, wall_lo - offset), min(seg_hi, wall_hi - offset)
        if b > a:
            out.append((a, b))
    return out


def _offset_stretches(zone: ZoneInfo, lo: int, hi: int) -> list[tuple[int, int, int]]:
    """``[lo, hi)`` split where the zone's UTC offset changes: ``(from, until, offset_us)``.

    Offset changes are found where the offsets at the two ends of a stretch differ (bisected to
    the microsecond); zones never change offset and back within the day-long stretches asked.
    """
    first, last = _offset_us(zone, lo), _offset_us(zone, hi - 1)
    if first == last:
        return [(lo, hi, first)]
    a, b = lo, hi - 1  # offset(a) == first != offset(b)
    while b - a > 1:
        mid = (a + b) // 2
        if _offset_us(zone, mid) == first:
            a = mid
        else:
            b = mid
    return [(lo, b, first), *_offset_stretches(zone, b, hi)]


def _offset_us(zone: ZoneInfo, at_us: int) -> int:
    offset = _from_us(at_us).astimezone(zone).utcoffset()
    assert offset is not None  # a ZoneInfo always has an offset
    return _td_to_us(offset)


def _naive_to_us(value: datetime) -> int:
    return _td_to_us(value - _EPOCH.replace(tzinfo=None))


def _wall_to_us(zone: ZoneInfo, day: date, offset_us: int, *, latest: bool) -> int:
    """Real instant of local wall time ``day + offset_us`` (offset may be a full day = 24:00).

    Ambiguous times resolve to the earliest (``latest=False``) or latest occurrence; times in
    a gap resolve to the first instant after the gap. Monotonic in the wall time either way.
    """
    wall = datetime.combine(day, time()) + timedelta(microseconds=offset_us)
    as_utc = wall.replace(tzinfo=zone, fold=1 if latest else 0).astimezone(UTC)
    if as_utc.astimezone(zone).replace(tzinfo=None) == wall:
        return _aware_to_us(as_utc, "wall")
    # Nonexistent wall time. PEP 495 maps it with the offsets before (fold=0) and after (fold=1)
    # the transition; the transition itself lies between the two, so bisect for it.
    a = _aware_to_us(wall.replace(tzinfo=zone, fold=0), "wall")
    b = _aware_to_us(wall.replace(tzinfo=zone, fold=1), "wall")
    lo, hi = min(a, b), max(a, b)
    before = _from_us(lo).astimezone(zone).utcoffset()
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _from_us(mid).astimezone(zone).utcoffset() == before:
            lo = mid
        else:
            hi = mid
    return hi


def _aware_to_us(value: datetime, name: str) -> int:
    if not isinstance(value, datetime):
        raise ValueError(f"{name} must be a datetime, got {value!r}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {value.isoformat()}")
    return _td_to_us(value - _EPOCH)


def _from_us(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def _td_to_us(delta: timedelta) -> int:
    return (delta.days * 86_400 + delta.seconds) * _US_PER_SECOND + delta.microseconds


def _time_to_us(value: time) -> int:
    return ((value.hour * 60 + value.minute) * 60 + value.second) * _US_PER_SECOND + value.microsecond


def _format_time(value: time) -> str:
    return value.isoformat("minutes" if value.second == value.microsecond == 0 else "auto")
