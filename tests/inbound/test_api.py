"""/api/mailboxes/ and /api/inbound-messages/: admins only, clear 400s, a password that is never
returned, the IMAP test and poll-now actions, retry of failed mail, and the OpenAPI document."""

from __future__ import annotations

import sys
import types

import pytest
from django.contrib.auth.models import Group
from kombu.exceptions import OperationalError
from rest_framework.test import APIClient

from cases.models import Case
from inbound.models import InboundMessage, InboundStatus, Mailbox, MailboxMode
from tests import factories
from tests.inbound.mail_admin import *  # noqa: F403 (its fixtures)
from tests.inbound.mail_admin import stored_message

pytestmark = pytest.mark.django_db

PASSWORD = "s3cret-imap-password"


def api(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


@pytest.fixture
def admin_group_user(db):
    """An admin by role (the admins' group), not a superuser."""
    user = factories.UserFactory(username="operator")
    user.groups.add(Group.objects.get_or_create(name="admin")[0])
    return user


def imap_body(**overrides) -> dict:
    body = {
        "name": "support",
        "address": "support@help.example",
        "display_name": "Example Support",
        "mode": "imap",
        "imap_host": "imap.help.example",
        "imap_username": "support@help.example",
        "imap_password": PASSWORD,
    }
    body.update(overrides)
    return body


# --- Permissions -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/mailboxes/"),
        ("post", "/api/mailboxes/"),
        ("get", "/api/mailboxes/{id}/"),
        ("patch", "/api/mailboxes/{id}/"),
        ("delete", "/api/mailboxes/{id}/"),
        ("post", "/api/mailboxes/{id}/test-connection/"),
        ("post", "/api/mailboxes/{id}/poll-now/"),
        ("get", "/api/inbound-messages/"),
        ("get", "/api/inbound-messages/{message}/"),
        ("post", "/api/inbound-messages/{message}/retry/"),
    ],
)
def test_only_admins_may_use_the_mail_api(method, path, imap_mailbox, agent, manager, engineer):
    record = stored_message(imap_mailbox, status=InboundStatus.FAILED)
    url = path.format(id=imap_mailbox.pk, message=record.pk)
    assert getattr(api(), method)(url).status_code == 401
    for user in (agent, manager, engineer):
        response = getattr(api(user), method)(url, {}, format="json")
        assert response.status_code == 403, (user, response.content)
    assert Mailbox.objects.filter(pk=imap_mailbox.pk).exists()


def test_superusers_and_the_admins_group_may_list_mailboxes(admin_user, admin_group_user, imap_mailbox):
    for user in (admin_user, admin_group_user):
        response = api(user).get("/api/mailboxes/")
        assert response.status_code == 200
        assert [m["name"] for m in response.json()] == ["imap-support"]


# --- Create, read, change, delete ----------------------------------------------------------------


def test_admin_creates_an_imap_mailbox_and_the_password_is_never_returned(admin_user, team, organisation):
    body = imap_body(
        team=team.slug, default_organisation=organisation.pk, default_severity="P2", imap_port=993
    )

    response = api(admin_user).post("/api/mailboxes/", body, format="json")

    assert response.status_code == 201, response.content
    data = response.json()
    assert "imap_password" not in data
    assert PASSWORD not in response.content.decode()
    assert data["imap_password_set"] is True
    assert (data["team"], data["default_organisation"], data["default_severity"]) == (
        team.slug,
        organisation.pk,
        "P2",
    )
    assert (data["failed_count"], data["refused_count"]) == (0, 0)
    assert Mailbox.objects.get(pk=data["id"]).imap_password == PASSWORD
    for url in ("/api/mailboxes/", f"/api/mailboxes/{data['id']}/"):
        assert PASSWORD not in api(admin_user).get(url).content.decode()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (imap_body(imap_host=""), "imap_host"),
        (imap_body(imap_username=""), "imap_username"),
        (imap_body(imap_password=""), "imap_password"),
        (imap_body(imap_host="imaps://imap.help.example"), "imap_host"),
        (imap_body(imap_port=70000), "imap_port"),
        (imap_body(processed_folder="INBOX"), "processed_folder"),
        (imap_body(address="support+tag@help.example"), "address"),
        (imap_body(address="not an address"), "address"),
        (imap_body(mode="carrier-pigeon"), "mode"),
        (imap_body(name="has spaces"), "name"),
        (imap_body(team="no-such-team"), "team"),
        (imap_body(default_organisation=999999), "default_organisation"),
        (imap_body(default_severity="P9"), "default_severity"),
        (
            {"name": "x", "address": "x@help.example", "mode": "maildir", "maildir_path": "../../etc"},
            "maildir_path",
        ),
        ({"address": "noname@help.example", "mode": "pipe"}, "name"),
    ],
)
def test_invalid_mailboxes_are_a_400_naming_the_field(admin_user, team, body, field):
    response = api(admin_user).post("/api/mailboxes/", body, format="json")
    assert response.status_code == 400
    assert field in response.json(), response.json()
    assert not Mailbox.objects.exists()


