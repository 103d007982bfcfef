"""SLA clocks in any page: ``{% load sla %}``.

Case page::

    {% case_clocks case as clocks %}{% sla_badges clocks %}

List page (one query for the whole page)::

    {% sla_clocks_for cases as sla_clocks %}
    {% for case in cases %} ... {% sla_badges sla_clocks|for_case:case %} ... {% endfor %}
"""

from __future__ import annotations

from django import template
from django.utils import timezone

from .. import selectors

register = template.Library()


@register.simple_tag
def case_clocks(case, now=None, history=False) -> list[selectors.ClockView]:
    """The case's clocks (the current run of each target) with their remaining time."""
    return selectors.clocks_for_case(case, now=now or timezone.now(), history=history)


@register.simple_tag
def sla_clocks_for(cases, now=None) -> dict[int, list[selectors.ClockView]]:
    """The clocks that still count for every case of a page, in one query."""
    return selectors.clocks_for_cases([c.pk for c in cases], now=now or timezone.now())


@register.filter
def for_case(clocks_by_case, case) -> list[selectors.ClockView]:
    return clocks_by_case.get(getattr(case, "pk", case), []) if clocks_by_case else []


@register.inclusion_tag("sla/_clock_badges.html")
def sla_badges(clocks, compact=False) -> dict:
    return {"clocks": clocks, "compact": compact}
