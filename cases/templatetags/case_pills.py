"""``{% severity_pill case %}`` and ``{% status_pill case %}``: the pills every case list shows, the
same markup as the queue's rows (cases/queue_render.py), where they are written."""

from __future__ import annotations

from django import template
from django.utils.safestring import SafeString, mark_safe

from cases import queue_render

register = template.Library()


@register.simple_tag
def severity_pill(case) -> SafeString:
    return mark_safe(queue_render.severity_pill(case.severity))  # noqa: S308 - escaped where written


@register.simple_tag
def status_pill(case) -> SafeString:
    return mark_safe(queue_render.status_pill(case.status))  # noqa: S308 - escaped where written
