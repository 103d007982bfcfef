from __future__ import annotations

import datetime as dt

from django import template
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe

from supportdesk.core.instants import DAY_FORMAT, WHEN_DAY_FORMAT, WHEN_FORMAT, format_instant
from supportdesk.core.markup import escape_text

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
def when(value: dt.datetime | None, style: str = "", *, zone: dt.tzinfo | None = None) -> str:
    """An instant as every page shows it: ``<time>`` with the ISO instant, read in the viewer's zone
    ("2 Dec 2026 21:44 CET"; with ``when:"day"`` the weekday first); "—" for none. Python callers
    rendering many may pass the viewer's ``zone``, looked up once."""
    if value is None:
        return "—"
    local = timezone.localtime(value, zone) if timezone.is_aware(value) else value
    fmt = WHEN_DAY_FORMAT if style == "day" else WHEN_FORMAT
    # Written directly (a busy page shows hundreds): an ISO instant holds nothing to escape.
    text = escape_text(format_instant(local, local.tzinfo, fmt=fmt))
    return mark_safe(f'<time datetime="{local.isoformat()}">{text}</time>')  # noqa: S308 - escaped


@register.filter
def day(value: dt.datetime | None) -> str:
    """The day of an instant that only means a date (a review due on ...), in the viewer's zone."""
    if value is None:
        return "—"
    local = timezone.localtime(value) if timezone.is_aware(value) else value
    return format_html(
        '<time datetime="{}">{}</time>', local.isoformat(), format_instant(local, fmt=DAY_FORMAT)
    )


#: Inline SVG icons (16x16, drawn in the text colour): they render in every browser and font,
#: unlike symbol characters (⏱, ⏸) that many fonts lack.
ICONS = {
    "clock": '<circle cx="8" cy="9" r="5.5"/><path d="M8 6v3.2l2.2 1.6M6 1.8h4"/>',
    "warning": '<path d="M8 1.8 15.2 14.2H.8z" stroke-linejoin="round"/><path d="M8 6.2v3.8M8 11.6v.6"/>',
    "cross": '<path d="M4 4l8 8M12 4l-8 8"/>',
    "pause": '<path d="M5.5 3.5v9M10.5 3.5v9" stroke-width="2.4"/>',
    "check": '<path d="M2.8 8.6l3.4 3.4L13.2 4.6"/>',
    "dash": '<path d="M4 8h8"/>',
    "up": '<path d="M8 3.2 13.6 12H2.4z" fill="currentColor" stroke-linejoin="round"/>',
    "down": '<path d="M8 12.8 13.6 4H2.4z" fill="currentColor" stroke-linejoin="round"/>',
    "same": '<path d="M3.5 6h9M3.5 10h9"/>',
}


@register.simple_tag
def icon(name: str, label: str = "") -> str:
    """An inline SVG icon. With ``label`` it is an image with that name (``role="img"``, a title for
    the tooltip); without, it is decoration next to words that say the same (hidden from readers)."""
    shape = ICONS.get(name)
    if shape is None:
        return ""
    a11y: SafeString
    title: str
    if label:
        a11y, title = (
            format_html('role="img" aria-label="{}"', label),
            format_html("<title>{}</title>", label),
        )
    else:
        a11y, title = mark_safe('aria-hidden="true" focusable="false"'), ""
    return format_html(
        '<svg class="icon icon-{}" viewBox="0 0 16 16" width="1em" height="1em" fill="none" '
        'stroke="currentColor" stroke-width="1.8" stroke-linecap="round" {}>{}{}</svg>',
        name,
        a11y,
        title,
        mark_safe(shape),  # noqa: S308 - the constant shapes above, no input
    )


@register.simple_tag
def check_chips(field, css_class: str = "chip") -> str:
    """The ticks of a multiple-choice filter as ``<label class="chip">`` elements, written
    directly for the same reason as ``select_field`` (each option's widget templates cost more
    than the page's queries). Same markup as iterating the field's subwidgets."""
    current = {str(v) for v in (field.value() or [])}
    prefix = field.auto_id
    name = escape_text(field.html_name)
    chips = []
    for index, (value, label) in enumerate(field.field.widget.choices):
        value = str(value)
        checked = " checked" if value in current else ""
        chips.append(
            f'<label class="{escape_text(css_class)}"><input type="checkbox" name="{name}" '
            f'value="{escape_text(value)}" id="{escape_text(prefix)}_{index}"{checked}> '
            f"{escape_text(label)}</label>"
        )
    return mark_safe("".join(chips))  # noqa: S308 - every value is escaped above


@register.simple_tag
def options(choices, selected: object = None) -> str:
    """``<option>`` elements for ``(value, label)`` pairs, the one equal to ``selected`` marked,
    written directly (a loop of template variables costs more than the rest of a busy page)."""
    chosen = None if selected is None else str(selected)
    out = []
    for value, label in choices:
        value = "" if value is None else str(value)
        mark = " selected" if value == chosen else ""
        out.append(f'<option value="{escape_text(value)}"{mark}>{escape_text(label)}</option>')
    return mark_safe("".join(out))  # noqa: S308 - every value is escaped above


@register.simple_tag
def select_field(field, css_class: str = "") -> str:
    """A filter ``<select>`` with its label, written directly rather than through the widget's
    templates: Django renders each ``<option>`` through a template, which costs more than the
    page's queries for a list of hundreds of organisations. Same markup as cases/_field.html."""
    current = field.value()
    current = "" if current is None else str(current)
    options = []
    for value, label in field.field.choices:
        value = "" if value is None else str(value)
        selected = " selected" if value == current else ""
        options.append(f'<option value="{escape_text(value)}"{selected}>{escape_text(label)}</option>')
    classes = (
        "field" + (" has-error" if field.errors else "") + (f" {escape_text(css_class)}" if css_class else "")
    )
    errors = str(field.errors) if field.errors else ""
    return mark_safe(  # noqa: S308 - every value is escaped above
        f'<div class="{classes}"><label for="{escape(field.id_for_label)}">{escape(field.label)}</label>'
        f'<select name="{escape(field.html_name)}" id="{escape(field.auto_id)}">{"".join(options)}</select>'
        f"{errors}</div>"
    )
