from __future__ import annotations

from django import template

from cases.models import Case

from .. import selectors

register = template.Library()
_OPEN_QUESTION = "open_question"  # what the case panel reads (not a field of the model)


@register.simple_tag
def case_escalations(case: Case) -> list:
    """The case's escalations, newest first, each with ``open_question`` (unanswered questions or None)."""
    escalations = selectors.escalations_for_case(case)
    for escalation in escalations:
        setattr(escalation, _OPEN_QUESTION, selectors.open_info_request(escalation))
    return escalations


@register.simple_tag
def engineering_clocks(escalation) -> list:
    """The escalation's engineering clocks, each with ``words`` (its state as a person reads it)."""
    from django.utils import timezone

    from ..clocks import state_in_words

    now = timezone.now()
    clocks = selectors.escalation_clocks(escalation)
    for clock in clocks:
        clock.words = state_in_words(clock, now=now)  # type: ignore[attr-defined]  # a display attribute
    return clocks


@register.simple_tag
def case_time_split(case: Case):
    """Where the case's time went (``escalations.attribution.Attribution``), up to now while open."""
    from django.utils import timezone

    return selectors.case_time_attribution(case, now=timezone.now())


@register.filter
def hours_minutes(value) -> str:
    """A duration as "3 h 05 min" (or "42 s" under a minute); exact seconds stay in the title."""
    seconds = int(value.total_seconds())
    if seconds < 60:
        return f"{seconds} s"
    hours, rest = divmod(seconds // 60, 60)
    return f"{hours} h {rest:02d} min" if hours else f"{rest} min"
