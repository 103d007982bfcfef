"""The placeholders a macro's text may hold, and the small substitution that fills them.

Kept apart from ``cases.macros`` (which applies macros through the services) so that the model
field's validator can check a text without importing the services: this module imports no model.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from django.core.exceptions import ValidationError

if TYPE_CHECKING:
    from django.contrib.auth.models import User

    from .models import Case

_PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")


def _person(user: User | None) -> str:
    if user is None:
        return ""
    return user.get_full_name() or user.get_username()


def _first_name(name: str) -> str:
    parts = name.split()
    return parts[0] if parts else ""


# How each placeholder is filled from the case and the agent (functions, not lambdas: the case's
# type is only known once the models are, which import this module).
def _requester_name(case: Case, agent: User | None) -> str:
    return case.requester.name


def _requester_first_name(case: Case, agent: User | None) -> str:
    return _first_name(case.requester.name)


def _case_key(case: Case, agent: User | None) -> str:
    return case.key


def _case_title(case: Case, agent: User | None) -> str:
    return case.title


def _agent_name(case: Case, agent: User | None) -> str:
    return _person(agent)


def _organisation(case: Case, agent: User | None) -> str:
    return case.organisation.name


def _team(case: Case, agent: User | None) -> str:
    return case.team.name if case.team else ""


#: placeholder -> (what it is, how it is filled from the case and the agent)
PLACEHOLDERS: dict[str, tuple[str, Callable[[Case, User | None], str]]] = {
    "requester_name": ("The requester's full name", _requester_name),
    "requester_first_name": ("The requester's first name", _requester_first_name),
    "case_key": ("The case key, e.g. CASE-12", _case_key),
    "case_title": ("The case title", _case_title),
    "agent_name": ("Your name (whoever applies the macro)", _agent_name),
    "organisation": ("The customer's organisation", _organisation),
    "team": ("The case's team (empty when none)", _team),
}


def unknown_placeholders(text: str) -> list[str]:
    """The placeholder names in ``text`` that are not in ``PLACEHOLDERS``, in order of appearance."""
    unknown: list[str] = []
    for match in _PLACEHOLDER.finditer(text or ""):
        name = match.group(1)
        if name not in PLACEHOLDERS and name not in unknown:
            unknown.append(name)
    return unknown


def _braced(name: str) -> str:
    return "{{" + name + "}}"


def check_placeholders(text: str) -> None:
    """Raise ValidationError naming every unknown placeholder, or a ``{{`` / ``}}`` left unclosed."""
    problems = []
    unknown = unknown_placeholders(text)
    if unknown:
        known = ", ".join(_braced(name) for name in PLACEHOLDERS)
        plural = "s" if len(unknown) > 1 else ""
        names = ", ".join(_braced(n) for n in unknown)
        problems.append(f"Unknown placeholder{plural}: {names}. Use one of {known}.")
    leftover = _PLACEHOLDER.sub("", text or "")
    if "{{" in leftover or "}}" in leftover:
        problems.append("A placeholder is not closed: write it as {{requester_first_name}}.")
    if problems:
        raise ValidationError(problems, code="placeholder")


def render_text(text: str, case: Case, *, agent: User | None) -> str:
    """``text`` with every known placeholder filled; the values are inserted as they are (a value
    holding ``{{...}}`` is not expanded again). Unknown placeholders stay as written."""

    def fill(match: re.Match[str]) -> str:
        entry = PLACEHOLDERS.get(match.group(1))
        return entry[1](case, agent) if entry else match.group(0)

    return _PLACEHOLDER.sub(fill, text or "")
