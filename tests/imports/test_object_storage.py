"""An import file on an S3-compatible object store: the page stores the upload in the bucket and the
worker reads it back from there (web and worker need not share a disk)."""

from __future__ import annotations

from unittest import mock

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from cases.models import Case
from imports import tasks
from imports.models import ImportJob, JobStatus
from tests.imports.conftest import DATA
from tests.objectstore import local_files


@pytest.fixture
def worker():
    """Celery hands the job id to a worker; here the task runs in-process, as a worker would run it."""
    task = tasks.run_import._get_current_object()
    with mock.patch.object(task, "delay", side_effect=lambda job_id: task(job_id)) as delay:
        yield delay


def _upload_and_run(client, manager, django_capture_on_commit_callbacks) -> ImportJob:
    client.force_login(manager)
    content = (DATA / "servicenow.csv").read_bytes()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("imports:index"),
            {
                "format": "servicenow-csv",
                "file": SimpleUploadedFile("servicenow.csv", content, "text/csv"),
                "mapping_choice": "default",
                "time_zone": "Europe/Berlin",
            },
        )
    assert response.status_code == 302
    return ImportJob.objects.get()


def _assert_imported_from_the_bucket(job: ImportJob, store) -> None:
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert store.stored() == [job.source_file.name]
    assert job.source_file.name.startswith("imports/")
    assert store.read(job.source_file.name) == (DATA / "servicenow.csv").read_bytes()
    assert local_files(store.media_root) == []
    assert (job.rows_read, job.cases_created, job.cases_rejected) == (27, 5, 2)
    assert Case.objects.filter(external_ref__startswith="INC").count() == 5


@pytest.mark.django_db
def test_an_uploaded_export_is_imported_from_the_bucket(
    s3_storage, client, manager, worker, django_capture_on_commit_callbacks
):
    job = _upload_and_run(client, manager, django_capture_on_commit_callbacks)
    worker.assert_called_once_with(job.pk)
    _assert_imported_from_the_bucket(job, s3_storage)


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_the_preparing_process_reads_the_bucket_too(
    s3_storage, client, manager, worker, django_capture_on_commit_callbacks
):
    """On PostgreSQL outside a transaction the import prepares its batches in another process,
    which opens the file (and its connection to the object store) itself."""
    job = _upload_and_run(client, manager, django_capture_on_commit_callbacks)
    _assert_imported_from_the_bucket(job, s3_storage)
