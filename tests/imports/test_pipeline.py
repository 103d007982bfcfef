"""On PostgreSQL, outside a caller's transaction, batches are prepared in a child process (started
afresh with ``spawn``, with its own connection) while the previous one is written. The result is the
same as the plain path's: rejections and counters come back from the child, strict mode still writes
nothing, progress is reported, a failure in the child fails the job."""

from __future__ import annotations

import os

import pytest
from django.db import connection

from cases.models import Case, CaseEvent, Organisation
from imports import services, sources
from imports.models import JobStatus
from metrics.selectors import Ratio, reopen_rate
from tests.imports.conftest import DATA, MARCH, run

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the pipeline runs on PostgreSQL only"),
]
SN = DATA / "servicenow.csv"
LATER = DATA / "servicenow_later.csv"
XES = DATA / "helpdesk.xes"


def test_the_pipelined_import_writes_what_the_plain_one_does():
    job = run(SN, batch_rows=5)  # several batches, so the child runs ahead
    assert job.status == JobStatus.SUCCEEDED
    assert (job.cases_created, job.events_created, job.cases_rejected, job.rows_rejected) == (5, 34, 2, 3)
    assert CaseEvent.objects.filter(imported=True).count() == 34
    assert reopen_rate(**MARCH) == Ratio(1, 5)
    again = run(SN, batch_rows=5)
    assert (again.cases_unchanged, again.events_created) == (5, 0)
    assert Case.objects.count() == 5


def test_an_xes_log_reports_its_bad_traces_from_the_child():
    job = run(XES, format="xes", batch_rows=4)
    assert job.status == JobStatus.SUCCEEDED
    assert (job.total, job.rows_read, job.cases_created, job.cases_rejected, job.rows_rejected) == (
        26, 26, 5, 2, 3,
    )  # fmt: skip
    assert {(r["key"], r["where"]) for r in job.rejections} == {
        ("T-1005", "trace 5 (T-1005)"),
        ("T-1006", "trace 6 (T-1006)"),
        ("", "trace 7"),
    }
    assert reopen_rate(**MARCH) == Ratio(1, 5)


def test_strict_still_writes_nothing_when_a_row_is_bad():
    job = run(XES, format="xes", strict=True, batch_rows=4)
    assert job.status == JobStatus.FAILED
    assert "trace 5 (T-1005), event 2: unknown state" in job.error
    assert not Case.objects.exists()
    assert not Organisation.objects.filter(name="Acme Corp").exists()


def test_strict_imports_a_clean_file_through_the_child(tmp_path):
    lines = SN.read_text().splitlines(keepends=True)
    clean = tmp_path / "clean.csv"
    clean.write_text("".join(lines[:19] + lines[24:27]))
    job = run(clean, strict=True, batch_rows=5)
    assert job.status == JobStatus.SUCCEEDED
    assert (job.cases_created, job.cases_rejected, job.events_created) == (5, 0, 34)


def test_sorting_progress_comes_from_the_child(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "SORT_RUN_ROWS", 4)  # the child sorts in the same runs: several
    lines = SN.read_text().splitlines(keepends=True)
    shuffled = tmp_path / "shuffled.csv"
    shuffled.write_text(lines[0] + "".join(reversed(lines[1:])))
    seen = []

    def progress(phase, done, total, counters):
        seen.append((phase, done))

    job = run(shuffled, batch_rows=5, progress=progress)
    assert (job.cases_created, job.events_created, job.cases_rejected) == (5, 34, 2)
    assert ("sorting", 4) in seen
    assert seen[-2:] == [("importing", 27), ("refreshing", 27)]  # then the dashboard's days


def test_a_later_export_appends_through_the_child():
    run(SN, batch_rows=5)
    later = run(LATER, batch_rows=5)
    assert (later.cases_created, later.cases_updated, later.cases_unchanged) == (1, 1, 4)
    assert later.events_created == 4 + 3
    assert reopen_rate(**MARCH) == Ratio(2, 6)


