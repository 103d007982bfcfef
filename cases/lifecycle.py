"""The case lifecycle of DOMAIN.md: the only place that says which status may follow which."""

from __future__ import annotations

from supportdesk.core.errors import DomainError

from .models import OPEN_STATUSES, Status

ALLOWED: dict[str, frozenset[str]] = {
    Status.NEW: frozenset({Status.TRIAGED}),
    Status.TRIAGED: frozenset({Status.IN_PROGRESS}),
    Status.IN_PROGRESS: frozenset({Status.WAITING_ON_CUSTOMER, Status.WAITING_ON_ENGINEERING}),
    Status.WAITING_ON_CUSTOMER: frozenset({Status.IN_PROGRESS}),
    Status.WAITING_ON_ENGINEERING: frozenset({Status.IN_PROGRESS}),
    Status.REOPENED: frozenset({Status.IN_PROGRESS}),
    Status.RESOLVED: frozenset({Status.CLOSED, Status.REOPENED}),
    Status.CLOSED: frozenset(),
}
# Any open status may be resolved.
for _open in OPEN_STATUSES:
    ALLOWED[_open] = ALLOWED[_open] | {Status.RESOLVED}

# Closing happens only automatically, N days after resolution (see services.auto_close_resolved).
SYSTEM_ONLY: frozenset[str] = frozenset({Status.CLOSED})


class IllegalTransition(DomainError):
    code = "illegal_transition"

    def __init__(self, current: str, to: str, reason: str | None = None) -> None:
        self.current = current
        self.to = to
        if reason is None:
            allowed = ", ".join(sorted(ALLOWED.get(current, ()))) or "none"
            reason = f"A case cannot go from “{current}” to “{to}”. Allowed next: {allowed}."
        super().__init__(reason, field="to")


def allowed_next(current: str, *, system: bool = False) -> list[str]:
    """The statuses a person (or, with ``system``, the scheduler) may move a case to next."""
    nexts = ALLOWED.get(current, frozenset())
    if not system:
        nexts = nexts - SYSTEM_ONLY
    order = [s.value for s in Status]
    return sorted(nexts, key=order.index)


def check_transition(current: str, to: str, *, system: bool = False) -> None:
    """Raise IllegalTransition unless ``current -> to`` is allowed for this kind of actor."""
    if to not in Status.values:
        raise IllegalTransition(current, to, f"“{to}” is not a case status.")
    if to not in ALLOWED.get(current, frozenset()):
        raise IllegalTransition(current, to)
    if to in SYSTEM_ONLY and not system:
        raise IllegalTransition(
            current, to, "Cases close automatically after the configured days in “resolved”."
        )


# A person who reopens a case says why (the customer's mail is the reason when the customer's
# mail reopens it): the reason goes on the timeline with the reopen.
REASON_REQUIRED: frozenset[str] = frozenset({Status.REOPENED})
REASON_MISSING = "Say why the case is reopened (what the customer reported)."


def needs_reason(to: str) -> bool:
    """Whether a person moving a case to ``to`` must give a reason."""
    return to in REASON_REQUIRED
