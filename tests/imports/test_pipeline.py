"""On PostgreSQL, outside a caller's transaction, batches are prepared in a thread (with its own
connection) while the previous one is written. The result is the same as the plain path's."""

from __future__ import annotations

import pytest
from django.db import connection

from cases.models import Case, CaseEvent
from imports.models import JobStatus
from metrics.selectors import Ratio, reopen_rate
from tests.imports.conftest import DATA, MARCH, run

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the pipeline runs on PostgreSQL only"),
]


def test_the_pipelined_import_writes_what_the_plain_one_does():
    job = run(DATA / "servicenow.csv", batch_rows=5)  # several batches, so the thread runs ahead
    assert job.status == JobStatus.SUCCEEDED
    assert (job.cases_created, job.events_created, job.cases_rejected, job.rows_rejected) == (5, 29, 2, 3)
    assert CaseEvent.objects.filter(imported=True).count() == 29
    assert reopen_rate(**MARCH) == Ratio(1, 5)
    again = run(DATA / "servicenow.csv", batch_rows=5)
    assert (again.cases_unchanged, again.events_created) == (5, 0)
    assert Case.objects.count() == 5


def test_a_failure_in_the_thread_fails_the_job(monkeypatch):
    from imports import history

    def broken(*args, **kwargs):
        raise RuntimeError("derivation exploded")

    monkeypatch.setattr("imports.services.derive", broken)
    assert history.derive is not broken
    with pytest.raises(RuntimeError, match="derivation exploded"):
        run(DATA / "servicenow.csv", batch_rows=5)
    from imports.models import ImportJob

    job = ImportJob.objects.get()
    assert job.status == JobStatus.FAILED
    assert "derivation exploded" in job.error
