"""The SLA sweep's readiness check (registered with ``/healthz/ready`` in ``SlaConfig.ready``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from django.conf import settings
from prometheus_client.core import Metric

from cases.models import Case
from supportdesk.core.health import CheckResult, seconds
from supportdesk.core.models import Heartbeat
from supportdesk.core.prometheus import gauge

from . import selectors
from .models import ClockState, SlaClock

# Recorded by each completed ``sla.sweep`` with the instant it swept up to (its start): every
# warning and breach due by then has been recorded, except on cases locked at that moment.
SWEEP_HEARTBEAT = "sla-sweep"


def check_sweep(*, now: dt.datetime) -> CheckResult:
    """Behind when the last completed sweep is older than HEALTH_SWEEP_MAX_LAG_SECONDS (none sent,
    none finishing, or one taking that long), or when a warning or breach that passed longer ago
    than that is still unrecorded although sweeps complete (a case the sweep keeps missing)."""
    max_lag = settings.HEALTH_SWEEP_MAX_LAG_SECONDS
    swept_to = Heartbeat.objects.filter(name=SWEEP_HEARTBEAT).values_list("seen_at", flat=True).first()
    if swept_to is None:
        return CheckResult(
            "not yet seen",
            "no SLA sweep has completed yet: are celery beat and a worker for the SLA queue running?",
            {"sla_sweep_last_completed": None, "sla_sweep_lag_seconds": None},
        )
    lag = now - swept_to
    details: dict = {"sla_sweep_last_completed": swept_to.isoformat(), "sla_sweep_lag_seconds": seconds(lag)}
    if lag > dt.timedelta(seconds=max_lag):
        return CheckResult(
            "behind",
            f"the last completed SLA sweep ran {seconds(lag)} s ago (more than {max_lag} s): sweeps are "
            "not sent, not picked up, or take that long",
            details,
        )
    missed = selectors.oldest_unrecorded_deadline(now=now, older_than=dt.timedelta(seconds=max_lag))
    if missed is not None:
        key = Case(pk=missed.case_id).key
        overdue = seconds(now - missed.due)
        details["sla_oldest_unrecorded"] = {
            "case": key,
            "target": missed.target,
            "kind": missed.kind,
            "due": missed.due.isoformat(),
            "overdue_seconds": overdue,
        }
        return CheckResult(
            "behind",
            f"the {missed.kind} of {key}'s {missed.target} clock passed {overdue} s ago and is not "
            f"recorded (more than {max_lag} s) although sweeps complete",
            details,
        )
    return CheckResult("ok", None, details, f"last completed sweep ran {seconds(lag)} s ago")


def sweep_figures(*, now: dt.datetime) -> Iterator[Metric]:
    """The sweep's Prometheus figures (registered for ``/ops/metrics`` in ``SlaConfig.ready``)."""
    # The sweep records a running clock's breach once it is due: what is still running past its
    # due instant is work the sweep has not done yet (the partial index on due_at of running clocks).
    oldest_due = (
        SlaClock.objects.filter(state=ClockState.RUNNING, due_at__lt=now)
        .order_by("due_at")
        .values_list("due_at", flat=True)
        .first()
    )
    lag = (now - oldest_due).total_seconds() if oldest_due is not None else 0.0
    yield gauge(
        "supportdesk_sla_sweep_lag_seconds",
        "How long the oldest running clock is past due without its breach recorded (0 if none).",
        lag,
    )
    # Written by sla.sweep when it finishes; absent until the first sweep (alert on absent()).
    last = Heartbeat.objects.filter(name=SWEEP_HEARTBEAT).values_list("seen_at", flat=True).first()
    if last is not None:
        yield gauge(
            "supportdesk_sla_sweep_last_run_age_seconds",
            "Seconds since the SLA sweep last finished.",
            max((now - last).total_seconds(), 0.0),
        )
