"""From stored calendars to ``sla.clock.Calendar`` values the arithmetic understands.

Building a calendar means reading its hours and custom holidays and asking the holiday library for
a country's public holidays, so the result is cached per process by ``(calendar id, version,
updated_at, years)``. Every change to a calendar (hours and holidays included) increments ``version`` in the
same transaction (``services.save_calendar``, the admin), so an edited calendar is never served
from the cache.
"""

from __future__ import annotations

import datetime as dt
import logging
from functools import lru_cache

from . import clock
from .models import BusinessCalendar, CustomHoliday, OpeningHours, OrganisationCalendar

logger = logging.getLogger(__name__)

TWENTY_FOUR_SEVEN = clock.Calendar.twenty_four_seven()

# Holidays are looked up for the years around the instants involved: one before (a range that
# starts late on 31 December), and two after (long targets, long pauses).
YEARS_BEFORE = 1
YEARS_AFTER = 2


def calendar_for_organisation(organisation_id: int) -> BusinessCalendar | None:
    """The organisation's calendar, else the default one (None if there is none at all)."""
    link = (
        OrganisationCalendar.objects.select_related("calendar")
        .filter(organisation_id=organisation_id)
        .first()
    )
    if link is not None:
        return link.calendar
    return default_calendar()


def default_calendar() -> BusinessCalendar | None:
    return BusinessCalendar.objects.filter(is_default=True).first()


def clock_calendar(
    calendar: BusinessCalendar | None, *, business_time: bool, since: dt.datetime, until: dt.datetime
) -> clock.Calendar:
    """The arithmetic's calendar for a policy counting ``business_time`` (else 24x7) in ``calendar``.

    ``since``/``until`` bound the instants the caller will compute with; holidays are included for
    the years around them.
    """
    if not business_time or calendar is None or calendar.always_open:
        return TWENTY_FOUR_SEVEN
    first_year = min(since.year, until.year) - YEARS_BEFORE
    last_year = max(since.year, until.year) + YEARS_AFTER
    return _build(calendar.pk, calendar.version, calendar.updated_at, first_year, last_year)


@lru_cache(maxsize=512)
def _build(
    calendar_id: int, version: int, updated_at: dt.datetime, first_year: int, last_year: int
) -> clock.Calendar:
    # ``version`` and ``updated_at`` are only part of the key: a changed calendar is a cache miss.
    calendar = BusinessCalendar.objects.get(pk=calendar_id)
    ranges = [
        clock.OpeningRange(weekday=row.weekday, start=row.start, end=row.end)
        for row in OpeningHours.objects.filter(calendar_id=calendar_id)
    ]
    holidays = set(CustomHoliday.objects.filter(calendar_id=calendar_id).values_list("date", flat=True))
    if calendar.holiday_country:
        try:
            holidays |= clock.holiday_dates(
                calendar.holiday_country,
                calendar.holiday_subdivision or None,
                range(first_year, last_year + 1),
            )
        except ValueError:
            # Validated on save; if the library dropped a region, count those days as open rather
            # than refuse every case write.
            logger.exception("Calendar %s: unknown holiday country/subdivision", calendar_id)
    try:
        return clock.Calendar(tz=calendar.time_zone, ranges=tuple(ranges), holidays=frozenset(holidays))
    except ValueError:
        # No opening hours (or an unknown zone) slipped past validation: fail safe, counting all time.
        logger.exception("Calendar %s cannot be used for business time; counting 24x7", calendar_id)
        return TWENTY_FOUR_SEVEN


def clear_cache() -> None:
    _build.cache_clear()
