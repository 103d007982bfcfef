from __future__ import annotations

import datetime as dt

from django import template
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

register = template.Library()


@register.simple_tag
def url_or_empty(name: str, *args) -> str:
    """The URL of ``name``, or "" when that part of the product is not installed."""
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return ""


@register.filter
def duration(value: dt.timedelta | None) -> str:
    """A compact human duration: 45 min, 3 h 10 min, 2 d 4 h."""
    if value is None:
        return "—"
    seconds = int(value.total_seconds())
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{sign}{days} d {hours} h" if hours else f"{sign}{days} d"
    if hours:
        return f"{sign}{hours} h {minutes} min" if minutes else f"{sign}{hours} h"
    return f"{sign}{minutes} min"


@register.filter
def age(value: dt.datetime | None) -> str:
    if value is None:
        return "—"
    return duration(timezone.now() - value)
