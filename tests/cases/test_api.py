"""The cases REST API as a client sees it: shapes, filters, pages, writes, the timeline and errors."""

from __future__ import annotations

import base64
import datetime as dt
import json

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from cases import services
from cases.models import Case, CaseEvent, Contact, Organisation, Status, Tag
from cases.selectors import QUEUE_ORDERINGS
from supportdesk.core.models import OutboundMessage
from tests import factories
from tests.outbox import deliver_mail


def _client(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


@pytest.fixture
def api(agent) -> APIClient:
    return _client(agent)


@pytest.fixture
def manager_api(manager) -> APIClient:
    return _client(manager)


def send(client: APIClient, method: str, url: str, payload=None, **extra):
    body = payload if isinstance(payload, str | bytes) else json.dumps(payload)
    return client.generic(method, url, data=body, content_type="application/json", **extra)


def url_of(case: Case, suffix: str = "") -> str:
    return f"/api/cases/{case.key}/{suffix}"


def keys(response) -> list[str]:
    return [row["key"] for row in response.json()["results"]]


# --- Reading ----------------------------------------------------------------------------------------


def test_case_representation_has_keys_summaries_links_and_next_statuses(
    api, organisation, contact, team, agent, now
):
    cc = factories.ContactFactory(organisation=organisation, name="Cedric CC", email="cedric@acme.example")
    case = services.create_case(
        title="Checkout fails with 502",
        organisation=organisation,
        requester=contact,
        severity="P2",
        team=team,
        assignee=agent,
        tags=["Checkout", "payments"],
        cc=[cc],
        actor=agent,
        now=now,
    )

    response = api.get(url_of(case))

    assert response.status_code == 200
    assert response["ETag"] == '"1"'
    body = response.json()
    assert body["key"] == f"CASE-{case.pk}"
    assert body["url"] == f"http://testserver/api/cases/CASE-{case.pk}/"
    assert body["web_url"] == f"http://testserver/cases/CASE-{case.pk}/"
    assert body["organisation"] == {"id": organisation.pk, "name": "Acme Corp", "tier": "enterprise"}
    assert body["requester"] == {"id": contact.pk, "name": "Carla Customer", "email": "carla@acme.example"}
    assert body["cc"] == [{"id": cc.pk, "name": "Cedric CC", "email": "cedric@acme.example"}]
    assert body["assignee"] == {"username": "alice", "name": "Alice Agent"}
    assert body["team"] == {"slug": "tier-2", "name": "Tier 2"}
    assert body["tags"] == ["checkout", "payments"]
    assert body["status"] == "new"
    assert body["severity"] == "P2"
    assert body["version"] == 1
    assert body["reopen_count"] == 0
    assert body["allowed_transitions"] == ["triaged", "resolved"]
    assert dt.datetime.fromisoformat(body["created_at"]) == now
    assert body["triaged_at"] is None
    assert body["closed_at"] is None


def test_unassigned_case_without_team_shows_nulls(api, new_case):
    body = api.get(url_of(new_case)).json()
    assert body["assignee"] is None
    assert body["team"] is None


@pytest.mark.parametrize("path", ["/api/cases/CASE-999999/", "/api/cases/TICKET-1/", "/api/cases/CASE-0/"])
def test_unknown_or_foreign_key_is_404(api, new_case, path):
    response = api.get(path)
    assert response.status_code == 404
    assert "detail" in response.json()


@pytest.mark.parametrize("path", ["/api/cases/CASE-abc/", "/api/cases/12/", "/api/cases/CASE-1-2/"])
def test_malformed_key_is_404(api, new_case, path):
    assert api.get(path).status_code == 404


def test_lowercase_key_finds_the_case(api, new_case):
    response = api.get(f"/api/cases/case-{new_case.pk}/")
    assert response.status_code == 200
    assert response.json()["key"] == new_case.key


@pytest.mark.parametrize("method", ["put", "delete"])
def test_put_and_delete_are_not_offered(api, new_case, method):
    response = send(api, method.upper(), url_of(new_case), {"title": "Replaced"})
    assert response.status_code == 405
    new_case.refresh_from_db()
    assert new_case.title == "Checkout fails with 502"


# --- Filters ----------------------------------------------------------------------------------------


@pytest.fixture
def queue(db, agent, other_agent, team, now):
    """Three cases that differ in every filterable way."""
    acme = factories.OrganisationFactory(name="Acme Corp", tier="enterprise")
    globex = factories.OrganisationFactory(name="Globex", tier="standard")
    other_team = factories.TeamFactory(name="Billing", slug="billing")
    checkout = factories.CaseFactory(
        title="Checkout fails",
        organisation=acme,
        severity="P1",
        status=Status.NEW,
        assignee=agent,
        team=team,
        product_area="payments",
        created_at=now - dt.timedelta(hours=3),
    )
    checkout.tags.set([Tag.objects.create(name="checkout")])
    password = factories.CaseFactory(
        title="Password reset mail missing",
        organisation=globex,
        severity="P3",
        status=Status.IN_PROGRESS,
        assignee=other_agent,
        team=None,
        product_area="identity",
        created_at=now - dt.timedelta(hours=2),
    )
    password.tags.set([Tag.objects.create(name="login")])
    dashboard = factories.CaseFactory(
        title="Slow dashboard",
        organisation=globex,
        severity="P2",
        status=Status.RESOLVED,
        assignee=None,
        team=other_team,
        product_area="reporting",
        created_at=now - dt.timedelta(hours=1),
    )
    return {
        "checkout": checkout,
        "password": password,
        "dashboard": dashboard,
        "acme": acme,
        "globex": globex,
    }


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, {"checkout", "password", "dashboard"}),
        ({"status": "in_progress"}, {"password"}),
        ({"status": ["new", "resolved"]}, {"checkout", "dashboard"}),
        ({"state": "open"}, {"checkout", "password"}),
        ({"state": "closed"}, {"dashboard"}),
        ({"severity": "P1"}, {"checkout"}),
        ({"severity": ["P2", "P3"]}, {"password", "dashboard"}),
        ({"organisation": "globex"}, {"password", "dashboard"}),
        ({"tier": "enterprise"}, {"checkout"}),
        ({"assignee": "bob"}, {"password"}),
        ({"team": "tier-2"}, {"checkout"}),
        ({"team": "billing"}, {"dashboard"}),
        ({"mine": "true"}, {"checkout"}),
        ({"mine": "false"}, {"password", "dashboard"}),
        ({"unassigned": "true"}, {"dashboard"}),
        ({"unassigned": "false"}, {"checkout", "password"}),
        ({"tag": "login"}, {"password"}),
        ({"product_area": "reporting"}, {"dashboard"}),
        ({"q": "password"}, {"password"}),
        ({"q": "KEY:checkout"}, {"checkout"}),
        ({"q": "nothing like this"}, set()),
    ],
)
def test_each_filter_narrows_the_list(api, queue, params, expected):
    query = dict(params)
    if query.get("organisation") == "globex":
        query["organisation"] = queue["globex"].pk
    if query.get("q") == "KEY:checkout":
        query["q"] = queue["checkout"].key
    response = api.get("/api/cases/", query)
    assert response.status_code == 200
    by_key = {queue[name].key: name for name in ("checkout", "password", "dashboard")}
    assert {by_key[k] for k in keys(response)} == expected