def test_a_case_imported_meanwhile_by_another_import_is_classified_again_by_the_writer(monkeypatch):
    """The preparing side prepares a case as new; the writer, which classifies again under its lock,
    finds it imported (by another import, after the preparing side looked): unchanged cases count as
    unchanged and the one with new updates is appended. (Prepared in the pipeline's thread, the one
    place a stub of the lookup reaches; the child process would send the case without its timeline,
    and the writer reports it as changed during the import instead.)"""
    monkeypatch.setattr(services, "_can_start_process", lambda: False)
    run(SN)
    monkeypatch.setattr(services._Pass, "_settled", lambda self, plans: (set(), {}))
    later = run(LATER, batch_rows=5)
    assert (later.cases_created, later.cases_updated, later.cases_unchanged) == (1, 1, 4)
    assert not [r for r in later.rejections if r["key"] == "INC0000007"]
    assert later.events_created == 4 + 3


def test_a_failure_in_the_child_fails_the_job(tmp_path):
    """The file changes after a strict import checked it: the child, which opens it afresh, fails
    on it, and the job fails with the child's reason."""
    lines = SN.read_text().splitlines(keepends=True)
    path = tmp_path / "export.csv"
    path.write_text("".join(lines[:19] + lines[24:27]))  # nothing for the check to reject
    replaced = tmp_path / "replaced.csv"
    replaced.write_text("id,state\n1,New\n")

    def progress(phase, done, total, counters):
        if phase == "checking" and replaced.exists():
            os.replace(replaced, path)  # the check goes on reading the file it opened

    job = run(path, strict=True, batch_rows=5, progress=progress)
    assert job.status == JobStatus.FAILED
    assert "The mapping names column(s) the file does not have" in job.error
    assert not Case.objects.exists()


def test_an_unexpected_failure_while_preparing_fails_the_job_and_is_raised(monkeypatch):
    from imports import history

    monkeypatch.setattr(services, "_can_start_process", lambda: False)  # a stub reaches the thread only

    def broken(*args, **kwargs):
        raise RuntimeError("derivation exploded")

    monkeypatch.setattr("imports.services.derive", broken)
    assert history.derive is not broken
    with pytest.raises(RuntimeError, match="derivation exploded"):
        run(SN, batch_rows=5)
    from imports.models import ImportJob

    job = ImportJob.objects.get()
    assert job.status == JobStatus.FAILED
    assert "derivation exploded" in job.error


def test_follow_ups_and_the_adjustments_come_back_from_the_child(tmp_path):
    """A closed case the source moves on opens a linked follow-up (its COPY line names the closed
    case's id, reserved in the child); the adjustments travel with the batches."""
    from imports.mapping import default_mapping_text
    from tests.imports.history import Row, export

    rows = []
    for n in range(1, 5):
        rows += [
            Row(f"INC{n}", "New", 0, "01/03 09:00"),
            Row(f"INC{n}", "Active", 1, "01/03 10:00"),
            Row(f"INC{n}", "Resolved", 2, "01/03 11:00", resolved="01/03 11:00"),
            Row(f"INC{n}", "Closed", 3, "08/03 11:00", closed="08/03 11:00"),
            Row(f"INC{n}", "Resolved", 4, "09/03 11:00", resolved="09/03 11:00"),
        ]
    mapping = default_mapping_text("servicenow-csv").replace(
        'after_close = "reopen"', 'after_close = "new_case"'
    )
    job = run(export(tmp_path / "export.csv", rows), time_zone="UTC", mapping_text=mapping, batch_rows=4)
    assert (job.status, job.cases_created, job.cases_rejected) == (JobStatus.SUCCEEDED, 8, 0)
    for n in range(1, 5):
        follow_up = Case.objects.get(external_ref=f"INC{n}#2")
        assert follow_up.follow_up_of == Case.objects.get(external_ref=f"INC{n}")
        assert follow_up.events.get(kind="follow_up_opened").new_value == follow_up.follow_up_of.key
    counted = {(a["kind"], a["written_as"]): (a["count"], a["cases"]) for a in job.adjustments}
    assert counted == {
        ("outside_lifecycle", "new → triaged → in_progress"): (4, 4),
        ("outside_lifecycle", "a new case, linked to the closed one"): (4, 4),
    }
    again = run(export(tmp_path / "again.csv", rows), time_zone="UTC", mapping_text=mapping, batch_rows=4)
    assert (again.cases_created, again.cases_unchanged, again.adjustments) == (0, 8, [])
