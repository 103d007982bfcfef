"""manage.py import_history: progress bar, summary, strict mode, and clear errors."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from cases.models import Case
from imports.models import ImportJob, JobStatus
from tests.imports.conftest import DATA

pytestmark = pytest.mark.django_db
SN = str(DATA / "servicenow.csv")


def command(*args, **options) -> str:
    out = io.StringIO()
    call_command("import_history", *args, stdout=out, **options)
    return out.getvalue()


def test_the_command_imports_and_summarises():
    out = command(SN, format="servicenow-csv", tz="Europe/Berlin", no_progress=True)
    assert "27 rows read" in out
    assert "Cases: 5 created, 0 with new updates, 0 unchanged, 2 rejected (3 bad rows)." in out
    assert "Events: 34 written." in out
    assert "  INC0000005: line 21: unknown state “Pending Change”" in out
    assert "  (no key): line 28: no number" in out
    job = ImportJob.objects.get()
    assert (job.status, job.created_by, job.source_name) == (JobStatus.SUCCEEDED, None, "servicenow.csv")


def test_the_progress_bar_shows_rows_per_second(capsys):
    command(SN, format="servicenow-csv", tz="Europe/Berlin")
    err = capsys.readouterr().err
    assert "importing" in err
    assert "100%" in err
    assert "rows/s" in err
    assert "cases=5, events=34, rejected=2" in err


def test_strict_fails_with_nothing_written():
    with pytest.raises(CommandError, match="Strict import found 3 problem.*the first: line 21"):
        command(SN, format="servicenow-csv", tz="Europe/Berlin", strict=True, no_progress=True)
    assert not Case.objects.exists()
    assert ImportJob.objects.get().status == JobStatus.FAILED


def test_xes_needs_a_mapping():
    with pytest.raises(CommandError, match="An XES log needs --mapping"):
        command(str(DATA / "helpdesk.xes"), format="xes")


def test_an_xes_log_with_the_example_mapping():
    out = command(
        str(DATA / "helpdesk.xes"),
        format="xes",
        mapping="imports/mappings/xes-example.toml",
        no_progress=True,
    )
    assert "26 events read" in out
    assert "Cases: 5 created" in out


def test_a_broken_mapping_is_explained(tmp_path):
    broken = tmp_path / "broken.toml"
    broken.write_text('[source]\nkey = "number"\n[status]\n"New" = "fresh"\n')
    with pytest.raises(CommandError) as caught:
        command(SN, format="servicenow-csv", mapping=str(broken))
    assert "[source] needs state" in str(caught.value)
    assert "“New” = “fresh”" in str(caught.value)
    assert not ImportJob.objects.exists()


def test_a_missing_file_is_explained():
    with pytest.raises(CommandError, match="No such file"):
        command("/nonexistent/export.csv", format="servicenow-csv")


def test_a_file_without_the_mapped_columns_fails_clearly(tmp_path):
    other = tmp_path / "other.csv"
    other.write_text("id,title\n1,Hello\n")
    with pytest.raises(CommandError, match="does not have: number, incident_state, sys_updated_at"):
        command(str(other), format="servicenow-csv", no_progress=True)
