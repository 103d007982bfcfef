"""Escalation responses match the API schema (bugs schemathesis found in CI, .ci/fuzz_api.py)."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from escalations import services
from tests.schema_check import assert_matches_schema, documented_response

pytestmark = pytest.mark.django_db

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture
def api(agent) -> APIClient:
    client = APIClient()
    client.force_authenticate(agent)
    return client


def test_an_escalation_not_linked_yet_matches_the_schema(api, draft):
    # external_url is "" until a ticket is linked: the schema said format "uri", which "" is not.
    assert draft.external_url == ""
    listed = api.get("/api/escalations/")
    assert_matches_schema(listed, "/api/escalations/", "get")
    detail = api.get(f"/api/escalations/{draft.pk}/")
    assert detail.json()["external_url"] == ""
    assert_matches_schema(detail, "/api/escalations/{id}/", "get")


def test_a_download_is_documented_with_the_files_own_content_type(api, draft, agent, now):
    attachment = services.add_attachment(
        draft, upload=SimpleUploadedFile("shot.png", PNG, "image/png"), actor=agent, now=now
    )
    response = api.get(f"/api/escalations/{draft.pk}/attachments/{attachment.pk}/")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    content = documented_response("/api/escalations/{id}/attachments/{attachment_id}/", "get", 200)["content"]
    assert list(content) == ["*/*"]  # not application/octet-stream, which an image is not