def test_an_address_is_unique_whatever_its_case(admin_user, imap_mailbox):
    body = {"name": "other", "address": "IMAP@Help.Example", "mode": "pipe"}
    response = api(admin_user).post("/api/mailboxes/", body, format="json")
    assert response.status_code == 400
    assert "already has the address" in response.json()["address"][0]


def test_names_are_unique(admin_user, imap_mailbox):
    body = {"name": imap_mailbox.name, "address": "new@help.example", "mode": "pipe"}
    response = api(admin_user).post("/api/mailboxes/", body, format="json")
    assert response.status_code == 400
    assert "name" in response.json()


def test_addresses_are_stored_in_lower_case(admin_user):
    body = {"name": "sales", "address": " Sales@Help.Example ", "mode": "pipe"}
    response = api(admin_user).post("/api/mailboxes/", body, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["address"] == "sales@help.example"


@pytest.mark.parametrize("mode", ["maildir", "pipe", "provider"])
def test_maildir_pipe_and_provider_mailboxes_need_only_name_and_address(admin_user, mode):
    response = api(admin_user).post(
        "/api/mailboxes/", {"name": mode, "address": f"{mode}@help.example", "mode": mode}
    )
    assert response.status_code == 201, response.content
    assert response.json()["maildir_path"] == ""  # Maildir: var/mail/<name>


def test_patch_without_a_password_keeps_the_stored_one(admin_user, imap_mailbox):
    response = api(admin_user).patch(f"/api/mailboxes/{imap_mailbox.pk}/", {"imap_port": 143}, format="json")
    assert response.status_code == 200, response.content
    imap_mailbox.refresh_from_db()
    assert imap_mailbox.imap_port == 143
    assert imap_mailbox.imap_password == PASSWORD


def test_patch_with_a_password_replaces_it_and_an_empty_one_is_refused_in_imap_mode(admin_user, imap_mailbox):
    client = api(admin_user)
    assert client.patch(f"/api/mailboxes/{imap_mailbox.pk}/", {"imap_password": "new-one"}).status_code == 200
    imap_mailbox.refresh_from_db()
    assert imap_mailbox.imap_password == "new-one"

    response = client.patch(f"/api/mailboxes/{imap_mailbox.pk}/", {"imap_password": ""}, format="json")
    assert response.status_code == 400
    assert "imap_password" in response.json()
    imap_mailbox.refresh_from_db()
    assert imap_mailbox.imap_password == "new-one"


def test_switching_to_imap_without_connection_details_is_refused(admin_user, provider_mailbox):
    response = api(admin_user).patch(
        f"/api/mailboxes/{provider_mailbox.pk}/", {"mode": "imap"}, format="json"
    )
    assert response.status_code == 400
    assert {"imap_host", "imap_username", "imap_password"} <= set(response.json())
    provider_mailbox.refresh_from_db()
    assert provider_mailbox.mode == MailboxMode.PROVIDER


def test_put_is_not_offered(admin_user, imap_mailbox):
    assert (
        api(admin_user).put(f"/api/mailboxes/{imap_mailbox.pk}/", imap_body(), format="json").status_code
        == 405
    )


def test_delete_removes_a_mailbox_without_mail_and_refuses_one_with_mail(
    admin_user, imap_mailbox, provider_mailbox
):
    stored_message(provider_mailbox, status=InboundStatus.INGESTED)
    client = api(admin_user)

    assert client.delete(f"/api/mailboxes/{imap_mailbox.pk}/").status_code == 204
    response = client.delete(f"/api/mailboxes/{provider_mailbox.pk}/")

    assert response.status_code == 409
    assert "inactive" in response.json()["detail"]
    assert list(Mailbox.objects.values_list("name", flat=True)) == ["support"]


def test_the_list_counts_failed_and_recently_refused_mail(admin_user, provider_mailbox, now):
    import datetime as dt

    stored_message(provider_mailbox, status=InboundStatus.FAILED, reason="boom")
    stored_message(provider_mailbox, status=InboundStatus.REFUSED, reason="rate limit")
    stored_message(provider_mailbox, status=InboundStatus.REFUSED, received_at=now - dt.timedelta(days=30))
    stored_message(provider_mailbox, status=InboundStatus.INGESTED)

    row = api(admin_user).get("/api/mailboxes/").json()[0]

    assert (row["failed_count"], row["refused_count"]) == (1, 1)


# --- Actions ---------------------------------------------------------------------------------------


@pytest.fixture
def fake_imap(monkeypatch):
    """inbound.imap as the IMAP helper provides it: check_connection(mailbox) -> str."""
    module = types.ModuleType("inbound.imap")
    calls = []

    def check_connection(mailbox):
        calls.append(mailbox.pk)
        if mailbox.imap_password != PASSWORD:
            raise ConnectionRefusedError("LOGIN failed")
        return "Logged in; INBOX has 3 messages."

    module.check_connection = check_connection
    monkeypatch.setitem(sys.modules, "inbound.imap", module)
    return calls


def test_test_connection_reports_success_and_failure_in_words(admin_user, imap_mailbox, fake_imap):
    client = api(admin_user)
    response = client.post(f"/api/mailboxes/{imap_mailbox.pk}/test-connection/")
    assert response.status_code == 200
    assert response.json() == {"ok": True, "detail": "Logged in; INBOX has 3 messages."}

    Mailbox.objects.filter(pk=imap_mailbox.pk).update(imap_password="wrong")
    response = client.post(f"/api/mailboxes/{imap_mailbox.pk}/test-connection/")
    assert response.status_code == 200
    assert response.json()["ok"] is False
    assert "LOGIN failed" in response.json()["detail"]


def test_test_connection_says_so_when_imap_support_is_missing(admin_user, imap_mailbox, monkeypatch):
    monkeypatch.setitem(sys.modules, "inbound.imap", None)  # import fails
    response = api(admin_user).post(f"/api/mailboxes/{imap_mailbox.pk}/test-connection/")
    assert response.status_code == 200
    assert response.json() == {
        "ok": False,
        "detail": "IMAP support is not installed in this version of SupportDesk.",
    }


def test_test_connection_of_a_provider_mailbox_is_a_400(admin_user, provider_mailbox, fake_imap):
    response = api(admin_user).post(f"/api/mailboxes/{provider_mailbox.pk}/test-connection/")
    assert response.status_code == 400
    assert "mode" in response.json()
    assert fake_imap == []


@pytest.fixture
def queued(monkeypatch):
    from inbound import tasks

    sent = []
    monkeypatch.setattr(tasks.poll_mailbox, "delay", lambda mailbox_id: sent.append(mailbox_id))
    return sent


def test_poll_now_queues_a_poll_after_commit(
    admin_user, imap_mailbox, queued, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = api(admin_user).post(f"/api/mailboxes/{imap_mailbox.pk}/poll-now/")
    assert response.status_code == 202
    assert queued == [imap_mailbox.pk]


def test_poll_now_refuses_mailboxes_that_are_not_polled_or_not_active(
    admin_user, provider_mailbox, imap_mailbox, queued, django_capture_on_commit_callbacks
):
    Mailbox.objects.filter(pk=imap_mailbox.pk).update(is_active=False)
    with django_capture_on_commit_callbacks(execute=True):
        not_polled = api(admin_user).post(f"/api/mailboxes/{provider_mailbox.pk}/poll-now/")
        inactive = api(admin_user).post(f"/api/mailboxes/{imap_mailbox.pk}/poll-now/")
    assert (not_polled.status_code, inactive.status_code) == (400, 400)
    assert "mode" in not_polled.json()
    assert "is_active" in inactive.json()
    assert queued == []


def test_poll_now_with_the_broker_down_is_a_503_in_words(admin_user, imap_mailbox, monkeypatch):
    from inbound import tasks

    def down(mailbox_id):
        raise OperationalError("Connection refused")

    monkeypatch.setattr(tasks.poll_mailbox, "delay", down)
    # Outside a transaction (as in a real request), on_commit runs the dispatch at once.
    monkeypatch.setattr("django.db.transaction.on_commit", lambda func, using=None, robust=False: func())
    response = api(admin_user).post(f"/api/mailboxes/{imap_mailbox.pk}/poll-now/")
    assert response.status_code == 503
    assert "task queue" in response.json()["detail"]


# --- Received mail ---------------------------------------------------------------------------------


def test_received_mail_is_listed_newest_first_and_filtered(admin_user, provider_mailbox, imap_mailbox):
    failed = stored_message(provider_mailbox, status=InboundStatus.FAILED, reason="boom")
    refused = stored_message(imap_mailbox, status=InboundStatus.REFUSED, reason="too big")
    client = api(admin_user)

    everything = client.get("/api/inbound-messages/").json()
    assert set(everything) == {"next", "previous", "results"}
    assert [r["id"] for r in everything["results"]] == [refused.pk, failed.pk]
    only_failed = client.get("/api/inbound-messages/", {"status": "failed"}).json()["results"]
    assert [r["id"] for r in only_failed] == [failed.pk]
    assert only_failed[0]["reason"] == "boom"
    assert only_failed[0]["raw_url"].endswith(f"/inbound/messages/{failed.pk}/raw.eml")
    by_mailbox = client.get("/api/inbound-messages/", {"mailbox": imap_mailbox.pk}).json()["results"]
    assert [r["id"] for r in by_mailbox] == [refused.pk]


@pytest.mark.parametrize("query", [{"status": "lost"}, {"mailbox": "abc"}, {"via": "fax"}, {"cursor": "%%%"}])
def test_bad_filters_are_a_400(admin_user, provider_mailbox, query):
    response = api(admin_user).get("/api/inbound-messages/", query)
    assert response.status_code == 400
    assert set(query) <= set(response.json())


def test_retry_of_a_failed_mail_puts_it_on_a_case(admin_user, provider_mailbox):
    record = stored_message(provider_mailbox, status=InboundStatus.FAILED, reason="OperationalError: locked")

    response = api(admin_user).post(f"/api/inbound-messages/{record.pk}/retry/")

    assert response.status_code == 200, response.content
    data = response.json()
    assert data["status"] == "ingested"
    case = Case.objects.get()
    assert data["case"] == case.key
    assert data["case_url"].endswith(f"/cases/{case.key}/")
    record.refresh_from_db()
    assert record.attempts == 1


def test_retry_of_a_mail_that_did_not_fail_is_a_400(admin_user, provider_mailbox):
    record = stored_message(provider_mailbox, status=InboundStatus.INGESTED)
    response = api(admin_user).post(f"/api/inbound-messages/{record.pk}/retry/")
    assert response.status_code == 400
    assert "Only failed mails" in response.json()["detail"]
    assert InboundMessage.objects.get(pk=record.pk).status == InboundStatus.INGESTED


def test_unknown_ids_are_404(admin_user):
    client = api(admin_user)
    assert client.get("/api/mailboxes/999/").status_code == 404
    assert client.post("/api/inbound-messages/999/retry/").status_code == 404


# --- OpenAPI ---------------------------------------------------------------------------------------

EXPECTED = {
    "/api/mailboxes/": {"get", "post"},
    "/api/mailboxes/{id}/": {"get", "patch", "delete"},
    "/api/mailboxes/{id}/test-connection/": {"post"},
    "/api/mailboxes/{id}/poll-now/": {"post"},
    "/api/inbound-messages/": {"get"},
    "/api/inbound-messages/{id}/": {"get"},
    "/api/inbound-messages/{id}/retry/": {"post"},
}


@pytest.fixture
def schema(admin_user) -> dict:
    response = api(admin_user).get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    return response.json()


def _component(schema: dict, node: dict) -> dict:
    ref = node.get("$ref")
    return schema["components"]["schemas"][ref.rsplit("/", 1)[1]] if ref else node


def test_schema_documents_every_mail_endpoint_with_its_errors(schema):
    from drf_spectacular.validation import validate_schema

    validate_schema(schema)
    for path, methods in EXPECTED.items():
        assert path in schema["paths"], path
        operations = schema["paths"][path]
        assert set(operations) - {"parameters"} == methods, path
        for method in methods:
            responses = set(operations[method]["responses"])
            assert {"401", "403"} <= responses, (method, path)
            if method in {"post", "patch"} and not path.endswith("retry/"):
                assert "400" in responses, (method, path)
            if "{id}" in path:
                assert "404" in responses, (method, path)


def test_schema_marks_the_password_write_only(schema):
    create = schema["paths"]["/api/mailboxes/"]["post"]
    request = _component(schema, create["requestBody"]["content"]["application/json"]["schema"])
    assert "imap_password" in request["properties"]
    response = _component(schema, create["responses"]["201"]["content"]["application/json"]["schema"])
    assert "imap_password" not in response["properties"]
    assert "imap_password_set" in response["properties"]
    assert set(request["required"]) == {"name", "address"}


def test_schema_documents_the_received_mail_filters_and_pages(schema):
    operation = schema["paths"]["/api/inbound-messages/"]["get"]
    names = {p["name"] for p in operation["parameters"]}
    assert {"mailbox", "status", "via", "cursor", "page_size"} <= names
