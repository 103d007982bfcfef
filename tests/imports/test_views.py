"""The managers' import page: upload, run as a Celery task, watch the progress; nobody else gets in."""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import pytest
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from cases.models import Case
from imports import tasks
from imports.models import ImportJob, JobStatus
from supportdesk.core.models import Notification
from tests import factories
from tests.imports.conftest import DATA, IMPORTED_AT

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def worker():
    """Celery hands the job id to a worker; here the task runs in-process, as a worker would run it."""
    task = tasks.run_import._get_current_object()
    with mock.patch.object(task, "delay", side_effect=lambda job_id: task(job_id)) as delay:
        yield delay


def upload(path: Path, name: str | None = None) -> SimpleUploadedFile:
    return SimpleUploadedFile(name or path.name, path.read_bytes(), content_type="application/octet-stream")


def test_anonymous_users_are_sent_to_log_in(client):
    response = client.get(reverse("imports:index"))
    assert response.status_code == 302
    assert reverse("login") in response["Location"]


@pytest.mark.parametrize("role", ["agent", "engineer"])
def test_only_managers_may_import(client, role):
    user = factories.AgentFactory() if role == "agent" else factories.EngineerFactory()
    job = ImportJob.objects.create(
        format="servicenow-csv",
        source_name="x.csv",
        mapping_name="default",
        mapping_text="",
        created_at=IMPORTED_AT,
    )
    client.force_login(user)
    for url in (
        reverse("imports:index"),
        reverse("imports:detail", args=[job.pk]),
        reverse("imports:progress", args=[job.pk]),
    ):
        assert client.get(url).status_code == 403
    response = client.post(
        reverse("imports:index"), {"format": "servicenow-csv", "file": upload(DATA / "servicenow.csv")}
    )
    assert response.status_code == 403
    assert ImportJob.objects.count() == 1


def test_a_manager_uploads_an_export_and_watches_it_run(
    client, manager, worker, media, django_capture_on_commit_callbacks
):
    client.force_login(manager)
    assert client.get(reverse("imports:index")).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("imports:index"),
            {
                "format": "servicenow-csv",
                "file": upload(DATA / "servicenow.csv"),
                "mapping_choice": "default",
                "time_zone": "Europe/Berlin",
            },
        )
    job = ImportJob.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("imports:detail", args=[job.pk])
    worker.assert_called_once_with(job.pk)
    assert job.status == JobStatus.SUCCEEDED
    assert (job.created_by, job.mapping_name) == (manager, "default (servicenow.toml)")
    # The upload lives under MEDIA_ROOT, which web and worker processes share.
    assert Path(job.source_file.path).is_relative_to(media)
    assert Case.objects.filter(external_ref__startswith="INC").count() == 5

    progress = client.get(reverse("imports:progress", args=[job.pk])).json()
    assert progress["status"] == "succeeded"
    assert progress["finished"] is True
    assert progress["percent"] == 100.0
    assert (progress["rows_read"], progress["total"]) == (27, 27)
    assert (progress["cases_created"], progress["cases_rejected"], progress["events_created"]) == (5, 2, 34)
    assert progress["rejections"][0]["key"] == "INC0000005"

    # What the importer changed in the history, by kind, with example keys (the "imports API").
    adjusted = {(a["kind"], a["detail"]): a for a in progress["adjustments"]}
    passage = adjusted[("outside_lifecycle", "new → in_progress")]
    assert passage["written_as"] == "new → triaged → in_progress"
    assert (passage["count"], passage["cases"]) == (3, 3)
    assert passage["label"] == "Transition outside the lifecycle"
    assert adjusted[("missing_resolution_instant", "resolved_at")]["examples"] == ["INC0000003"]
    assert {(p["kind"], p["rows"]) for p in progress["problems"]} == {
        ("unknown_state", 1),
        ("bad_date", 1),
        ("no_key", 1),
    }

    page = client.get(reverse("imports:detail", args=[job.pk])).content.decode()
    assert "line 21: unknown state “Pending Change”" in page
    assert "Adjustments to the source's history" in page
    assert "new → triaged → in_progress" in page
    assert "Resolution instant missing" in page
    assert "unknown state “Pending Change”" in page.split('id="problems"')[1]
    index = client.get(reverse("imports:index")).content.decode()
    assert f"<td>{job.adjustment_count}</td>" in index
    assert f'data-progress-url="/imports/{job.pk}/progress.json"' in page
    assert mail.outbox == []
    assert Notification.objects.count() == 0


