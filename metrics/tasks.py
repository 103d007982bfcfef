"""Celery tasks of the metrics app."""

from __future__ import annotations

from celery import shared_task

from . import rollup


@shared_task(name="metrics.refresh_rollup")
def refresh_rollup() -> int:
    """Recompute the rollup's dirty days and roll up the days that left the live window."""
    return rollup.refresh()
