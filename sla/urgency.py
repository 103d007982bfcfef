"""The queue's urgency of a case, computed from its clocks: one rule, written in SQL.

``Case.next_due_at`` is the earliest due instant of the case's clocks still to be met: running ones,
and breached ones not met yet at their (past) due instant, so the most overdue case comes first.
``next_due_target`` names that clock's target and ``next_due_state`` says where it stands
(breached, at risk once warned, on track). A case that is not open has none; an open case whose
clocks are all paused (waiting on the customer) is ``paused``, one with no clocks ``none``.

The SLA app refreshes the columns in the transaction that moves the clocks (an event, the sweep's
batch, an import's batch); the backfill migration uses the same function with historical models.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from django.db import models
from django.db.models import Exists, OuterRef, Q, Subquery, Value, When
from django.db.models.functions import Coalesce

from cases.models import OPEN_Q, DueState

FIELDS = ("next_due_at", "next_due_target", "next_due_state")
_BATCH = 1000
# The cases whose refresh waits for the end of a ``deferred()`` block (None: refresh at once).
_deferred: ContextVar[set[int] | None] = ContextVar("urgency_deferred", default=None)


@contextmanager
def deferred() -> Iterator[None]:
    """Inside, ``refresh`` only notes its cases; leaving the block refreshes them all at once.

    For a bulk writer whose cases nobody reads until it ends (the demo load replays thousands of
    events): the same columns from the same clocks, one UPDATE per batch instead of one per event.
    Use it inside the writing transaction, so the urgency still commits with the clocks.
    """
    pending: set[int] = set()
    token = _deferred.set(pending)
    try:
        yield
    finally:
        _deferred.reset(token)
    refresh(pending)


def pending_q() -> Q:
    """Clocks still to be met: running, or breached and not met yet."""
    return Q(state="running") | Q(state="breached", met_at__isnull=True)


def columns(clock_model) -> dict[str, models.Expression]:
    """The three columns of every updated case, as correlated subqueries over its few clocks (the
    (case, target, run) index): one UPDATE serves one case or a batch of them."""
    first = clock_model.objects.filter(pending_q(), case_id=OuterRef("pk")).order_by("due_at", "id")[:1]
    first_state = first.annotate(
        due_state=models.Case(
            When(state="breached", then=Value(DueState.BREACHED.value)),
            When(warned_at__isnull=False, then=Value(DueState.AT_RISK.value)),
            default=Value(DueState.ON_TRACK.value),
        )
    ).values("due_state")
    paused = clock_model.objects.filter(case_id=OuterRef("pk"), state="paused")
    waiting = models.Case(
        When(Exists(paused), then=Value(DueState.PAUSED.value)), default=Value(DueState.NONE.value)
    )
    text = models.CharField()
    return {
        "next_due_at": models.Case(
            When(OPEN_Q, then=Subquery(first.values("due_at"))),
            default=None,
            output_field=models.DateTimeField(),
        ),
        "next_due_target": models.Case(
            When(OPEN_Q, then=Coalesce(Subquery(first.values("target")), Value(""))),
            default=Value(""),
            output_field=text,
        ),
        "next_due_state": models.Case(
            When(OPEN_Q, then=Coalesce(Subquery(first_state), waiting, output_field=text)),
            default=Value(DueState.NONE.value),
            output_field=text,
        ),
    }


def refresh(case_ids: Iterable[int], *, open_only: bool = False, case_model=None, clock_model=None) -> int:
    """Recompute the urgency of these cases (the caller holds their locks or writes them in the same
    transaction). ``open_only`` skips the cases that are not open (for new rows whose columns are
    still empty). Returns how many rows were updated."""
    pending = _deferred.get()
    if pending is not None and case_model is None:
        # A new row's columns are computed as for any other: not open means none (see columns()).
        pending.update(case_ids)
        return 0
    if case_model is None or clock_model is None:
        from cases.models import Case

        from .models import SlaClock

        case_model, clock_model = Case, SlaClock
    ids = sorted(set(case_ids))
    values = columns(clock_model)
    updated = 0
    rows = case_model.objects.filter(OPEN_Q) if open_only else case_model.objects.all()
    for start in range(0, len(ids), _BATCH):
        updated += rows.filter(pk__in=ids[start : start + _BATCH]).update(**values)
    return updated