def test_search_by_key_is_case_insensitive(api, queue):
    response = api.get("/api/cases/", {"q": queue["password"].key.lower()})
    assert keys(response) == [queue["password"].key]


@pytest.mark.parametrize(
    "params",
    [
        {"severity": "P9"},
        {"status": "sleeping"},
        {"tier": "gold"},
        {"organisation": "acme"},
        {"organisation": "999999"},
        {"assignee": "nobody"},
        {"team": "no-such-team"},
        {"created_after": "yesterday"},
        {"ordering": "priority"},
        {"cursor": "not-a-cursor"},
        {"page_size": "lots"},
        {"page_size": "0"},
    ],
)
def test_bad_list_parameters_are_400_with_the_parameter_named(api, queue, params):
    response = api.get("/api/cases/", params)
    assert response.status_code == 400
    assert set(params) <= set(response.json())


def test_invalid_cursor_says_to_start_again(api, queue):
    response = api.get("/api/cases/", {"cursor": "eyJ2IjpbMV19"})  # a cursor for another sort order
    assert response.status_code == 400
    assert "first page" in response.json()["cursor"][0]


def _cursor(data) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "data",
    [
        {"v": ["P1", "2020-01-01T00:00:00+00:00", "abc"]},
        {"v": ["P1", None, 1]},
        {"v": [None, "2020-01-01T00:00:00+00:00", 1]},
        {"v": [["x"], "2020-01-01T00:00:00+00:00", [1]]},
        {"v": [{"a": 1}, "2020-01-01T00:00:00+00:00", {"b": 2}]},
        {"v": ["P1", 5, 1]},
        {"v": ["P1", "not a time", 1]},
        [1, 2],
        "text",
    ],
)
def test_hand_made_cursor_of_wrong_types_is_400(api, queue, data):
    response = api.get("/api/cases/", {"cursor": _cursor(data)})
    assert response.status_code == 400
    assert "first page" in response.json()["cursor"][0]


# --- Ordering and pages -----------------------------------------------------------------------------


