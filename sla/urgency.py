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

import functools
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from django.db import connections, models, router
from django.db.models import Exists, OuterRef, Q, Subquery, Value, When
from django.db.models.functions import Coalesce
from django.db.models.sql import UpdateQuery

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
    updated = 0
    for start in range(0, len(ids), _BATCH):
        chunk = ids[start : start + _BATCH]
        sql, params = _update_sql(case_model, clock_model, open_only, len(chunk))
        with connections[router.db_for_write(case_model)].cursor() as cursor:
            cursor.execute(sql, [*params[: -len(chunk)], *chunk])
            updated += cursor.rowcount
    return updated


@functools.lru_cache(maxsize=64)
def _update_sql(case_model, clock_model, open_only: bool, count: int) -> tuple[str, tuple]:
    """The UPDATE for ``count`` case ids, compiled once: the statement is the same every time but
    for the ids, which are its last parameters (compiling the subqueries costs ~4 ms, running the
    statement for one case 0.05 ms). Keyed by the models, so migrations' historical models get
    their own."""
    rows = case_model.objects.filter(OPEN_Q) if open_only else case_model.objects.all()
    placeholder = list(range(-count, 0))  # ids no row has: only their number matters here
    query = rows.filter(pk__in=placeholder).query.chain(UpdateQuery)
    query.add_update_values(columns(clock_model))
    sql, params = query.get_compiler(router.db_for_write(case_model)).as_sql()
    if tuple(params[-count:]) != tuple(placeholder):  # pragma: no cover - Django changed its SQL
        raise RuntimeError("The urgency UPDATE no longer ends with the case ids.")
    return sql, tuple(params)
