"""Attachments: size-limited, checked by content (not by the declared type), stored on the default
storage, downloaded only by those who may see the escalation."""

from __future__ import annotations

import gzip
import io
import zipfile

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from escalations import services
from escalations.validators import MAX_ATTACHMENTS_PER_ESCALATION
from supportdesk.core.errors import DomainError
from tests import factories

pytestmark = pytest.mark.django_db

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 32
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.log", "ERROR timeout")
    return buffer.getvalue()


def _attach(escalation, agent, now, name, content, content_type):
    return services.add_attachment(
        escalation, upload=SimpleUploadedFile(name, content, content_type), actor=agent, now=now
    )


@pytest.mark.parametrize(
    ("name", "content", "declared", "stored_as"),
    [
        ("app.log", b"2025-03-03 ERROR upstream timed out\n", "text/plain", "text/plain"),
        ("trace.json", b'{"spans": []}', "application/json", "application/json"),
        ("shot.png", PNG, "image/png", "image/png"),
        ("shot.jpg", JPEG, "image/jpeg", "image/jpeg"),
        ("shot.jpg", JPEG, "image/pjpeg", "image/jpeg"),
        ("report.pdf", PDF, "application/pdf", "application/pdf"),
        ("logs.zip", _zip(), "application/zip", "application/zip"),
        ("logs.gz", gzip.compress(b"ERROR"), "application/gzip", "application/gzip"),
        ("logs.gz", gzip.compress(b"ERROR"), "application/octet-stream", "application/gzip"),
        ("har.json", b'{"log": {}}', "text/plain", "text/plain"),
        ("notes", "Grüße, café\n".encode(), "", "text/plain"),
    ],
)
def test_allowed_files_are_stored_with_their_verified_type(
    draft, agent, now, name, content, declared, stored_as
):
    attachment = _attach(draft, agent, now, name, content, declared)
    assert attachment.content_type == stored_as
    assert attachment.size == len(content)
    assert attachment.name == name
    assert default_storage.exists(attachment.file.name)
    with attachment.file.open("rb") as stored:
        assert stored.read() == content


@pytest.mark.parametrize(
    ("content", "declared", "message"),
    [
        (b"MZ\x90\x00 a windows executable", "application/x-msdownload", "not accepted"),
        (b"<html><script>alert(1)</script>", "text/html", "not accepted"),
        (b"MZ\x90\x00\x03\x00\x00\x00", "image/png", "not image/png"),
        (b"just text", "application/pdf", "not application/pdf"),
        (b"not { json", "application/json", "not valid JSON"),
        (b"\xff\xfe\x00\x00 binary junk \x00\x01", "text/plain", "UTF-8"),
        (b"\x00\x01\x02\x03 unknown binary", "application/octet-stream", "not one of the accepted types"),
        (b"", "text/plain", "empty"),
    ],
)
def test_other_content_is_refused_whatever_it_claims(draft, agent, now, content, declared, message):
    with pytest.raises(DomainError) as info:
        _attach(draft, agent, now, "upload.bin", content, declared)
    assert info.value.field == "file"
    assert message in info.value.message
    assert not draft.attachments.exists()


def test_files_over_the_size_limit_are_refused(draft, agent, now, settings):
    settings.ATTACHMENT_MAX_BYTES = 10
    assert _attach(draft, agent, now, "ok.log", b"0123456789", "text/plain").size == 10
    with pytest.raises(DomainError) as info:
        _attach(draft, agent, now, "big.log", b"0123456789A", "text/plain")
    assert "at most 10 bytes" in info.value.message
    assert draft.attachments.count() == 1


def test_the_default_limit_is_ten_megabytes():
    from supportdesk.core.files import max_attachment_bytes

    assert max_attachment_bytes() == 10 * 1024 * 1024


def test_an_escalation_holds_a_limited_number_of_files(draft, agent, now):
    for i in range(MAX_ATTACHMENTS_PER_ESCALATION):
        _attach(draft, agent, now, f"{i}.log", b"x", "text/plain")
    with pytest.raises(DomainError, match="at most"):
        _attach(draft, agent, now, "one-more.log", b"x", "text/plain")


def test_files_are_added_only_while_the_package_is_editable(escalation_in, agent, now):
    escalation = escalation_in("acknowledged")
    with pytest.raises(DomainError) as info:
        _attach(escalation, agent, now, "late.log", b"x", "text/plain")
    assert info.value.field == "file"


def test_a_dangerous_file_name_is_made_safe(draft, agent, now):
    attachment = _attach(draft, agent, now, "../../etc/pass wd.log", b"x", "text/plain")
    assert "/" not in attachment.name
    assert ".." not in attachment.file.name.split("/")


def test_two_files_with_the_same_name_do_not_overwrite_each_other(draft, agent, now):
    first = _attach(draft, agent, now, "app.log", b"first", "text/plain")
    second = _attach(draft, agent, now, "app.log", b"second", "text/plain")
    assert first.file.name != second.file.name
    with first.file.open("rb") as stored:
        assert stored.read() == b"first"


def test_download_needs_permission_to_see_the_escalation(
    client, draft, agent, engineer, identity, scope_to, now
):
    from escalations.models import EngineerScope

    attachment = _attach(draft, agent, now, "app.log", b"ERROR", "text/plain")
    url = reverse("escalations:attachment", args=[draft.pk, attachment.pk])
    assert client.get(url).status_code == 302  # anonymous -> login
    client.force_login(factories.UserFactory(username="nobody"))
    assert client.get(url).status_code == 403
    client.force_login(engineer)
    assert client.get(url).status_code == 404  # a draft is not engineering's yet
    services.submit(draft, actor=agent, now=now)
    response = client.get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain"
    assert response["Content-Disposition"] == 'attachment; filename="app.log"'
    assert b"".join(response.streaming_content) == b"ERROR"
    scope_to(engineer, identity)
    assert client.get(url).status_code == 404
    EngineerScope.objects.filter(user=engineer).delete()
    client.force_login(agent)
    assert client.get(url).status_code == 200
    other = reverse("escalations:attachment", args=[draft.pk, attachment.pk + 1000])
    assert client.get(other).status_code == 404


def test_upload_through_the_page(client, draft, agent):
    client.force_login(agent)
    url = reverse("escalations:upload", args=[draft.pk])
    response = client.post(url, {"file": SimpleUploadedFile("a.log", b"hello", "text/plain")})
    assert response.status_code == 302
    assert draft.attachments.get().name == "a.log"
    response = client.post(
        url, {"file": SimpleUploadedFile("a.exe", b"MZ\x90\x00", "application/x-msdownload")}
    )
    assert response.status_code == 400
    assert "not accepted" in response.content.decode()
    response = client.post(url, {})
    assert response.status_code == 400
    assert draft.attachments.count() == 1
