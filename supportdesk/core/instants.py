"""One way to show an instant to a person: in their time zone, in one format, the zone named.

Pages use the ``when`` template filter (the zone the middleware activated for the viewer); text
built without a request (a worker's notification, an e-mail) uses ``format_instant`` with the
recipient's zone from ``zone_of`` / ``zones_of``. Both share ``WHEN_FORMAT``.
"""

from __future__ import annotations

import datetime as dt
import functools
import zoneinfo
from collections.abc import Iterable

from django.conf import settings
from django.utils import timezone
from django.utils.dates import MONTHS_3
from django.utils.formats import date_format
from django.utils.translation import get_language

#: The one format every instant is shown in ("2 Dec 2026 21:44 CET").
WHEN_FORMAT = "j M Y H:i T"
#: The same with the weekday, where the day matters (a due time after a weekend).
WHEN_DAY_FORMAT = "D j M Y H:i T"
#: A day, for instants that only mean a date (a review due on ...).
DAY_FORMAT = "j M Y"


def default_zone() -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(settings.TIME_ZONE)


def as_zone(name: str | None) -> zoneinfo.ZoneInfo | None:
    """The zone called ``name``, or None for an empty or unknown name."""
    if not name:
        return None
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None


def format_instant(
    value: dt.datetime | None, zone: dt.tzinfo | str | None = None, *, fmt: str = WHEN_FORMAT
) -> str:
    """``value`` as people read it: in ``zone`` (default: the active zone), e.g. "2 Dec 2026 21:44 CET";
    "—" for none."""
    if value is None:
        return "—"
    if isinstance(zone, str):
        zone = as_zone(zone) or default_zone()
    local = timezone.localtime(value, zone) if timezone.is_aware(value) else value
    if fmt == WHEN_FORMAT and local.tzinfo is not None:
        # The common case without the format machinery (a busy page shows hundreds of instants):
        # the same text as date_format(local, WHEN_FORMAT).
        month = _month_name(get_language(), local.month)
        return f"{local.day} {month} {local.year} {local:%H:%M} {local.tzname()}"
    return date_format(local, fmt)


@functools.lru_cache(maxsize=256)
def _month_name(language: str | None, month: int) -> str:
    """The month's short name in ``language`` (the lazy name translated once per language)."""
    return str(MONTHS_3[month]).title()


def zone_of(user) -> zoneinfo.ZoneInfo:
    """The zone ``user`` chose on the preferences page, else the site's (settings.TIME_ZONE)."""
    if user is None or not getattr(user, "pk", None):
        return default_zone()
    return zones_of([user])[user.pk]


def zones_of(users: Iterable) -> dict[int, zoneinfo.ZoneInfo]:
    """Each user's zone by id, with one query for all of them (none for users loaded with their
    ``profile``)."""
    from .models import StaffProfile

    users = [u for u in users if u is not None and getattr(u, "pk", None)]
    zones: dict[int, zoneinfo.ZoneInfo] = {}
    unknown = []
    for user in users:
        cached = getattr(user, "_state", None) and user._state.fields_cache.get("profile", False)
        if cached is False:
            unknown.append(user.pk)
        else:
            zones[user.pk] = (cached and as_zone(cached.time_zone)) or default_zone()
    if unknown:
        chosen = dict(StaffProfile.objects.filter(user_id__in=unknown).values_list("user_id", "time_zone"))
        for pk in unknown:
            zones[pk] = as_zone(chosen.get(pk)) or default_zone()
    return zones