@pytest.fixture
def many_cases(db, now):
    """23 cases with ties on every sort column, so the id tie-breaker matters."""
    organisation = factories.OrganisationFactory(name="Initech")
    requester = factories.ContactFactory(organisation=organisation)
    cases = []
    for i in range(23):
        created = now - dt.timedelta(hours=i // 3)  # three cases per instant
        cases.append(
            factories.CaseFactory(
                title=f"Case number {i}",
                organisation=organisation,
                requester=requester,
                severity=f"P{i % 4 + 1}",
                created_at=created,
                updated_at=created + dt.timedelta(minutes=(i * 7) % 5),
            )
        )
    return cases


def _expected_order(cases: list[Case], ordering: list[str]) -> list[str]:
    def sort_key(case):
        return tuple(getattr(case, spec.lstrip("-")) for spec in ordering)

    # Every spec of one ordering has the same direction, so one sort does.
    descending = ordering[0].startswith("-")
    return [c.key for c in sorted(cases, key=sort_key, reverse=descending)]


@pytest.mark.parametrize("ordering", list(QUEUE_ORDERINGS))
def test_cursor_pages_walk_forward_and_back_without_gaps_or_duplicates(api, many_cases, ordering):
    expected = _expected_order(many_cases, QUEUE_ORDERINGS[ordering][1])

    forward: list[list[str]] = []
    response = api.get("/api/cases/", {"ordering": ordering, "page_size": 5})
    assert response.json()["previous"] is None
    while True:
        assert response.status_code == 200
        forward.append(keys(response))
        if response.json()["next"] is None:
            break
        response = api.get(response.json()["next"])
    assert [len(page) for page in forward] == [5, 5, 5, 5, 3]
    assert [k for page in forward for k in page] == expected

    backward: list[list[str]] = [keys(response)]
    while response.json()["previous"] is not None:
        response = api.get(response.json()["previous"])
        assert response.status_code == 200
        backward.append(keys(response))
    assert [k for page in reversed(backward) for k in page] == expected
    assert backward[-1] == expected[:5]


def test_severity_order_is_severity_then_oldest(api, queue):
    response = api.get("/api/cases/", {"ordering": "severity"})
    assert keys(response) == [queue[n].key for n in ("checkout", "dashboard", "password")]


def test_default_order_is_the_urgency_order(api, queue):
    # These cases have no SLA clocks (factories): nothing is due, so they come in creation order,
    # exactly as ``ordering=due`` lists them (tests/sla/test_queue_due.py covers deadlines).
    assert keys(api.get("/api/cases/")) == keys(api.get("/api/cases/", {"ordering": "due"}))
    assert keys(api.get("/api/cases/")) == sorted(keys(api.get("/api/cases/")), key=Case.pk_from_key)


def test_newest_first(api, queue):
    response = api.get("/api/cases/", {"ordering": "newest"})
    assert keys(response) == [queue[n].key for n in ("dashboard", "password", "checkout")]


def test_page_size_is_capped(api, queue):
    response = api.get("/api/cases/", {"page_size": 10_000})
    assert response.status_code == 200
    assert len(response.json()["results"]) == 3


def test_filters_are_kept_in_page_links(api, many_cases):
    response = api.get("/api/cases/", {"severity": "P1", "page_size": 2})
    assert "severity=P1" in response.json()["next"]
    seen = keys(response)
    while response.json()["next"]:
        response = api.get(response.json()["next"])
        seen += keys(response)
    assert len(seen) == len([c for c in many_cases if c.severity == "P1"])
    assert {Case.objects.get(pk=Case.pk_from_key(k)).severity for k in seen} == {"P1"}


def test_list_query_count_is_the_same_for_5_and_50_cases(
    api, organisation, contact, team, agent, other_agent, django_assert_num_queries
):
    cc = factories.ContactFactory(organisation=organisation)
    tags = [Tag.objects.create(name=n) for n in ("vpn", "sso", "billing")]

    def add_cases(count: int) -> None:
        for i in range(count):
            case = factories.CaseFactory(
                organisation=organisation,
                requester=contact,
                team=team,
                assignee=agent if i % 2 else other_agent,
            )
            case.tags.set(tags[: i % 4])
            case.cc.set([cc])

    add_cases(5)
    with CaptureQueriesContext(connection) as five:
        response = api.get("/api/cases/", {"page_size": 50})
    assert len(response.json()["results"]) == 5
    # Auth, the page (its ids, then its rows, per part of the urgency order), tags, cc.
    assert len(five.captured_queries) <= 9

    add_cases(45)
    with django_assert_num_queries(len(five.captured_queries)):
        response = api.get("/api/cases/", {"page_size": 50})
    assert len(response.json()["results"]) == 50


# --- Creating and changing --------------------------------------------------------------------------


def test_create_case_returns_it_with_its_links(api, organisation, contact, team, agent):
    cc = factories.ContactFactory(organisation=organisation)
    response = send(
        api,
        "POST",
        "/api/cases/",
        {
            "title": "VPN drops every hour",
            "description": "Users get disconnected at :00.",
            "organisation": organisation.pk,
            "requester": contact.pk,
            "severity": "P2",
            "team": "tier-2",
            "assignee": "alice",
            "product_area": "network",
            "tags": ["VPN", "Network Issue"],
            "cc": [cc.pk],
        },
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    case = Case.objects.get(pk=Case.pk_from_key(body["key"]))
    assert response["Location"] == body["url"]
    assert case.title == "VPN drops every hour"
    assert case.requester == contact
    assert case.team == team
    assert case.assignee == agent
    assert list(case.cc.all()) == [cc]
    assert body["tags"] == ["network-issue", "vpn"]
    assert body["status"] == "new"
    created = case.events.get()
    assert created.kind == "created"
    assert created.actor == agent


def test_create_with_only_the_required_fields_uses_defaults(api, organisation, contact):
    response = send(
        api,
        "POST",
        "/api/cases/",
        {"title": "Question", "organisation": organisation.pk, "requester": contact.pk},
    )
    assert response.status_code == 201
    body = response.json()
    assert body["severity"] == "P3"
    assert body["assignee"] is None
    assert body["team"] is None
    assert body["tags"] == []


def test_requester_of_another_organisation_is_a_field_error(api, organisation):
    stranger = factories.ContactFactory(organisation=factories.OrganisationFactory(name="Globex"))
    response = send(
        api, "POST", "/api/cases/", {"title": "X", "organisation": organisation.pk, "requester": stranger.pk}
    )
    assert response.status_code == 400
    assert "Acme Corp" in response.json()["requester"][0]
    assert not Case.objects.exists()


def test_cc_of_another_organisation_is_a_field_error(api, organisation, contact):
    stranger = factories.ContactFactory(organisation=factories.OrganisationFactory(name="Globex"))
    response = send(
        api,
        "POST",
        "/api/cases/",
        {"title": "X", "organisation": organisation.pk, "requester": contact.pk, "cc": [stranger.pk]},
    )
    assert response.status_code == 400
    assert stranger.email in response.json()["cc"][0]


def test_patch_changes_only_what_is_sent_and_records_each_change(api, new_case, team):
    response = send(
        api,
        "PATCH",
        url_of(new_case),
        {"title": "Checkout fails for EU shoppers", "severity": "P1", "team": "tier-2", "tags": ["eu"]},
    )

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["title"] == "Checkout fails for EU shoppers"
    assert body["severity"] == "P1"
    assert body["team"] == {"slug": "tier-2", "name": "Tier 2"}
    assert body["tags"] == ["eu"]
    assert body["description"] == "Since 09:00 every checkout returns 502."
    assert body["version"] == 2
    assert response["ETag"] == '"2"'
    kinds = list(new_case.events.values_list("kind", "field"))
    assert kinds == [
        ("created", ""),
        ("severity_changed", "severity"),
        ("team_changed", "team"),
        ("field_changed", "title"),
        ("tags_changed", "tags"),
    ]


def test_patch_can_clear_assignee_and_team(api, new_case, agent, team, now):
    services.update_case(new_case, assignee=agent, team=team, actor=agent, now=now)
    response = send(api, "PATCH", url_of(new_case), {"assignee": None, "team": None})
    assert response.status_code == 200
    assert response.json()["assignee"] is None
    assert response.json()["team"] is None


def test_patch_with_current_version_succeeds(api, new_case):
    response = send(api, "PATCH", url_of(new_case), {"title": "New title", "version": 1})
    assert response.status_code == 200
    assert response.json()["version"] == 2


def test_patch_with_stale_version_is_409_and_changes_nothing(api, new_case, agent, now):
    services.update_case(new_case, description="Someone else was here.", actor=agent, now=now)
    events_before = new_case.events.count()

    response = send(api, "PATCH", url_of(new_case), {"title": "Mine", "severity": "P1", "version": 1})

    assert response.status_code == 409
    assert response.json()["code"] == "conflict"
    assert "version 1" in response.json()["detail"]
    new_case.refresh_from_db()
    assert new_case.title == "Checkout fails with 502"
    assert new_case.severity == "P2"
    assert new_case.version == 2
    assert new_case.events.count() == events_before


def test_if_match_header_guards_patch(api, new_case, agent, now):
    services.update_case(new_case, description="Changed elsewhere.", actor=agent, now=now)

    stale = send(api, "PATCH", url_of(new_case), {"title": "Mine"}, HTTP_IF_MATCH='"1"')
    assert stale.status_code == 409
    new_case.refresh_from_db()
    assert new_case.title == "Checkout fails with 502"

    current = send(api, "PATCH", url_of(new_case), {"title": "Mine"}, HTTP_IF_MATCH='W/"2"')
    assert current.status_code == 200
    assert current.json()["title"] == "Mine"


@pytest.mark.parametrize("header", ["yesterday", '"²"', '"-1"', "W/"])
def test_if_match_that_is_not_a_version_is_400(api, new_case, header):
    response = send(api, "PATCH", url_of(new_case), {"title": "Mine"}, HTTP_IF_MATCH=header)
    assert response.status_code == 400
    assert "If-Match" in response.json()


def test_agent_cannot_take_a_case_that_belongs_to_someone_else(api, new_case, other_agent, manager, now):
    services.update_case(new_case, assignee=other_agent, actor=manager, now=now)

    response = send(api, "PATCH", url_of(new_case), {"assignee": "alice"})

    assert response.status_code == 400
    assert "manager" in response.json()["assignee"][0]
    new_case.refresh_from_db()
    assert new_case.assignee == other_agent


def test_manager_can_reassign_someone_elses_case(manager_api, new_case, other_agent, manager, now):
    services.update_case(new_case, assignee=other_agent, actor=manager, now=now)
    response = send(manager_api, "PATCH", url_of(new_case), {"assignee": "alice"})
    assert response.status_code == 200
    assert response.json()["assignee"]["username"] == "alice"


def test_agent_can_take_an_unassigned_case(api, new_case):
    response = send(api, "PATCH", url_of(new_case), {"assignee": "alice"})
    assert response.status_code == 200
    assert response.json()["assignee"]["username"] == "alice"


def test_engineer_cannot_be_made_an_assignee(api, new_case, engineer):
    response = send(api, "PATCH", url_of(new_case), {"assignee": engineer.username})
    assert response.status_code == 400
    assert "assignee" in response.json()


# --- Replies, notes and the timeline ----------------------------------------------------------------


def test_public_reply_is_recorded_and_mailed_to_the_requester(
    api, new_case, contact, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        note = send(api, "POST", url_of(new_case, "notes/"), {"body": "Internal: suspect the new LB config."})
        reply = send(api, "POST", url_of(new_case, "replies/"), {"body": "We are looking into it."})

    assert note.status_code == 201
    assert reply.status_code == 201
    body = reply.json()
    assert body["kind"] == "public_reply"
    assert body["is_public"] is True
    assert body["actor"] == "alice"
    assert body["body"] == "We are looking into it."
    assert body["delivery"]["status"] == "queued"
    assert body["delivery"]["to"] == [contact.email]
    assert mail.outbox == []  # a worker sends it
    assert deliver_mail() == 1
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == [contact.email]
    assert new_case.key in message.subject
    assert "We are looking into it." in message.body
    assert "suspect the new LB config" not in message.body + message.subject
    new_case.refresh_from_db()
    assert new_case.first_response_at is not None


def test_internal_note_is_never_emailed(api, new_case, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = send(api, "POST", url_of(new_case, "notes/"), {"body": "Customer is on the old build."})

    assert response.status_code == 201
    assert response.json()["kind"] == "internal_note"
    assert response.json()["is_public"] is False
    assert not OutboundMessage.objects.exists()
    assert mail.outbox == []
    assert callbacks == []
    new_case.refresh_from_db()
    assert new_case.first_response_at is None


@pytest.mark.parametrize("endpoint", ["replies/", "notes/"])
@pytest.mark.parametrize("payload", [{}, {"body": ""}, {"body": "   "}, {"body": None}, {"body": 42}])
def test_empty_reply_or_note_is_a_field_error(
    api, new_case, endpoint, payload, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = send(api, "POST", url_of(new_case, endpoint), payload)
    assert response.status_code == 400
    assert "body" in response.json()
    assert new_case.events.count() == 1
    assert not OutboundMessage.objects.exists()


def test_timeline_lists_every_action_oldest_first(api, organisation, contact, team):
    created = send(
        api,
        "POST",
        "/api/cases/",
        {"title": "SSO loop", "organisation": organisation.pk, "requester": contact.pk, "severity": "P3"},
    )
    case_url = created.json()["url"]
    send(api, "PATCH", case_url, {"product_area": "identity"})
    send(api, "POST", case_url + "transition/", {"to": "triaged", "severity": "P2", "team": "tier-2"})
    send(api, "POST", case_url + "notes/", {"body": "Probably the IdP clock."})
    send(api, "POST", case_url + "replies/", {"body": "We are on it."})
    send(api, "POST", case_url + "transition/", {"to": "in_progress"})

    response = api.get(case_url + "events/")

    assert response.status_code == 200
    events = response.json()["results"]
    assert [(e["kind"], e["field"], e["old_value"], e["new_value"]) for e in events] == [
        ("created", "", None, events[0]["new_value"]),
        ("field_changed", "product_area", "", "identity"),
        ("severity_changed", "severity", "P3", "P2"),
        ("team_changed", "team", None, "tier-2"),
        ("status_changed", "status", "new", "triaged"),
        ("internal_note", "", None, None),
        ("public_reply", "", None, None),
        ("status_changed", "status", "triaged", "in_progress"),
    ]
    assert events[0]["new_value"]["title"] == "SSO loop"
    assert events[5]["body"] == "Probably the IdP clock."
    assert events[5]["is_public"] is False
    assert events[6]["is_public"] is True
    assert {e["actor"] for e in events} == {"alice"}
    assert {e["actor_name"] for e in events} == {"Alice Agent"}
    assert all(e["imported"] is False for e in events)
    times = [e["created_at"] for e in events]
    assert times == sorted(times)


def test_timeline_pages_cover_every_event_once(api, new_case, agent, now):
    for i in range(6):
        services.add_internal_note(new_case, body=f"note {i}", actor=agent, now=now + dt.timedelta(minutes=i))
    expected = list(new_case.events.order_by("created_at", "id").values_list("id", flat=True))

    seen: list[int] = []
    response = api.get(url_of(new_case, "events/"), {"page_size": 3})
    while True:
        seen += [e["id"] for e in response.json()["results"]]
        if not response.json()["next"]:
            break
        response = api.get(response.json()["next"])
    assert seen == expected

    back = [e["id"] for e in response.json()["results"]]
    while response.json()["previous"]:
        response = api.get(response.json()["previous"])
        back = [e["id"] for e in response.json()["results"]] + back
    assert back == expected


def test_timeline_of_system_events_has_no_actor(api, new_case, now):
    services.transition(new_case, "resolved", actor=None, now=now)
    events = api.get(url_of(new_case, "events/")).json()["results"]
    assert events[-1]["actor"] is None
    assert events[-1]["actor_name"] == "system"


def test_timeline_of_unknown_case_is_404(api, db):
    assert api.get("/api/cases/CASE-424242/events/").status_code == 404


# --- Transitions ------------------------------------------------------------------------------------


def test_triage_with_severity_and_owner(api, new_case, team):
    response = send(
        api, "POST", url_of(new_case, "transition/"), {"to": "triaged", "severity": "P2", "assignee": "alice"}
    )

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "triaged"
    assert body["severity_confirmed"] is True
    assert body["assignee"]["username"] == "alice"
    assert body["triaged_at"] is not None
    assert body["allowed_transitions"] == ["in_progress", "resolved"]
    assert body["version"] == 2


def test_illegal_transition_is_400_naming_the_allowed_ones(api, new_case):
    response = send(api, "POST", url_of(new_case, "transition/"), {"to": "in_progress"})

    assert response.status_code == 400
    message = response.json()["to"][0]
    assert "new" in message
    assert "triaged" in message
    new_case.refresh_from_db()
    assert new_case.status == "new"


def test_triage_without_confirmed_severity_is_400(api, new_case, team):
    response = send(api, "POST", url_of(new_case, "transition/"), {"to": "triaged", "team": "tier-2"})
    assert response.status_code == 400
    assert "severity" in response.json()["to"][0]
    new_case.refresh_from_db()
    assert new_case.status == "new"
    assert new_case.team is None


def test_triage_without_owner_is_400(api, new_case):
    response = send(api, "POST", url_of(new_case, "transition/"), {"to": "triaged", "severity": "P1"})
    assert response.status_code == 400
    assert "owner" in response.json()["to"][0]
    new_case.refresh_from_db()
    assert new_case.status == "new"
    assert new_case.severity == "P2"
    assert new_case.events.count() == 1


def test_closing_by_hand_is_refused(api, new_case, agent, now):
    services.transition(new_case, "resolved", actor=agent, now=now)
    response = send(api, "POST", url_of(new_case, "transition/"), {"to": "closed"})
    assert response.status_code == 400
    assert "automatically" in response.json()["to"][0]


def test_reopen_counts(api, new_case, agent, now):
    services.transition(new_case, "resolved", actor=agent, now=now)
    response = send(
        api, "POST", url_of(new_case, "transition/"), {"to": "reopened", "reason": "Still failing"}
    )
    assert response.status_code == 200
    assert response.json()["reopen_count"] == 1
    assert response.json()["allowed_transitions"] == ["in_progress", "resolved"]


def test_transition_with_stale_version_is_409(api, new_case, agent, now):
    services.update_case(new_case, title="Changed elsewhere", actor=agent, now=now)
    response = send(api, "POST", url_of(new_case, "transition/"), {"to": "resolved", "version": 1})
    assert response.status_code == 409
    assert response.json()["code"] == "conflict"
    new_case.refresh_from_db()
    assert new_case.status == "new"


def test_transition_on_a_closed_case_is_400(api, new_case, agent, now):
    services.transition(new_case, "resolved", actor=agent, now=now)
    services.auto_close_resolved(now=now + dt.timedelta(days=8))
    response = send(api, "POST", url_of(new_case, "transition/"), {"to": "reopened", "reason": "Back"})
    assert response.status_code == 400
    patch = send(api, "PATCH", url_of(new_case), {"title": "Too late"})
    assert patch.status_code == 400
    assert "closed" in patch.json()["detail"]


# --- Malformed input never changes anything ---------------------------------------------------------


def _stored_state() -> dict:
    return {
        "cases": list(Case.objects.order_by("pk").values()),
        "tags": sorted(Case.tags.through.objects.values_list("case_id", "tag_id")),
        "cc": sorted(Case.cc.through.objects.values_list("case_id", "contact_id")),
        "events": CaseEvent.objects.count(),
        "contacts": list(Contact.objects.order_by("pk").values()),
        "organisations": list(Organisation.objects.order_by("pk").values()),
        "mails": OutboundMessage.objects.count(),
    }


# Not JSON, or JSON that is not an object. (An empty PATCH body is a valid no-op, like ``{}``.)
GARBAGE = ["{not json", "[1, 2", '"just a string"', "[]", "null", "42", "{'single': 'quotes'}"]


def test_malformed_payloads_to_every_write_endpoint_are_400_and_change_nothing(
    api, manager_api, new_case, organisation, contact, team, engineer, django_capture_on_commit_callbacks
):
    globex = factories.OrganisationFactory(name="Globex")
    stranger = factories.ContactFactory(organisation=globex, email="sam@globex.example")
    other_contact = factories.ContactFactory(organisation=organisation, email="dora@acme.example")
    case_url = url_of(new_case)
    valid_create = {"title": "Valid", "organisation": organisation.pk, "requester": contact.pk}

    batches: list[tuple[APIClient, str, str, list]] = [
        (
            api,
            "POST",
            "/api/cases/",
            [
                {},
                {**valid_create, "title": ""},
                {**valid_create, "title": "   "},
                {**valid_create, "title": "x" * 301},
                {**valid_create, "title": 123},
                {**valid_create, "title": ["a list"]},
                {**valid_create, "title": None},
                {**valid_create, "description": None},
                {**valid_create, "description": {"a": 1}},
                {**valid_create, "severity": "P9"},
                {**valid_create, "severity": 1},
                {**valid_create, "team": "no-such-team"},
                {**valid_create, "team": 5},
                {**valid_create, "assignee": "nobody"},
                {**valid_create, "assignee": engineer.username},
                {**valid_create, "assignee": ["alice"]},
                {**valid_create, "requester": stranger.pk},
                {**valid_create, "requester": "carla"},
                {**valid_create, "requester": 1.5},
                {**valid_create, "requester": "²"},
                {**valid_create, "organisation": "acme"},
                {**valid_create, "organisation": 10**30},
                {**valid_create, "organisation": True},
                {**valid_create, "organisation": 999999},
                {**valid_create, "tags": "billing"},
                {**valid_create, "tags": {"a": "b"}},
                {**valid_create, "tags": [1, 2]},
                {**valid_create, "tags": ["bad/tag"]},
                {**valid_create, "tags": ["x" * 51]},
                {**valid_create, "cc": str(contact.pk)},
                {**valid_create, "cc": [999999]},
                {**valid_create, "cc": [stranger.pk]},
                {**valid_create, "product_area": "x" * 101},
                ["title", "Valid"],
                "",
                *GARBAGE,
            ],
        ),
        (
            api,
            "PATCH",
            case_url,
            [
                {"title": ""},
                {"title": None},
                {"title": "x" * 301},
                {"title": 5},
                {"description": None},
                {"severity": "urgent"},
                {"severity": None},
                {"assignee": "ghost"},
                {"assignee": 7},
                {"team": "ghost"},
                {"team": {"slug": "tier-2"}},
                {"tags": "eu"},
                {"tags": None},
                {"tags": [None]},
                {"tags": ["has space/slash"]},
                {"product_area": "x" * 101},
                {"version": "abc"},
                {"version": 0},
                {"title": "Valid", "severity": "P7"},  # one bad field: nothing of the request is applied
                ["title"],
                *GARBAGE,
            ],
        ),
        (
            api,
            "POST",
            case_url + "transition/",
            [
                {},
                {"to": ""},
                {"to": "bogus"},
                {"to": 5},
                {"to": None},
                {"to": "in_progress"},
                {"to": "closed"},
                {"to": "triaged"},
                {"to": "triaged", "severity": "P0", "team": "tier-2"},
                {"to": "triaged", "severity": "P1", "assignee": "ghost"},
                {"to": "triaged", "severity": "P1", "assignee": None},
                {"to": "triaged", "severity": "P1", "team": 7},
                {"to": "triaged", "severity": "P1", "team": "tier-2", "version": -1},
                {"to": "resolved", "version": "new"},
                *GARBAGE,
            ],
        ),
        (
            api,
            "POST",
            case_url + "replies/",
            [
                {},
                {"body": ""},
                {"body": " \n "},
                {"body": None},
                {"body": ["hi"]},
                {"body": "x" * 100_001},
                *GARBAGE,
            ],
        ),
        (
            api,
            "POST",
            case_url + "notes/",
            [{}, {"body": ""}, {"body": "\t"}, {"body": None}, {"body": {"text": "hi"}}, *GARBAGE],
        ),
        (
            api,
            "POST",
            "/api/contacts/",
            [
                {},
                {"organisation": organisation.pk, "name": "Dup", "email": "carla@acme.example"},
                {"organisation": organisation.pk, "name": "Dup", "email": "CARLA@acme.example"},
                {"organisation": organisation.pk, "name": "No mail", "email": "not-an-address"},
                {"organisation": organisation.pk, "name": "", "email": "new@acme.example"},
                {"organisation": organisation.pk, "name": 5, "email": "new@acme.example"},
                {"organisation": 999999, "name": "Ghost", "email": "ghost@acme.example"},
                {"organisation": "acme", "name": "Ghost", "email": "ghost@acme.example"},
                *GARBAGE,
            ],
        ),
        (
            api,
            "PATCH",
            f"/api/contacts/{other_contact.pk}/",
            [
                {"email": "carla@acme.example"},
                {"email": "nope"},
                {"name": ""},
                {"organisation": globex.pk},
                *GARBAGE,
            ],
        ),
        (
            manager_api,
            "POST",
            "/api/organisations/",
            [
                {},
                {"name": ""},
                {"name": "Acme Corp"},
                {"name": "acme corp"},
                {"name": "New Co", "tier": "gold"},
                {"name": "New Co", "time_zone": "Mars/Olympus_Mons"},
                {"name": "New Co", "time_zone": 3},
                {"name": ["New Co"]},
                *GARBAGE,
            ],
        ),
        (
            manager_api,
            "PATCH",
            f"/api/organisations/{organisation.pk}/",
            [{"name": "Globex"}, {"tier": "platinum"}, {"time_zone": "Nowhere"}, {"name": None}, *GARBAGE],
        ),
    ]

    before = _stored_state()
    failures = []
    with django_capture_on_commit_callbacks(execute=True):
        for client, method, url, payloads in batches:
            for payload in payloads:
                response = send(client, method, url, payload)
                if response.status_code != 400 or not response.json():
                    failures.append((method, url, payload, response.status_code, response.content[:200]))
    assert failures == []
    assert _stored_state() == before


# --- Organisations, contacts, teams, staff ----------------------------------------------------------


def test_contacts_filter_by_organisation_and_search(api, organisation, contact):
    globex = factories.OrganisationFactory(name="Globex")
    factories.ContactFactory(organisation=globex, name="Carla Other", email="carla@globex.example")
    factories.ContactFactory(organisation=organisation, name="Dan Dev", email="dan@acme.example")

    by_org = api.get("/api/contacts/", {"organisation": organisation.pk}).json()["results"]
    assert [c["name"] for c in by_org] == ["Carla Customer", "Dan Dev"]

    by_name = api.get("/api/contacts/", {"q": "carla"}).json()["results"]
    assert {c["email"] for c in by_name} == {"carla@acme.example", "carla@globex.example"}

    by_email = api.get("/api/contacts/", {"q": "globex.example"}).json()["results"]
    assert [c["name"] for c in by_email] == ["Carla Other"]

    both = api.get("/api/contacts/", {"q": "carla", "organisation": globex.pk}).json()["results"]
    assert [c["email"] for c in both] == ["carla@globex.example"]


def test_agent_creates_and_renames_a_contact(api, organisation, contact):
    created = send(
        api,
        "POST",
        "/api/contacts/",
        {"organisation": organisation.pk, "name": "Eve", "email": "eve@acme.example"},
    )
    assert created.status_code == 201
    contact_id = created.json()["id"]

    renamed = send(api, "PATCH", f"/api/contacts/{contact_id}/", {"name": "Eve Example"})
    assert renamed.status_code == 200
    assert Contact.objects.get(pk=contact_id).name == "Eve Example"
    assert api.get(f"/api/contacts/{contact_id}/").json() == {
        "id": contact_id,
        "organisation": organisation.pk,
        "name": "Eve Example",
        "email": "eve@acme.example",
    }


def test_same_email_is_fine_in_another_organisation(api, contact):
    globex = factories.OrganisationFactory(name="Globex")
    response = send(
        api, "POST", "/api/contacts/", {"organisation": globex.pk, "name": "Carla", "email": contact.email}
    )
    assert response.status_code == 201


def test_duplicate_contact_email_is_400(api, organisation, contact):
    response = send(
        api,
        "POST",
        "/api/contacts/",
        {"organisation": organisation.pk, "name": "Carla 2", "email": contact.email},
    )
    assert response.status_code == 400
    assert "Acme Corp" in response.json()["email"][0]


def test_manager_creates_and_changes_an_organisation(manager_api):
    created = send(
        manager_api,
        "POST",
        "/api/organisations/",
        {"name": "Umbrella", "tier": "business", "time_zone": "Asia/Tokyo"},
    )
    assert created.status_code == 201
    org_id = created.json()["id"]
    changed = send(manager_api, "PATCH", f"/api/organisations/{org_id}/", {"tier": "enterprise"})
    assert changed.status_code == 200
    assert Organisation.objects.get(pk=org_id).tier == "enterprise"


def test_organisations_list_and_filter(api, organisation):
    factories.OrganisationFactory(name="Globex", tier="standard")
    everyone = api.get("/api/organisations/").json()
    assert [o["name"] for o in everyone["results"]] == ["Acme Corp", "Globex"]
    assert everyone["next"] is None
    assert [o["name"] for o in api.get("/api/organisations/", {"tier": "standard"}).json()["results"]] == [
        "Globex"
    ]
    assert [o["name"] for o in api.get("/api/organisations/", {"q": "acme"}).json()["results"]] == [
        "Acme Corp"
    ]


def test_organisation_detail_and_unknown_id(api, organisation):
    body = api.get(f"/api/organisations/{organisation.pk}/").json()
    assert body["name"] == "Acme Corp"
    assert body["time_zone"] == "Europe/Berlin"
    assert api.get("/api/organisations/999999/").status_code == 404
    assert api.get("/api/organisations/acme/").status_code == 404


def test_teams_list(api, team):
    factories.TeamFactory(name="Billing", slug="billing")
    assert api.get("/api/teams/").json()["results"] == [
        {"slug": "billing", "name": "Billing"},
        {"slug": "tier-2", "name": "Tier 2"},
    ]


def test_staff_lists_assignable_users_only(api, agent, other_agent, manager, engineer, admin_user):
    inactive = factories.AgentFactory(username="zed", is_active=False)
    staff = api.get("/api/staff/").json()["results"]
    usernames = [s["username"] for s in staff]
    assert set(usernames) == {"alice", "bob", "maria", "root-admin"}
    assert engineer.username not in usernames
    assert inactive.username not in usernames
    assert {"username": "alice", "name": "Alice Agent"} in staff


def test_created_case_time_is_the_request_time(api, organisation, contact):
    before = timezone.now()
    response = send(
        api, "POST", "/api/cases/", {"title": "T", "organisation": organisation.pk, "requester": contact.pk}
    )
    after = timezone.now()
    created = dt.datetime.fromisoformat(response.json()["created_at"])
    assert before <= created <= after


@pytest.mark.parametrize(
    "path",
    [
        "/api/cases/",
        "/api/cases/{key}/",
        "/api/cases/{key}/events/",
        "/api/cases/{key}/transition/",
        "/api/cases/{key}/replies/",
        "/api/organisations/",
        "/api/organisations/{org}/",
        "/api/contacts/",
        "/api/contacts/{contact}/",
        "/api/teams/",
        "/api/staff/",
    ],
)
@pytest.mark.parametrize("method", ["GET", "OPTIONS"])
@pytest.mark.parametrize("role", ["agent", "manager"])
def test_browsable_api_and_options_render_for_staff(request, new_case, team, path, method, role):
    client = _client(request.getfixturevalue(role))
    url = path.format(key=new_case.key, org=new_case.organisation_id, contact=new_case.requester_id)
    headers = {"HTTP_ACCEPT": "text/html"} if method == "GET" else {}
    response = client.generic(method, url, **headers)
    # GET on a POST-only action is a 405 page; nothing may be a 500.
    assert response.status_code in {200, 405}
    assert response.status_code == 200 or path.endswith(("transition/", "replies/"))
