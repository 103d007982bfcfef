"""Idempotent creation: a creating POST sent with an ``Idempotency-Key`` may be retried safely. The
same key and body within 24 h returns the first answer and creates nothing more; the same key with
another body is a 422; keys are per user and per endpoint (issue 16)."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection, connections
from rest_framework.test import APIClient

from cases import services as case_services
from cases.models import Case, CaseEvent, EventKind, SavedView, Status
from escalations import services as escalation_services
from escalations.models import EngineeringTeam, Escalation, EscalationAttachment
from knowledge.models import Article
from supportdesk.core import idempotency
from supportdesk.core.models import IdempotencyRecord, OutboundMessage
from supportdesk.core.tasks import purge_idempotency_records
from tests import factories
from tests.escalations.conftest import complete_package

pytestmark = pytest.mark.django_db

START = dt.datetime(2026, 12, 3, 9, 0, tzinfo=dt.UTC)
KEY = "6f7a1e3e-2c9d-4b1a-9d0a-6a6f2b6b9b3a"


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


def client_of(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {factories.api_token_key(user)}")
    return client


@pytest.fixture
def api(agent) -> APIClient:
    return client_of(agent)


def post(client: APIClient, url: str, payload, *, key: str | None = KEY, **extra):
    if key is not None:
        extra["HTTP_IDEMPOTENCY_KEY"] = key
    body = payload if isinstance(payload, str) else json.dumps(payload)
    return client.post(url, data=body, content_type="application/json", **extra)


@pytest.fixture
def case_body(organisation, contact) -> dict:
    return {
        "title": "Checkout fails with 502",
        "description": "Since 09:00 every checkout returns 502.",
        "organisation": organisation.pk,
        "requester": contact.pk,
        "severity": "P2",
    }


# --- Cases ----------------------------------------------------------------------------------------


def test_a_retried_case_creation_returns_the_first_answer_and_creates_one_case(api, case_body):
    first = post(api, "/api/cases/", case_body)
    second = post(api, "/api/cases/", case_body)

    assert first.status_code == 201, first.json()
    assert second.status_code == 201
    assert second.json() == first.json()
    assert second["Location"] == first["Location"]
    assert second["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert Case.objects.count() == 1
    assert CaseEvent.objects.filter(kind=EventKind.CREATED).count() == 1


def test_the_same_body_sent_with_other_spacing_and_key_order_is_the_same_request(api, case_body):
    first = post(api, "/api/cases/", case_body)
    reordered = json.dumps(dict(reversed(list(case_body.items()))), indent=4)
    second = post(api, "/api/cases/", reordered)

    assert second.status_code == 201
    assert second.json()["key"] == first.json()["key"]
    assert Case.objects.count() == 1


def test_the_same_key_with_another_body_is_a_422_and_creates_nothing(api, case_body):
    post(api, "/api/cases/", case_body)
    response = post(api, "/api/cases/", {**case_body, "title": "Something else"})

    assert response.status_code == 422
    assert response.json()["code"] == "idempotency_key_reused"
    assert "different request body" in response.json()["detail"]
    assert list(Case.objects.values_list("title", flat=True)) == ["Checkout fails with 502"]


def test_two_people_using_the_same_key_each_get_their_own_case(agent, other_agent, case_body):
    alice = post(client_of(agent), "/api/cases/", case_body)
    bob = post(client_of(other_agent), "/api/cases/", case_body)

    assert alice.status_code == bob.status_code == 201
    assert alice.json()["key"] != bob.json()["key"]
    assert "Idempotent-Replayed" not in bob
    creators = CaseEvent.objects.filter(kind=EventKind.CREATED).values_list("actor__username", flat=True)
    assert sorted(creators) == ["alice", "bob"]


def test_a_key_is_replayed_for_24_hours_then_can_be_used_anew(api, case_body):
    with time_machine.travel(START, tick=False) as clock:
        first = post(api, "/api/cases/", case_body)
        clock.shift(dt.timedelta(hours=23, minutes=59))
        replay = post(api, "/api/cases/", case_body)
        assert replay.json()["key"] == first.json()["key"]
        assert Case.objects.count() == 1

        clock.shift(dt.timedelta(minutes=1))
        again = post(api, "/api/cases/", case_body)

    assert again.status_code == 201
    assert "Idempotent-Replayed" not in again
    assert again.json()["key"] != first.json()["key"]
    assert Case.objects.count() == 2
    assert IdempotencyRecord.objects.count() == 1  # the expired record made way for the new one


def test_a_refused_request_is_not_kept_so_the_fixed_request_may_reuse_the_key(api, case_body):
    refused = post(api, "/api/cases/", {**case_body, "severity": "P9"})
    fixed = post(api, "/api/cases/", case_body)

    assert refused.status_code == 400
    assert fixed.status_code == 201
    assert "Idempotent-Replayed" not in fixed
    assert Case.objects.count() == 1


def test_without_the_header_every_request_creates(api, case_body):
    first = post(api, "/api/cases/", case_body, key=None)
    second = post(api, "/api/cases/", case_body, key=None)

    assert first.status_code == second.status_code == 201
    assert "Idempotent-Replayed" not in second
    assert Case.objects.count() == 2
    assert not IdempotencyRecord.objects.exists()


@pytest.mark.parametrize(
    "bad_key",
    ["", "   ", "k" * 256, "schlüssel", "tab\tinside", "ключ"],
    ids=["empty", "blank", "too-long", "latin-1", "control-char", "cyrillic"],
)
def test_a_malformed_key_is_a_400_naming_the_header(api, case_body, bad_key):
    response = post(api, "/api/cases/", case_body, key=bad_key)

    assert response.status_code == 400
    assert "printable ASCII" in response.json()["Idempotency-Key"][0]
    assert not Case.objects.exists()


def test_the_longest_allowed_key_works(api, case_body):
    key = "k" * 255
    first = post(api, "/api/cases/", case_body, key=key)
    second = post(api, "/api/cases/", case_body, key=key)

    assert first.status_code == 201
    assert second["Idempotent-Replayed"] == "true"
    assert Case.objects.count() == 1


def test_an_anonymous_request_with_a_key_is_still_a_401(case_body):
    response = post(APIClient(), "/api/cases/", case_body)

    assert response.status_code == 401
    assert not IdempotencyRecord.objects.exists()


# --- Replies, notes and other creating endpoints ------------------------------------------------------


def test_a_retried_reply_is_posted_and_mailed_once(api, new_case):
    url = f"/api/cases/{new_case.key}/replies/"
    first = post(api, url, {"body": "We are on it."})
    second = post(api, url, {"body": "We are on it."})

    assert first.status_code == second.status_code == 201
    assert second.json()["id"] == first.json()["id"]
    assert second["Idempotent-Replayed"] == "true"
    assert new_case.events.filter(kind=EventKind.PUBLIC_REPLY).count() == 1
    assert OutboundMessage.objects.filter(case_id=new_case.pk).count() == 1


def test_a_retried_note_is_written_once_and_another_note_needs_another_key(api, new_case):
    url = f"/api/cases/{new_case.key}/notes/"
    post(api, url, {"body": "Checked the logs."})
    post(api, url, {"body": "Checked the logs."})
    reused = post(api, url, {"body": "Another thought."})

    assert reused.status_code == 422
    assert list(new_case.events.filter(kind=EventKind.INTERNAL_NOTE).values_list("body", flat=True)) == [
        "Checked the logs."
    ]


def test_one_key_on_two_endpoints_is_two_keys(api, new_case):
    reply = post(api, f"/api/cases/{new_case.key}/replies/", {"body": "Hello"})
    note = post(api, f"/api/cases/{new_case.key}/notes/", {"body": "Hello"})

    assert reply.status_code == note.status_code == 201
    assert "Idempotent-Replayed" not in note
    assert {e.kind for e in new_case.events.filter(body="Hello")} == {
        EventKind.PUBLIC_REPLY,
        EventKind.INTERNAL_NOTE,
    }


def test_a_retried_multipart_reply_keeps_one_copy_of_its_files_and_another_file_is_a_422(api, new_case):
    url = f"/api/cases/{new_case.key}/replies/"

    def send(content: bytes):
        upload = SimpleUploadedFile("app.log", content, content_type="text/plain")
        return api.post(url, {"body": "Logs attached.", "attachments": [upload]}, HTTP_IDEMPOTENCY_KEY=KEY)

    first = send(b"2025-03-03 09:00:01 ERROR upstream timed out\n")
    second = send(b"2025-03-03 09:00:01 ERROR upstream timed out\n")
    other = send(b"2025-03-03 09:00:02 ERROR something else\n")

    assert first.status_code == 201, first.json()
    assert second.json() == first.json()
    assert other.status_code == 422
    assert new_case.events.filter(kind=EventKind.PUBLIC_REPLY).count() == 1
    assert new_case.attachments.count() == 1


def test_a_retried_escalation_draft_creates_one_escalation(api, new_case, agent, now):
    case = case_services.transition(
        new_case, Status.TRIAGED, actor=agent, now=now, severity="P2", assignee=agent
    )
    EngineeringTeam.objects.create(name="Payments", slug="payments", components="checkout-api")
    body = {"case": case.key, "team": "payments", "summary": "Checkout returns 502 for EU tenants"}

    first = post(api, "/api/escalations/", body)
    second = post(api, "/api/escalations/", body)
    other = post(api, "/api/escalations/", {**body, "summary": "Something else"})

    assert first.status_code == 201, first.json()
    assert second.json() == first.json()
    assert second["Location"] == first["Location"]
    assert second["Idempotent-Replayed"] == "true"
    assert other.status_code == 422
    assert Escalation.objects.count() == 1


def test_a_retried_escalation_file_upload_is_stored_once(api, new_case, agent, now):
    case = case_services.transition(
        new_case, Status.TRIAGED, actor=agent, now=now, severity="P2", assignee=agent
    )
    team = EngineeringTeam.objects.create(name="Payments", slug="payments", components="checkout-api")
    draft = escalation_services.create_draft(case=case, team=team, actor=agent, now=now, **complete_package())
    url = f"/api/escalations/{draft.pk}/attachments/"

    def send():
        upload = SimpleUploadedFile("trace.log", b"upstream timed out\n", content_type="text/plain")
        return api.post(url, {"file": upload}, HTTP_IDEMPOTENCY_KEY=KEY)

    first, second = send(), send()

    assert first.status_code == 201, first.json()
    assert second.json() == first.json()
    assert second["Idempotent-Replayed"] == "true"
    assert EscalationAttachment.objects.filter(escalation=draft).count() == 1


def test_retried_saved_view_and_article_creations_create_one_each(api):
    views = [post(api, "/api/saved-views/", {"name": "My P1s", "query": "severity=P1"}) for _ in range(2)]
    article = {"title": "Resetting a VPN client", "body_markdown": "1. Quit the client.", "kind": "article"}
    articles = [post(api, "/api/knowledge/articles/", article, key="article-1") for _ in range(2)]

    assert [r.status_code for r in views + articles] == [201, 201, 201, 201], [
        r.json() for r in views + articles
    ]
    assert SavedView.objects.filter(name="My P1s").count() == 1
    assert Article.objects.filter(title="Resetting a VPN client").count() == 1


# --- The store ---------------------------------------------------------------------------------------


def test_a_request_that_lost_the_race_replays_the_winners_answer(api, case_body, monkeypatch):
    """The winner committed between the loser's lookup and its insert: the insert collides with the
    unique constraint and the loser answers with the winner's response without running the view."""
    first = post(api, "/api/cases/", case_body)
    real_lookup = idempotency._live_record
    calls = []

    def lookup_missing_the_first_time(scope, *, now):
        calls.append(scope)
        return None if len(calls) == 1 else real_lookup(scope, now=now)

    monkeypatch.setattr(idempotency, "_live_record", lookup_missing_the_first_time)
    second = post(api, "/api/cases/", case_body)

    assert len(calls) == 2
    assert second.status_code == 201
    assert second.json()["key"] == first.json()["key"]
    assert second["Idempotent-Replayed"] == "true"
    assert Case.objects.count() == 1


