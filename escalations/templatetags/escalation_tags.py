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
