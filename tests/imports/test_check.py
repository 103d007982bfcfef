"""``import_history --check``: the whole file read, every problem listed by kind with its count and
first rows, in one run, nothing written; a non-zero exit status when there are problems."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from cases.models import Case, Contact, Organisation, Team
from imports import services
from imports.mapping import default_mapping_text
from imports.models import ImportJob
from tests.imports.conftest import DATA
from tests.imports.history import Row, export

pytestmark = pytest.mark.django_db
XES_MAPPING = "imports/mappings/xes-example.toml"


def check(*args, **options) -> tuple[str, int]:
    """The command's output and its exit status."""
    out = io.StringIO()
    try:
        call_command("import_history", *args, "--check", stdout=out, no_progress=True, **options)
    except CommandError as exc:
        out.write(f"CommandError: {exc}")
        return out.getvalue(), exc.returncode
    return out.getvalue(), 0


def many_unknown_states(tmp_path):
    rows = [Row("INC1", "New", 0, "01/03 09:00"), Row("INC1", "Pending Change", 1, "01/03 10:00")]
    for number in range(2, 6):
        rows += [
            Row(f"INC{number}", "New", 0, "02/03 09:00"),
            Row(f"INC{number}", "On Hold", 1, "02/03 10:00"),
            Row(f"INC{number}", "On Hold", 2, "02/03 11:00"),
        ]
    rows += [
        Row("INC6", "New", 0, "03/03 09:00"),
        Row("INC6", "Cancelled", 1, "03/03 10:00"),
        Row("INC7", "New", 0, "31/02 09:00"),
        Row("INC8", "New", 0, "04/03 09:00"),
        Row("INC8", "Resolved", 1, "04/03 10:00"),
    ]
    return export(tmp_path / "export.csv", rows)


def test_check_lists_every_unknown_state_of_a_file_in_one_run_and_writes_nothing(tmp_path):
    path = many_unknown_states(tmp_path)
    with CaptureQueriesContext(connection) as queries:
        out, status = check(str(path), format="servicenow-csv", tz="UTC")

    assert status == 1
    assert "Checked export.csv: 19 rows read; nothing was written." in out
    assert "An import would create 1 case(s)" in out
    assert "it would reject 7 case(s) (11 bad rows)" in out
    assert "Problems (5 kind(s), 12 in all):" in out
    assert "  unknown state “On Hold”: 8 rows in 4 cases (line 5, line 6, line 8, ...)" in out
    assert "  unknown state “Pending Change”: 1 row in 1 case (line 3)" in out
    assert "  unknown state “Cancelled”: 1 row in 1 case (line 17)" in out
    assert "      first: line 3: unknown state “Pending Change”: add it to [status] in the mapping" in out
    assert "  sys_updated_at is not a valid date: 1 row in 1 case (line 18)" in out
    assert "  opened_at is not a valid date: 1 row in 1 case (line 18)" in out
    assert "CommandError: 12 problem(s) of 5 kind(s) found" in out
    # Read only: nothing recorded, not even a job.
    assert not any(q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")) for q in queries)
    assert not ImportJob.objects.exists()
    assert not Case.objects.exists()
    assert not Organisation.objects.exists()
    assert not Team.objects.exists()
    assert not Contact.objects.exists()


def test_check_of_a_clean_file_says_so_and_what_the_import_would_adjust(tmp_path):
    path = export(
        tmp_path / "clean.csv",
        [Row("INC1", "New", 0, "01/03 09:00"), Row("INC1", "Active", 1, "01/03 10:00")],
    )
    out, status = check(str(path), format="servicenow-csv", tz="UTC")
    assert status == 0
    assert "No problems found." in out
    assert "Adjustments the import would make to the source's history" in out
    assert "new → in_progress, written as new → triaged → in_progress: 1 in 1 case, e.g. INC1" in out
    assert "Mapped columns that never have a value: resolved_at, assigned_to." in out


def test_check_of_an_xes_log_names_the_attributes_no_event_has(tmp_path):
    mapping = tmp_path / "mine.toml"
    text = Path(XES_MAPPING).read_text(encoding="utf-8")
    mapping.write_text(text.replace('field = "group"', 'field = "support_group"'))
    out, status = check(str(DATA / "helpdesk.xes"), format="xes", mapping=str(mapping))
    assert status == 1
    assert "the mapping names “support_group”, which no event or trace of the file has" in out
    # The log's own bad traces are listed beside it.
    assert (
        "  unknown state “Escalate to management+complete” or “Escalate to management”: 1 row in 1 case "
        "(trace 5 (T-1005), event 2)"
    ) in out
    assert "  no concept:name (it belongs to no case): 1 row" in out
    assert not ImportJob.objects.exists()


def test_check_of_a_file_without_the_mapped_columns_fails_at_once(tmp_path):
    other = tmp_path / "other.csv"
    other.write_text("id,title\n1,Hello\n")
    out, status = check(str(other), format="servicenow-csv")
    assert status == 1
    assert "does not have: number, incident_state, sys_updated_at" in out


def test_check_file_counts_known_cases_as_an_import_would(tmp_path):
    path = export(
        tmp_path / "export.csv",
        [Row("INC1", "New", 0, "01/03 09:00"), Row("INC1", "Resolved", 1, "01/03 10:00")],
    )
    options = {"format": "servicenow-csv", "mapping_text": default_mapping_text("servicenow-csv")}
    now = dt.datetime(2023, 4, 1, tzinfo=dt.UTC)
    job = services.create_job(**options, mapping_name="test", now=now, path=str(path), time_zone="UTC")
    services.run_import(job, now=now)
    report = services.check_file(**options, path=str(path), now=now, time_zone="UTC")
    assert not report.has_problems
    assert (report.counters.cases_created, report.counters.cases_unchanged) == (0, 1)
