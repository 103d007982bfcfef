"""Where did the time go: a case's resolution time split into support, engineering and customer wait.

Pure code over the case's ordered events (no ORM): ``attribute`` walks the status changes and the
escalation changes and gives every instant of ``[start, end)`` to exactly one side, in wall-clock
time, exact to the microsecond. An instant is

1. **customer wait** while the case is ``waiting_on_customer``, or ``resolved`` before a reopen
   (the customer has the answer and has not said it is not fixed yet);
2. else **engineering** while an escalation of the case is with engineering (submitted,
   acknowledged or in progress: open and not ``needs_info``), credited to each team holding one;
   or while the case is ``waiting_on_engineering`` with no escalation known to be open (a status
   set without one, e.g. imported history);
3. else **support** (new, triaged, in progress, reopened; and ``needs_info``, where engineering
   waits on support's answer).

``escalations.selectors.case_time_attribution`` and ``time_attribution_by_team`` build the events.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

# What an escalation event says about who holds it (``Change.value`` for ``kind="escalation"``).
WITH_ENGINEERING = "with_engineering"  # submitted, answered, acknowledged, started
NEEDS_INFO = "needs_info"  # engineering waits on support's answer
FINISHED = "finished"  # resolved, declined or withdrawn

CUSTOMER_STATUSES = frozenset({"waiting_on_customer", "resolved", "closed"})
WAITING_ON_ENGINEERING = "waiting_on_engineering"

_ZERO = dt.timedelta(0)


@dataclass(frozen=True)
class Change:
    """One event: the case's status became ``value`` (``kind="status"``), or an escalation's holder."""

    at: dt.datetime
    kind: str  # "status" or "escalation"
    value: str
    escalation: int | None = None
    team: int | None = None


@dataclass
class Attribution:
    support: dt.timedelta = _ZERO
    engineering: dt.timedelta = _ZERO
    customer_wait: dt.timedelta = _ZERO
    # Engineering time per engineering team id; two teams holding the case at once are each credited.
    by_team: dict[int, dt.timedelta] = field(default_factory=dict)

    @property
    def total(self) -> dt.timedelta:
        return self.support + self.engineering + self.customer_wait


def attribute(changes: Iterable[Change], *, start: dt.datetime, end: dt.datetime) -> Attribution:
    """Split ``[start, end)`` by the changes (ordered by ``at``; changes at or before ``start`` set
    the initial state, changes after ``end`` are ignored). ``total == end - start`` always."""
    result = Attribution()
    status = ""
    holders: dict[int, tuple[str, int | None]] = {}  # escalation -> (value, team)
    cursor = start

    def account(until: dt.datetime) -> None:
        span = min(until, end) - cursor
        if span <= _ZERO:
            return
        if status in CUSTOMER_STATUSES:
            result.customer_wait += span
            return
        teams = {team for value, team in holders.values() if value == WITH_ENGINEERING}
        waiting_on_support = any(value == NEEDS_INFO for value, _ in holders.values())
        if teams:
            result.engineering += span
            for team in teams:
                if team is not None:
                    result.by_team[team] = result.by_team.get(team, _ZERO) + span
        elif status == WAITING_ON_ENGINEERING and not waiting_on_support:
            result.engineering += span
        else:
            result.support += span

    for change in sorted(changes, key=lambda c: c.at):  # stable: same-instant changes keep their order
        if change.at > cursor:
            account(change.at)
            cursor = change.at
        if change.kind == "status":
            status = change.value
        elif change.escalation is not None:
            if change.value == FINISHED:
                holders.pop(change.escalation, None)
            else:
                holders[change.escalation] = (change.value, change.team)
    account(end)
    return result
