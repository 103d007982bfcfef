"""Source timestamps to aware UTC instants, fast enough for millions of rows.

A display format such as ``%d/%m/%Y %H:%M`` made only of numeric directives is compiled to a
regular expression (``strptime`` is pure Python and costs several times more); any other format
falls back to ``strptime``. Parsed values are memoised: exports repeat the same instants (a case's
opened/resolved/closed times on every row of the case).

Local times are interpreted in an IANA zone. An ambiguous wall time (the repeated hour when DST
ends) is taken at its first occurrence, like most ticketing tools display it; a wall time that
does not exist (inside the hour skipped when DST starts) is an error, since no clock showed it.
"""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

_DIRECTIVES = {
    "d": r"(?P<day>\d{1,2})",
    "m": r"(?P<month>\d{1,2})",
    "Y": r"(?P<year>\d{4})",
    "y": r"(?P<year2>\d{2})",
    "H": r"(?P<hour>\d{1,2})",
    "M": r"(?P<minute>\d{1,2})",
    "S": r"(?P<second>\d{1,2})",
    "f": r"(?P<fraction>\d{1,6})",
}
_CACHE_LIMIT = 20_000
_CHANGING = object()  # an hour in which the zone's offset changes (or is ambiguous)


class DateError(ValueError):
    pass


def _compile(fmt: str) -> re.Pattern[str] | None:
    """A regex for ``fmt`` if it uses only numeric directives (each at most once), else None."""
    out: list[str] = []
    used: set[str] = set()
    i = 0
    while i < len(fmt):
        ch = fmt[i]
        if ch == "%":
            if i + 1 >= len(fmt):
                return None
            directive = fmt[i + 1]
            if directive == "%":
                out.append("%")
            elif directive in _DIRECTIVES and directive not in used:
                used.add(directive)
                out.append(_DIRECTIVES[directive])
            else:
                return None
            i += 2
            continue
        out.append(r"\s+" if ch.isspace() else re.escape(ch))
        i += 1
    if not ({"d", "m"} <= used and used & {"Y", "y"}):
        return None
    return re.compile(r"\s*" + "".join(out) + r"\s*\Z")


class DateParser:
    """Parses display-format timestamps (CSV) or ISO 8601 ones (XES) to aware UTC datetimes."""

    def __init__(self, *, fmt: str, time_zone: str) -> None:
        self.fmt = fmt
        self.zone = ZoneInfo(time_zone)
        self.time_zone = time_zone
        self._is_utc = time_zone in ("UTC", "Etc/UTC")
        self._regex = _compile(fmt)
        self._cache: dict[str, dt.datetime] = {}
        self._offsets: dict[tuple[int, int, int, int], object] = {}

    def parse(self, text: str) -> dt.datetime:
        """The instant ``text`` (in the display format) denotes; raises DateError."""
        cached = self._cache.get(text)
        if cached is not None:
            return cached
        naive = self._naive(text)
        value = self.localize(naive, text)
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[text] = value
        return value

    def parse_iso(self, text: str) -> dt.datetime:
        """An ISO 8601 instant (XES ``date`` attributes); one without an offset is local time."""
        cached = self._cache.get(text)
        if cached is not None:
            return cached
        try:
            value = dt.datetime.fromisoformat(text.strip())
        except ValueError as exc:
            raise DateError(f"“{text}” is not an ISO 8601 date-time") from exc
        value = self.localize(value, text) if value.tzinfo is None else value.astimezone(dt.UTC)
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[text] = value
        return value

    def _naive(self, text: str) -> dt.datetime:
        if self._regex is None:
            try:
                return dt.datetime.strptime(text.strip(), self.fmt)  # noqa: DTZ007 - localised below
            except ValueError as exc:
                raise DateError(f"“{text}” does not match the date format {self.fmt}") from exc
        match = self._regex.match(text)
        if match is None:
            raise DateError(f"“{text}” does not match the date format {self.fmt}")
        g = match.groupdict()
        year = int(g["year"]) if g.get("year") else 2000 + int(g["year2"])
        fraction = g.get("fraction")
        try:
            return dt.datetime(  # noqa: DTZ001 - a wall time, localised by the caller
                year,
                int(g["month"]),
                int(g["day"]),
                int(g.get("hour") or 0),
                int(g.get("minute") or 0),
                int(g.get("second") or 0),
                int(fraction.ljust(6, "0")) if fraction else 0,
            )
        except ValueError as exc:
            raise DateError(f"“{text}” is not a real date ({exc})") from exc

    def localize(self, naive: dt.datetime, text: str) -> dt.datetime:
        if self._is_utc:
            return naive.replace(tzinfo=dt.UTC)
        # Within an hour with no DST change the offset is one number: look it up once per hour.
        hour = (naive.year, naive.month, naive.day, naive.hour)
        offset = self._offsets.get(hour)
        if offset is None:
            offset = self._offsets[hour] = self._hour_offset(naive)
        if offset is not _CHANGING:
            return naive.replace(tzinfo=dt.UTC) - offset
        aware = naive.replace(tzinfo=self.zone, fold=0)
        value = aware.astimezone(dt.UTC)
        if value.astimezone(self.zone).replace(tzinfo=None) != naive:
            raise DateError(
                f"“{text}” does not exist in {self.time_zone} (the clocks skipped that hour for DST)"
            )
        return value

    def _hour_offset(self, naive: dt.datetime):
        if len(self._offsets) >= _CACHE_LIMIT:
            self._offsets.clear()
        start = naive.replace(minute=0, second=0, microsecond=0)
        offsets = {
            moment.replace(tzinfo=self.zone, fold=fold).utcoffset()
            for moment in (start, start + dt.timedelta(minutes=59, seconds=59, microseconds=999_999))
            for fold in (0, 1)
        }
        return offsets.pop() if len(offsets) == 1 else _CHANGING
