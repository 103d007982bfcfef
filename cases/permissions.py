"""Who may see what of a case: decided here once, for the case page, its file downloads and the API.

Today every agent (and manager and admin) works every organisation's cases and reads their internal
notes (DOMAIN.md); engineers and customers see no case. A narrower role (a customer portal, agents
per organisation) changes these two functions, and every page and endpoint follows.
"""

from __future__ import annotations

from supportdesk.core.roles import is_agent

from .models import Case


def can_see_case(user, case: Case) -> bool:
    """The case, its public conversation and the files of its customer mails and public replies."""
    return is_agent(user)


def can_see_internal_notes(user, case: Case) -> bool:
    """Internal notes and their files: staff only, never the customer."""
    return can_see_case(user, case) and is_agent(user)
