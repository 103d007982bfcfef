"""Celery tasks of the metrics app."""

from __future__ import annotations

from celery import shared_task

from . import rollup


@shared_task(name="metrics.refresh_rollup", soft_time_limit=540, time_limit=600)
def refresh_rollup() -> int:
    """Recompute the rollup's dirty days and roll up the days that left the live window."""
    return rollup.refresh()
