"""The shared upload helpers: a checked upload's safe name and type, files removed again when the
write that stored them fails, downloads that are never shown inline."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile

from supportdesk.core.files import check_upload, download_response, removed_on_error

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


def test_check_upload_gives_the_safe_name_and_the_verified_type_rewound():
    upload = SimpleUploadedFile("../../shot one.png", PNG, "application/octet-stream")
    checked = check_upload(upload)
    assert (checked.name, checked.content_type, checked.size) == ("shot_one.png", "image/png", len(PNG))
    assert upload.read() == PNG  # rewound: stored whole


def test_check_upload_refuses_what_check_attachment_refuses():
    with pytest.raises(ValidationError, match="not accepted"):
        check_upload(SimpleUploadedFile("a.exe", b"MZ\x90\x00", "application/x-msdownload"))


def _store_then_fail(stored: list[str]) -> None:
    with removed_on_error() as names:
        names.append(default_storage.save("t/a.txt", ContentFile(b"a")))
        stored.extend(names)
        raise RuntimeError("rolled back")


def test_files_written_in_a_failed_block_are_deleted_and_the_error_kept():
    stored: list[str] = []
    with pytest.raises(RuntimeError, match="rolled back"):
        _store_then_fail(stored)
    assert len(stored) == 1
    assert not default_storage.exists(stored[0])


def test_files_of_a_block_that_succeeds_stay():
    with removed_on_error() as stored:
        stored.append(default_storage.save("t/b.txt", ContentFile(b"b")))
    assert default_storage.exists(stored[0])


def test_download_is_an_attachment_with_the_verified_type_and_nosniff(db):
    from cases.models import CaseAttachment

    row = CaseAttachment(case_id=1, name="page.html")
    row.file.save("page.html", ContentFile(b"<script>alert(1)</script>"), save=False)
    response = download_response(row.file, name="page.html", content_type="text/plain")
    assert response["Content-Disposition"] == 'attachment; filename="page.html"'
    assert response["Content-Type"] == "text/plain"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert b"".join(response.streaming_content) == b"<script>alert(1)</script>"
