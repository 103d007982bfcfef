"""Files through the cases API: replies and notes as multipart (or JSON without files), events listing
their files with a download URL, downloads with the same permissions as the case page."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from cases import services
from cases.models import CaseAttachment, EventKind, Status
from tests import factories
from tests.cases.test_attachments import LOG, PNG, exe, log, png
from tests.outbox import deliver_mail

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


def _client(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


@pytest.fixture
def api(agent) -> APIClient:
    return _client(agent)


def test_a_multipart_reply_keeps_its_files_and_sends_them(
    api, new_case, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(
            f"/api/cases/{new_case.key}/replies/",
            {"body": "Logs attached.", "attachments": [png(), log()]},
            format="multipart",
        )
    assert response.status_code == 201, response.json()
    data = response.json()
    assert data["kind"] == "public_reply"
    assert [(a["name"], a["content_type"], a["size"]) for a in data["attachments"]] == [
        ("screenshot.png", "image/png", len(PNG)),
        ("app.log", "text/plain", len(LOG)),
    ]
    first = CaseAttachment.objects.order_by("id").first()
    assert data["attachments"][0]["download_url"] == (
        f"http://testserver/api/cases/{new_case.key}/attachments/{first.pk}/"
    )
    assert data["delivery"]["status"] == "queued"
    deliver_mail()
    assert [a[0] for a in mailoutbox[0].attachments] == ["screenshot.png", "app.log"]


def test_json_replies_and_notes_still_work_without_files(api, new_case):
    response = api.post(f"/api/cases/{new_case.key}/replies/", {"body": "On it."}, format="json")
    assert response.status_code == 201
    assert response.json()["attachments"] == []
    response = api.post(f"/api/cases/{new_case.key}/notes/", {"body": "Internal."}, format="json")
    assert response.status_code == 201
    assert response.json()["attachments"] == []


def test_a_multipart_note_keeps_its_files(api, new_case):
    response = api.post(
        f"/api/cases/{new_case.key}/notes/",
        {"body": "HAR attached", "attachments": [log("trace.log")]},
        format="multipart",
    )
    assert response.status_code == 201
    assert response.json()["is_public"] is False
    assert [a["name"] for a in response.json()["attachments"]] == ["trace.log"]


def test_bad_files_are_400_with_messages_under_attachments(api, new_case):
    response = api.post(
        f"/api/cases/{new_case.key}/replies/",
        {"body": "Run this", "attachments": [png(), exe()]},
        format="multipart",
    )
    assert response.status_code == 400
    body = response.json()
    assert body["attachments"] == [
        "setup.exe: Files of type “application/x-msdownload” are not accepted (allowed: text/plain, "
        "application/json, image/png, image/jpeg, application/pdf, application/zip, application/gzip)."
    ]
    empty = api.post(
        f"/api/cases/{new_case.key}/notes/",
        {"body": "x", "attachments": [SimpleUploadedFile("empty.log", b"", "text/plain")]},
        format="multipart",
    )
    assert empty.status_code == 400
    assert empty.json()["attachments"] == ["empty.log: The file is empty."]
    too_many = api.post(
        f"/api/cases/{new_case.key}/notes/",
        {"body": "x", "attachments": [log(f"{i}.log") for i in range(11)]},
        format="multipart",
    )
    assert too_many.status_code == 400
    assert too_many.json()["attachments"] == ["Attach at most 10 files at once."]
    not_a_file = api.post(
        f"/api/cases/{new_case.key}/replies/", {"body": "x", "attachments": ["abc"]}, format="json"
    )
    assert not_a_file.status_code == 400
    [message] = not_a_file.json()["attachments"]
    assert message.startswith("File 1: The submitted data was not a file.")
    assert not new_case.events.filter(kind__in=[EventKind.PUBLIC_REPLY, EventKind.INTERNAL_NOTE]).exists()
    assert not CaseAttachment.objects.exists()


def test_events_list_their_files_without_a_query_per_event(
    api, new_case, agent, now, django_assert_num_queries
):
    services.add_public_reply(new_case, body="r", attachments=[png()], actor=agent, now=now)
    with CaptureQueriesContext(connection) as one:
        api.get(f"/api/cases/{new_case.key}/events/")
    for i in range(8):
        services.add_public_reply(new_case, body=f"r{i}", attachments=[png(), log()], actor=agent, now=now)
        services.add_internal_note(new_case, body=f"n{i}", attachments=[log()], actor=agent, now=now)
    with django_assert_num_queries(len(one.captured_queries)):
        response = api.get(f"/api/cases/{new_case.key}/events/")
    events = response.json()["results"]
    with_files = [e for e in events if e["attachments"]]
    assert len(with_files) == 17
    assert all(
        a["download_url"].startswith("http://testserver/api/cases/")
        for e in with_files
        for a in e["attachments"]
    )


def test_download_has_the_checked_type_and_is_an_attachment(api, new_case, agent, now):
    event = services.add_internal_note(
        new_case,
        body="x",
        attachments=[SimpleUploadedFile("page.html", b"<b>hi</b>", "")],
        actor=agent,
        now=now,
    )
    item = event.attachments.get()
    response = api.get(f"/api/cases/{new_case.key}/attachments/{item.pk}/")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain"
    assert response["Content-Disposition"] == 'attachment; filename="page.html"'
    assert response["X-Content-Type-Options"] == "nosniff"
    assert b"".join(response.streaming_content) == b"<b>hi</b>"


def test_download_permissions_per_object(new_case, agent, engineer, manager, now, organisation, monkeypatch):
    note = services.add_internal_note(new_case, body="x", attachments=[log()], actor=agent, now=now)
    reply = services.add_public_reply(new_case, body="x", attachments=[png()], actor=agent, now=now)
    note_url = f"/api/cases/{new_case.key}/attachments/{note.attachments.get().pk}/"
    reply_url = f"/api/cases/{new_case.key}/attachments/{reply.attachments.get().pk}/"

    assert APIClient().get(reply_url).status_code == 401
    assert _client(engineer).get(reply_url).status_code == 403
    assert _client(factories.UserFactory(username="nobody")).get(reply_url).status_code == 403
    assert _client(manager).get(note_url).status_code == 200
    api = _client(agent)
    assert api.get(note_url).status_code == 200
    other = services.create_case(
        title="Other", organisation=organisation, requester=new_case.requester, actor=agent, now=now
    )
    assert api.get(f"/api/cases/{other.key}/attachments/{reply.attachments.get().pk}/").status_code == 404
    assert api.get(f"/api/cases/{new_case.key}/attachments/999999/").status_code == 404

    # Someone who may see the case but not its internal notes: neither the note nor its file.
    monkeypatch.setattr("cases.api.can_see_internal_notes", lambda user, case: False)
    assert api.get(note_url).status_code == 404
    assert api.get(reply_url).status_code == 200
    kinds = [e["kind"] for e in api.get(f"/api/cases/{new_case.key}/events/").json()["results"]]
    assert EventKind.INTERNAL_NOTE not in kinds

    # Someone who may not see the case at all.
    monkeypatch.setattr("cases.api.can_see_case", lambda user, case: False)
    assert api.get(reply_url).status_code == 403
    assert api.get(f"/api/cases/{new_case.key}/").status_code == 403


def test_a_follow_up_case_names_the_case_it_follows_up(api, new_case, contact, agent, now):
    services.transition(new_case, Status.RESOLVED, actor=agent, now=now)
    services.transition(new_case, Status.CLOSED, actor=None, now=now)
    follow_up, _ = services.add_customer_message(new_case, body="Broken again", sender=contact, now=now)
    assert api.get(f"/api/cases/{follow_up.key}/").json()["follow_up_of"] == new_case.key
    assert api.get(f"/api/cases/{new_case.key}/").json()["follow_up_of"] is None
    listed = {c["key"]: c["follow_up_of"] for c in api.get("/api/cases/?state=all").json()["results"]}
    assert listed[follow_up.key] == new_case.key
