"""Attachments on an S3-compatible object store: uploaded through the page, stored privately in the
bucket (nothing on the web machine's disk), downloaded through the permission-checked view."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from escalations import services
from tests import factories
from tests.objectstore import BUCKET, local_files

pytestmark = pytest.mark.django_db

LOG = b"2025-03-03T09:00:01Z ERROR upstream timed out (req-8f2c91)\n"


def test_an_attachment_goes_to_the_bucket_and_comes_back_through_the_view(
    s3_storage, client, draft, agent, engineer, now
):
    client.force_login(agent)
    response = client.post(
        reverse("escalations:upload", args=[draft.pk]),
        {"file": SimpleUploadedFile("app.log", LOG, "text/plain")},
    )
    assert response.status_code == 302
    attachment = draft.attachments.get()
    assert s3_storage.stored() == [attachment.file.name]
    assert s3_storage.read(attachment.file.name) == LOG
    grants = s3_storage.client.get_object_acl(Bucket=BUCKET, Key=attachment.file.name)["Grants"]
    assert [g["Permission"] for g in grants] == ["FULL_CONTROL"]  # the owner only: not public
    assert local_files(s3_storage.media_root) == []

    page_url = reverse("escalations:attachment", args=[draft.pk, attachment.pk])
    response = client.get(page_url)
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="app.log"'
    assert response["Content-Type"] == "text/plain"
    assert b"".join(response.streaming_content) == LOG

    client.force_login(factories.UserFactory(username="nobody"))
    assert client.get(page_url).status_code == 403
    services.submit(draft, actor=agent, now=now)
    client.force_login(engineer)
    api_url = reverse("escalations_api:escalation-attachment-download", args=[draft.pk, attachment.pk])
    response = client.get(api_url)
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="app.log"'
    assert b"".join(response.streaming_content) == LOG


def test_two_uploads_of_one_name_keep_both_objects(s3_storage, draft, agent, now):
    first = services.add_attachment(
        draft, upload=SimpleUploadedFile("app.log", b"first", "text/plain"), actor=agent, now=now
    )
    second = services.add_attachment(
        draft, upload=SimpleUploadedFile("app.log", b"second", "text/plain"), actor=agent, now=now
    )
    assert first.file.name != second.file.name
    assert [s3_storage.read(first.file.name), s3_storage.read(second.file.name)] == [b"first", b"second"]
