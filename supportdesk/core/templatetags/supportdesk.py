from __future__ import annotations

import datetime as dt

from django import template
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.html import format_html

from supportdesk.core.instants import DAY_FORMAT, WHEN_DAY_FORMAT, WHEN_FORMAT, format_instant

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


@register.filter
def when(value: dt.datetime | None, style: str = "") -> str:
    """An instant as every page shows it: ``<time>`` with the ISO instant, read in the viewer's zone
    ("2 Dec 2026 21:44 CET"; with ``when:"day"`` the weekday first); "—" for none."""
    if value is None:
        return "—"
    local = timezone.localtime(value) if timezone.is_aware(value) else value
    fmt = WHEN_DAY_FORMAT if style == "day" else WHEN_FORMAT
    return format_html('<time datetime="{}">{}</time>', local.isoformat(), format_instant(local, fmt=fmt))


@register.filter
def day(value: dt.datetime | None) -> str:
    """The day of an instant that only means a date (a review due on ...), in the viewer's zone."""
    if value is None:
        return "—"
    local = timezone.localtime(value) if timezone.is_aware(value) else value
    return format_html(
        '<time datetime="{}">{}</time>', local.isoformat(), format_instant(local, fmt=DAY_FORMAT)
    )