def test_the_purge_deletes_expired_records_only_and_a_second_run_changes_nothing(api, case_body):
    with time_machine.travel(START, tick=False) as clock:
        post(api, "/api/cases/", case_body, key="old")
        clock.shift(dt.timedelta(hours=20))
        post(api, "/api/cases/", case_body, key="recent")
        clock.shift(dt.timedelta(hours=5))

        assert purge_idempotency_records() == 1
        assert purge_idempotency_records() == 0

    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["recent"]


def test_the_purge_is_on_the_beat_schedule(settings):
    entries = [
        e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"] == "core.purge_idempotency_records"
    ]
    assert len(entries) == 1


@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL's concurrent writers")
@pytest.mark.django_db(transaction=True)
def test_two_simultaneous_requests_with_one_key_create_one_case(agent, organisation, contact, monkeypatch):
    """The second request waits on the first one's uncommitted record, then replays its answer."""
    body = {"title": "Checkout fails", "organisation": organisation.pk, "requester": contact.pk}
    token = factories.api_token_key(agent)
    first_inside, release_first = threading.Event(), threading.Event()
    real_create = case_services.create_case

    def create_case_held_open(**kwargs):
        if threading.current_thread().name == "first":
            first_inside.set()
            release_first.wait(timeout=30)
        return real_create(**kwargs)

    monkeypatch.setattr(case_services, "create_case", create_case_held_open)
    answers = {}

    def request(name: str) -> None:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        try:
            answers[name] = post(client, "/api/cases/", body)
        finally:
            connections.close_all()

    first = threading.Thread(target=request, args=("first",), name="first")
    second = threading.Thread(target=request, args=("second",), name="second")
    first.start()
    assert first_inside.wait(timeout=30)
    second.start()
    _wait_until_a_backend_waits_for_a_lock()
    release_first.set()
    first.join(timeout=30)
    second.join(timeout=30)

    assert answers["first"].status_code == answers["second"].status_code == 201
    assert answers["second"].json()["key"] == answers["first"].json()["key"]
    assert answers["second"]["Idempotent-Replayed"] == "true"
    assert Case.objects.count() == 1


def _wait_until_a_backend_waits_for_a_lock(timeout: float = 30) -> None:
    """Synchronisation, not timing: poll PostgreSQL until the second request is blocked."""
    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'"
            )
            if cursor.fetchone()[0]:
                return
            time.sleep(0.05)
    pytest.fail("the second request never waited for the first one's record")