def test_an_xes_log_with_an_uploaded_mapping(client, manager, worker, django_capture_on_commit_callbacks):
    client.force_login(manager)
    mapping = SimpleUploadedFile("mine.toml", (Path("imports/mappings/xes-example.toml")).read_bytes())
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("imports:index"),
            {
                "format": "xes",
                "file": upload(DATA / "helpdesk.xes"),
                "mapping_choice": "upload",
                "mapping_file": mapping,
            },
        )
    job = ImportJob.objects.get()
    assert (job.status, job.mapping_name, job.cases_created) == (JobStatus.SUCCEEDED, "mine.toml", 5)


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        (
            {"format": "xes", "mapping_choice": "default"},
            "file",
            "Expected a .xes or .xes.gz or .gz or .xml file",
        ),
        ({"format": "servicenow-csv", "mapping_choice": "upload"}, "mapping_file", "Choose the mapping file"),
        (
            {"format": "servicenow-csv", "mapping_choice": "default", "time_zone": "Mars/Base"},
            "time_zone",
            "not a known time zone",
        ),
    ],
)
def test_bad_uploads_are_form_errors(client, manager, data, field, message):
    client.force_login(manager)
    response = client.post(reverse("imports:index"), {**data, "file": upload(DATA / "servicenow.csv")})
    assert response.status_code == 400
    assert message in " ".join(response.context["form"].errors[field])
    assert not ImportJob.objects.exists()


def test_a_broken_mapping_upload_lists_its_problems(client, manager):
    client.force_login(manager)
    mapping = SimpleUploadedFile("broken.toml", b'[source]\nkey = "number"\n[status]\n"New" = "fresh"\n')
    response = client.post(
        reverse("imports:index"),
        {
            "format": "servicenow-csv",
            "file": upload(DATA / "servicenow.csv"),
            "mapping_choice": "upload",
            "mapping_file": mapping,
        },
    )
    assert response.status_code == 400
    errors = " ".join(response.context["form"].errors["mapping_file"])
    assert "[source] needs state" in errors
    assert "“New” = “fresh”" in errors


def test_a_job_the_broker_cannot_take_is_marked_failed(client, manager, django_capture_on_commit_callbacks):
    client.force_login(manager)
    task = tasks.run_import._get_current_object()
    with (
        mock.patch.object(task, "delay", side_effect=ConnectionRefusedError("broker down")),
        django_capture_on_commit_callbacks(execute=True),
    ):
        client.post(
            reverse("imports:index"),
            {
                "format": "servicenow-csv",
                "file": upload(DATA / "servicenow.csv"),
                "mapping_choice": "default",
            },
        )
    job = ImportJob.objects.get()
    assert job.status == JobStatus.FAILED
    assert "could not be handed to a worker" in job.error


def test_a_task_delivered_twice_runs_the_import_once(manager):
    from imports import services
    from imports.mapping import default_mapping_text

    job = services.create_job(
        format="servicenow-csv",
        mapping_text=default_mapping_text("servicenow-csv"),
        mapping_name="default",
        now=IMPORTED_AT,
        path=str(DATA / "servicenow.csv"),
        time_zone="Europe/Berlin",
    )
    assert tasks.run_import(job.pk) == JobStatus.SUCCEEDED
    assert tasks.run_import(job.pk) == "skipped"
    assert Case.objects.count() == 5


def test_an_imported_case_reads_well_on_its_page(client, agent):
    from tests.imports.conftest import run

    run(DATA / "servicenow.csv")
    case = Case.objects.get(external_ref="INC0000003")
    client.force_login(agent)
    page = client.get(case.get_absolute_url()).content.decode()
    assert "ServiceNow: Awaiting User Info" in page
    assert "Status: In progress → Waiting on customer" in page
    assert "Reopened the case" in page
