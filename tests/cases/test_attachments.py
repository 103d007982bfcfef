"""Files on public replies and internal notes: checked like every upload, kept on the timeline event
(or not at all: no file is left behind by a refused or failed write), sent with the reply's e-mail."""

from __future__ import annotations

import os

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from cases import services
from cases.models import CaseAttachment, EventKind, Status
from supportdesk.core.errors import DomainError
from supportdesk.core.models import OutboundMessage
from tests.outbox import deliver_mail

pytestmark = pytest.mark.django_db

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 40
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj <<>> endobj\n"
LOG = b"2025-03-03 09:00:01 ERROR upstream timed out\n"


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return tmp_path / "media"


def stored_files(media) -> list[str]:
    return sorted(
        os.path.relpath(os.path.join(root, name), media)
        for root, _, names in os.walk(media)
        for name in names
    )


def png(name="screenshot.png"):
    return SimpleUploadedFile(name, PNG, "image/png")


def log(name="app.log"):
    return SimpleUploadedFile(name, LOG, "text/plain")


def exe(name="setup.exe"):
    return SimpleUploadedFile(name, b"MZ\x90\x00\x03", "application/x-msdownload")


# --- Services ------------------------------------------------------------------------------------


def test_reply_files_are_kept_on_the_event_and_sent_with_the_mail(new_case, agent, now, media, mailoutbox):
    event = services.add_public_reply(
        new_case,
        body="Here is the corrected config.",
        attachments=[png(), SimpleUploadedFile("notes", LOG, "")],
        actor=agent,
        now=now,
    )
    files = list(event.attachments.order_by("id"))
    assert [(f.name, f.content_type, f.size) for f in files] == [
        ("screenshot.png", "image/png", len(PNG)),
        ("notes", "text/plain", len(LOG)),  # untyped text: its type comes from the content
    ]
    assert all(f.case_id == new_case.pk and f.uploaded_by == agent and f.uploaded_at == now for f in files)
    with files[0].file.open("rb") as stored:
        assert stored.read() == PNG
    outbound = OutboundMessage.objects.get(event_id=event.pk)
    assert outbound.attachments == [
        {"path": f.file.name, "name": f.name, "content_type": f.content_type} for f in files
    ]
    assert deliver_mail() == 1
    [sent] = mailoutbox
    assert sent.attachments == [("screenshot.png", PNG, "image/png"), ("notes", LOG.decode(), "text/plain")]


def test_note_files_are_kept_on_the_internal_event_and_nothing_is_mailed(new_case, agent, now):
    event = services.add_internal_note(
        new_case, body="Customer's HAR file.", attachments=[log("trace.log")], actor=agent, now=now
    )
    assert not event.is_public
    assert [f.name for f in event.attachments.all()] == ["trace.log"]
    assert not OutboundMessage.objects.exists()


def test_refused_files_are_named_with_the_reason_and_nothing_is_written(new_case, agent, now, media):
    with pytest.raises(DomainError) as refused:
        services.add_public_reply(
            new_case,
            body="See attached",
            attachments=[png(), exe(), SimpleUploadedFile("empty.txt", b"", "text/plain")],
            actor=agent,
            now=now,
        )
    assert refused.value.field == "attachments"
    assert "setup.exe: Files of type “application/x-msdownload” are not accepted" in refused.value.message
    assert "empty.txt: The file is empty." in refused.value.message
    assert "screenshot.png" not in refused.value.message
    assert not new_case.events.filter(kind=EventKind.PUBLIC_REPLY).exists()
    assert not CaseAttachment.objects.exists()
    assert not OutboundMessage.objects.exists()
    assert stored_files(media) == []


def test_a_file_whose_content_is_not_its_type_is_refused(new_case, agent, now):
    with pytest.raises(DomainError, match="shot.png: The file's content is not image/png"):
        services.add_internal_note(
            new_case,
            body="x",
            attachments=[SimpleUploadedFile("shot.png", b"<html>", "image/png")],
            actor=agent,
            now=now,
        )


def test_at_most_ten_files_per_reply_or_note(new_case, agent, now):
    with pytest.raises(DomainError, match="at most 10 files") as refused:
        services.add_internal_note(
            new_case, body="x", attachments=[log(f"{i}.log") for i in range(11)], actor=agent, now=now
        )
    assert refused.value.field == "attachments"
    event = services.add_internal_note(
        new_case, body="x", attachments=[log(f"{i}.log") for i in range(10)], actor=agent, now=now
    )
    assert event.attachments.count() == 10


def test_a_reply_carries_no_more_files_than_a_mail_can(new_case, agent, now, monkeypatch):
    monkeypatch.setattr(services, "MAX_REPLY_ATTACHMENT_BYTES", len(PNG) + 10)
    with pytest.raises(DomainError, match="a reply's e-mail can carry at most") as refused:
        services.add_public_reply(new_case, body="x", attachments=[png(), log()], actor=agent, now=now)
    assert refused.value.field == "attachments"
    # A note is not mailed: the same files are fine there.
    assert services.add_internal_note(new_case, body="x", attachments=[png(), log()], actor=agent, now=now)


def test_files_are_deleted_when_the_reply_is_refused_after_they_were_stored(new_case, agent, now, media):
    services.transition(new_case, Status.RESOLVED, actor=agent, now=now)
    services.transition(new_case, Status.CLOSED, actor=None, now=now)
    with pytest.raises(DomainError, match="is closed"):
        services.add_public_reply(new_case, body="x", attachments=[png()], actor=agent, now=now)
    assert not CaseAttachment.objects.exists()
    assert stored_files(media) == []


def test_files_are_deleted_when_the_transaction_fails(new_case, agent, now, media, monkeypatch):
    def broken_outbox(**kwargs):
        raise RuntimeError("outbox unavailable")

    monkeypatch.setattr(services.outbox, "enqueue", broken_outbox)
    with pytest.raises(RuntimeError):
        services.add_public_reply(new_case, body="x", attachments=[png(), log()], actor=agent, now=now)
    assert not CaseAttachment.objects.exists()
    assert not new_case.events.filter(kind=EventKind.PUBLIC_REPLY).exists()
    assert stored_files(media) == []


def test_stored_paths_reveal_nothing_and_names_are_safe(new_case, agent, now):
    event = services.add_internal_note(
        new_case, body="x", attachments=[log("../../etc/pass wd.log"), log("app.log")], actor=agent, now=now
    )
    first, second = event.attachments.order_by("id")
    assert first.name == "pass_wd.log"
    assert ".." not in first.file.name.split("/")
    assert first.file.name.startswith(f"cases/{new_case.pk}/")
    assert first.file.name.rsplit("/", 2)[1] != second.file.name.rsplit("/", 2)[1]  # a folder per file
