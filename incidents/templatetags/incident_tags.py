from __future__ import annotations

from django import template

from cases.models import Case

from ..models import MajorIncident

register = template.Library()


@register.simple_tag
def case_incidents(case: Case) -> list[MajorIncident]:
    """The major incidents ``case`` is linked to, active first (one query)."""
    return list(MajorIncident.objects.filter(links__case=case).order_by("status", "-declared_at"))


@register.filter
def percent(value: float | None) -> str:
    """A share as a whole percentage ("83 %"), or a dash when there is nothing to count."""
    return "—" if value is None else f"{round(value * 100)} %"
