"""The escalation lifecycle: the only place that says which state may follow which, and by whom.

```
draft -> submitted -> acknowledged -> in_progress -> resolved | declined
submitted | acknowledged | in_progress -> needs_info -> submitted      (a bounce, answered by support)
submitted | acknowledged | needs_info | in_progress -> declined
any state before resolved/declined -> withdrawn                        (support takes it back)
```

``withdrawn`` is our addition to DOMAIN.md's states: the issue's "withdraw" action needs an end
state that says support, not engineering, closed the escalation.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import models

from supportdesk.core.errors import DomainError


class EscalationState(models.TextChoices):
    DRAFT = "draft", "Draft"
    SUBMITTED = "submitted", "Submitted"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    NEEDS_INFO = "needs_info", "Needs info"
    IN_PROGRESS = "in_progress", "In progress"
    RESOLVED = "resolved", "Resolved"
    DECLINED = "declined", "Declined"
    WITHDRAWN = "withdrawn", "Withdrawn"


S = EscalationState

# With engineering: at most one of these per (case, team); while one exists the case waits on engineering.
OPEN_STATES: tuple[str, ...] = (S.SUBMITTED, S.ACKNOWLEDGED, S.NEEDS_INFO, S.IN_PROGRESS)
FINISHED_STATES: tuple[str, ...] = (S.RESOLVED, S.DECLINED, S.WITHDRAWN)
# Support may still change the package (engineering asked for more, or it was never sent).
EDITABLE_STATES: tuple[str, ...] = (S.DRAFT, S.NEEDS_INFO)


class Side:
    SUPPORT = "support"
    ENGINEERING = "engineering"


@dataclass(frozen=True)
class Action:
    name: str
    verb: str
    side: str
    sources: frozenset[str]
    target: str | None  # None: the action does not change the state (linking a ticket)


ACTIONS: dict[str, Action] = {
    a.name: a
    for a in (
        Action("submit", "submitted", Side.SUPPORT, frozenset({S.DRAFT}), S.SUBMITTED),
        Action("answer", "answered", Side.SUPPORT, frozenset({S.NEEDS_INFO}), S.SUBMITTED),
        Action(
            "withdraw",
            "withdrawn",
            Side.SUPPORT,
            frozenset({S.DRAFT, S.SUBMITTED, S.ACKNOWLEDGED, S.NEEDS_INFO, S.IN_PROGRESS}),
            S.WITHDRAWN,
        ),
        Action("acknowledge", "acknowledged", Side.ENGINEERING, frozenset({S.SUBMITTED}), S.ACKNOWLEDGED),
        Action(
            "request_info",
            "sent back with questions",
            Side.ENGINEERING,
            frozenset({S.SUBMITTED, S.ACKNOWLEDGED, S.IN_PROGRESS}),
            S.NEEDS_INFO,
        ),
        Action("start", "started", Side.ENGINEERING, frozenset({S.ACKNOWLEDGED}), S.IN_PROGRESS),
        Action("resolve", "resolved", Side.ENGINEERING, frozenset({S.IN_PROGRESS}), S.RESOLVED),
        Action(
            "decline",
            "declined",
            Side.ENGINEERING,
            frozenset({S.SUBMITTED, S.ACKNOWLEDGED, S.NEEDS_INFO, S.IN_PROGRESS}),
            S.DECLINED,
        ),
        Action("link", "linked", Side.ENGINEERING, frozenset(OPEN_STATES) | {S.RESOLVED, S.DECLINED}, None),
    )
}

# Every state change the actions allow, derived from ACTIONS so the two cannot disagree.
ALLOWED: dict[str, frozenset[str]] = {
    state: frozenset(a.target for a in ACTIONS.values() if a.target and state in a.sources)
    for state in S.values
}


class IllegalEscalationTransition(DomainError):
    code = "illegal_transition"

    def __init__(self, key: str, current: str, action: Action) -> None:
        self.current = current
        self.action = action.name
        labels = dict(S.choices)
        allowed = ", ".join(labels[s] for s in S.values if s in action.sources)
        message = (
            f"{key} is {labels.get(current, current).lower()}: it cannot be {action.verb} now "
            f"(only when {allowed.lower()})."
        )
        super().__init__(message, field="state")


def allowed_actions(state: str, *, side: str) -> list[str]:
    """The actions one side may take on an escalation in ``state``, in a stable order."""
    return [a.name for a in ACTIONS.values() if a.side == side and state in a.sources]


def check_action(key: str, state: str, action_name: str) -> Action:
    """The action, or IllegalEscalationTransition when ``state`` does not allow it."""
    action = ACTIONS[action_name]
    if state not in action.sources:
        raise IllegalEscalationTransition(key, state, action)
    return action
