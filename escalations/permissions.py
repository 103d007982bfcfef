"""Who may read escalations and take which action: one rule for the services, the API and the pages.

Support (agents, managers, admins) takes the support actions on every escalation. An engineer takes
the engineering actions on escalations of the teams in their scope (every team without a scope, see
``selectors.engineer_team_ids``). The state machine (``states``) then says which action the state allows.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied

from supportdesk.core.roles import is_agent, is_engineer

from . import selectors
from .states import ACTIONS, Side, allowed_actions

_SIDE_ROLE = {Side.SUPPORT: is_agent, Side.ENGINEERING: is_engineer}
_SIDE_REFUSAL = {
    Side.SUPPORT: "Only support agents and managers can take this action.",
    Side.ENGINEERING: "Only engineers can take this action.",
}


def may_read(user) -> bool:
    """Support staff and engineers read escalations (each sees what ``selectors`` allows)."""
    return is_agent(user) or is_engineer(user)


def side_of_action(action_name: str | None) -> str | None:
    """The side an action belongs to; None for reads and anything that is not an action."""
    found = ACTIONS.get(action_name or "")
    return found.side if found else None


def has_side(user, side: str) -> bool:
    """Whether ``user`` holds the role of ``side`` (support or engineering)."""
    return _SIDE_ROLE[side](user)


def refusal(side: str) -> str:
    return _SIDE_REFUSAL[side]


def may_act_on(user, escalation, *, side: str) -> bool:
    """Whether ``user`` may take ``side``'s actions on this escalation (state aside)."""
    if not has_side(user, side):
        return False
    if side == Side.ENGINEERING:
        return selectors.engineer_may_see_team(user, escalation.team_id)
    return True


def require(user, escalation=None, *, side: str) -> None:
    """PermissionDenied unless ``user`` may take ``side``'s actions (on ``escalation`` when given)."""
    if not has_side(user, side):
        raise PermissionDenied(refusal(side))
    if escalation is not None and not may_act_on(user, escalation, side=side):
        raise PermissionDenied(f"{escalation.key} is for a team outside your scope.")


def actions_for(user, escalation, *, side: str) -> list[str]:
    """The actions of ``side`` that ``user`` may take on ``escalation`` now, in a stable order."""
    if not may_act_on(user, escalation, side=side):
        return []
    return allowed_actions(escalation.state, side=side)


def side_of_user(user) -> str | None:
    """The side a user works on (support first, for a user who holds both roles)."""
    if is_agent(user):
        return Side.SUPPORT
    if is_engineer(user):
        return Side.ENGINEERING
    return None
