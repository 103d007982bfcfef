"""The escalations REST API as engineering and support use it: the permission matrix, actions and their
errors, filters, keyset pages with a constant number of queries, and what a package shows."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from cases import services as case_services
from cases.models import Status
from escalations import services
from escalations.models import Escalation
from escalations.states import ACTIONS, EscalationState, Side
from tests import factories
from tests.escalations.conftest import complete_package

S = EscalationState
pytestmark = pytest.mark.django_db

ENGINEERING_ACTIONS = [a for a in ACTIONS.values() if a.side == Side.ENGINEERING]
SUPPORT_ACTIONS = [a for a in ACTIONS.values() if a.side == Side.SUPPORT]
BODIES = {
    "request_info": {"questions": "Which tenant?"},
    "resolve": {"resolution": "Timeout raised", "fix_version": "4.2.1"},
    "decline": {"reason": "Works as designed"},
    "link": {"external_key": "PAY-1", "external_url": "https://jira.example/browse/PAY-1"},
    "answer": {"answer": "acme-prod"},
    "withdraw": {"reason": "Fixed by a config change"},
    "submit": {},
    "acknowledge": {},
    "start": {},
}


def _client(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_login(user)
    return client


def _post(client: APIClient, escalation: Escalation, action: str, payload=None):
    path = ACTIONS[action].name.replace("_", "-")
    return client.post(
        f"/api/escalations/{escalation.pk}/{path}/",
        data=json.dumps(payload if payload is not None else BODIES[action]),
        content_type="application/json",
    )


def _ids(response) -> list[int]:
    return [row["id"] for row in response.json()["results"]]


# --- The permission matrix -----------------------------------------------------------------------


def test_anonymous_gets_401_everywhere(escalation_in):
    escalation = escalation_in(S.SUBMITTED)
    client = _client()
    assert client.get("/api/escalations/").status_code == 401
    assert client.get(f"/api/escalations/{escalation.pk}/").status_code == 401
    for action in ACTIONS:
        assert _post(client, escalation, action).status_code == 401, action


def test_a_user_without_a_role_gets_403(escalation_in):
    escalation = escalation_in(S.SUBMITTED)
    client = _client(factories.UserFactory(username="nobody"))
    assert client.get("/api/escalations/").status_code == 403
    assert client.get(f"/api/escalations/{escalation.pk}/").status_code == 403


@pytest.mark.parametrize("role", ["agent", "manager"])
@pytest.mark.parametrize("action", [a.name for a in ENGINEERING_ACTIONS])
def test_support_staff_cannot_take_engineering_actions(escalation_in, request, role, action):
    escalation = escalation_in(S.IN_PROGRESS if action in ("resolve",) else S.SUBMITTED)
    response = _post(_client(request.getfixturevalue(role)), escalation, action)
    assert response.status_code == 403
    escalation.refresh_from_db()
    assert escalation.external_key == ""


@pytest.mark.parametrize("action", [a.name for a in SUPPORT_ACTIONS])
def test_engineers_cannot_take_support_actions(escalation_in, engineer, action):
    escalation = escalation_in(S.NEEDS_INFO if action == "answer" else S.SUBMITTED)
    state = escalation.state
    assert _post(_client(engineer), escalation, action).status_code == 403
    escalation.refresh_from_db()
    assert escalation.state == state


def test_support_staff_see_every_escalation_drafts_included(
    escalation_in, triaged_case, identity, agent, manager, now
):
    submitted = escalation_in(S.SUBMITTED)
    draft = services.create_draft(
        case=triaged_case, team=identity, actor=agent, now=now, summary="Login loops"
    )
    for user in (agent, manager):
        response = _client(user).get("/api/escalations/")
        assert response.status_code == 200
        assert set(_ids(response)) == {submitted.pk, draft.pk}


def test_an_engineer_without_scope_sees_every_team_but_no_drafts(
    escalation_in, triaged_case, identity, agent, engineer, now
):
    submitted = escalation_in(S.SUBMITTED)
    draft = services.create_draft(
        case=triaged_case, team=identity, actor=agent, now=now, summary="Login loops"
    )
    client = _client(engineer)
    assert _ids(client.get("/api/escalations/")) == [submitted.pk]
    assert client.get(f"/api/escalations/{submitted.pk}/").status_code == 200
    assert client.get(f"/api/escalations/{draft.pk}/").status_code == 404
    assert _post(client, draft, "acknowledge").status_code == 404


def test_an_engineer_with_a_team_scope_sees_and_acts_only_within_it(
    escalation_in, triaged_case, identity, payments, agent, engineer, scope_to, now
):
    payments_escalation = escalation_in(S.SUBMITTED)
    identity_escalation = services.create_draft(
        case=triaged_case, team=identity, actor=agent, now=now, **complete_package(component="")
    )
    services.submit(identity_escalation, actor=agent, now=now)
    scope_to(engineer, identity)
    client = _client(engineer)
    assert _ids(client.get("/api/escalations/")) == [identity_escalation.pk]
    assert _ids(client.get("/api/escalations/", {"team": "payments"})) == []
    assert client.get(f"/api/escalations/{payments_escalation.pk}/").status_code == 404
    assert _post(client, payments_escalation, "acknowledge").status_code == 404
    payments_escalation.refresh_from_db()
    assert payments_escalation.state == S.SUBMITTED
    assert _post(client, identity_escalation, "acknowledge").status_code == 200
    scope_to(engineer, identity, payments)
    assert len(_ids(_client(engineer).get("/api/escalations/"))) == 2


def test_engineers_still_get_403_from_every_cases_endpoint(escalation_in, engineer):
    escalation = escalation_in(S.SUBMITTED)
    client = _client(engineer)
    for url in [
        "/api/cases/",
        f"/api/cases/{escalation.case.key}/",
        f"/api/cases/{escalation.case.key}/events/",
    ]:
        assert client.get(url).status_code == 403, url


def test_an_engineer_token_works_for_the_api(escalation_in, engineer):
    escalation = escalation_in(S.SUBMITTED)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {factories.api_token_key(engineer)}")
    assert _ids(client.get("/api/escalations/")) == [escalation.pk]
    assert client.get("/api/cases/").status_code == 403


# --- Actions ------------------------------------------------------------------------------------


def test_engineering_works_an_escalation_through_the_api(escalation_in, engineer, agent):
    escalation = escalation_in(S.SUBMITTED)
    client = _client(engineer)
    response = _post(client, escalation, "acknowledge")
    assert response.status_code == 200
    assert response.json()["state"] == "acknowledged"
    assert response.json()["allowed_actions"] == ["request_info", "start", "decline", "link"]
    response = _post(client, escalation, "link")
    assert (response.json()["external_key"], response.json()["state"]) == ("PAY-1", "acknowledged")
    assert _post(client, escalation, "start").json()["state"] == "in_progress"
    response = _post(client, escalation, "resolve")
    assert response.status_code == 200
    body = response.json()
    assert (body["state"], body["fix_version"], body["resolution"]) == ("resolved", "4.2.1", "Timeout raised")
    escalation.case.refresh_from_db()
    assert escalation.case.status == Status.IN_PROGRESS


def test_support_submits_answers_and_withdraws_through_the_api(draft, agent, engineer, now):
    client = _client(agent)
    response = _post(client, draft, "submit")
    assert response.status_code == 200
    assert response.json()["state"] == "submitted"
    services.request_info(draft, questions="Which tenant?", actor=engineer, now=now)
    response = _post(client, draft, "answer")
    assert response.json()["state"] == "submitted"
    assert response.json()["info_requests"][0]["answer"] == "acme-prod"
    assert _post(client, draft, "withdraw").json()["state"] == "withdrawn"


def test_an_illegal_transition_is_a_400_naming_the_state(escalation_in, engineer):
    escalation = escalation_in(S.SUBMITTED)
    response = _post(_client(engineer), escalation, "resolve")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "illegal_transition"
    assert escalation.key in body["state"][0]
    assert "in progress" in body["detail"]


def test_submitting_a_second_open_escalation_to_a_team_is_409(triaged_case, payments, agent, now):
    first = services.create_draft(
        case=triaged_case, team=payments, actor=agent, now=now, **complete_package()
    )
    second = services.create_draft(
        case=triaged_case, team=payments, actor=agent, now=now, **complete_package()
    )
    assert _post(_client(agent), first, "submit").status_code == 200
    response = _post(_client(agent), second, "submit")
    assert response.status_code == 409
    assert response.json()["code"] == "conflict"


def test_below_the_minimum_an_agent_gets_400_and_a_manager_overrides_with_a_reason(
    triaged_case, payments, agent, manager, now
):
    weak = services.create_draft(case=triaged_case, team=payments, actor=agent, now=now, summary="Broken")
    response = _post(_client(agent), weak, "submit", {"override_reason": "urgent"})
    assert response.status_code == 400
    assert "quality_score" in response.json()
    response = _post(_client(manager), weak, "submit", {})
    assert response.status_code == 400
    assert "override_reason" in response.json()
    response = _post(_client(manager), weak, "submit", {"override_reason": "P1, details to follow"})
    assert response.status_code == 200
    assert response.json()["override"] == {
        "by": "maria",
        "reason": "P1, details to follow",
        "at": response.json()["override"]["at"],
    }


@pytest.mark.parametrize(
    ("action", "payload", "field"),
    [
        ("request_info", {}, "questions"),
        ("request_info", {"questions": "   "}, "questions"),
        ("request_info", {"questions": 42}, "questions"),
        ("decline", {"reason": ""}, "reason"),
        ("link", {}, "external_key"),
        ("link", {"external_url": "javascript:alert(1)"}, "external_url"),
        ("link", {"external_key": ["PAY-1"]}, "external_key"),
    ],
)
def test_bad_engineering_input_is_a_400_with_field_messages(escalation_in, engineer, action, payload, field):
    escalation = escalation_in(S.SUBMITTED)
    response = _post(_client(engineer), escalation, action, payload)
    assert response.status_code == 400
    assert field in response.json()


def test_a_malformed_body_is_a_400_not_a_500(escalation_in, engineer):
    escalation = escalation_in(S.SUBMITTED)
    response = _client(engineer).post(
        f"/api/escalations/{escalation.pk}/decline/", data="{not json", content_type="application/json"
    )
    assert response.status_code == 400


def test_unknown_ids_are_404(engineer, agent, db):
    assert _client(engineer).get("/api/escalations/999999/").status_code == 404
    assert _client(agent).post("/api/escalations/999999/submit/", {}, format="json").status_code == 404


# --- What a package shows -----------------------------------------------------------------------


def test_the_detail_carries_the_package_the_case_summary_and_only_attached_notes(
    triaged_case, payments, agent, engineer, now
):
    shared = case_services.add_internal_note(triaged_case, body="Shared: DB is healthy", actor=agent, now=now)
    case_services.add_internal_note(triaged_case, body="Private: customer is grumpy", actor=agent, now=now)
    escalation = services.create_draft(
        case=triaged_case, team=payments, actor=agent, now=now, attached_events=[shared], **complete_package()
    )
    services.submit(escalation, actor=agent, now=now)
    body = _client(engineer).get(f"/api/escalations/{escalation.pk}/").json()
    assert body["key"] == escalation.key
    assert body["steps_to_reproduce"].startswith("1. Log in")
    assert body["request_ids"] == "req-8f2c91"
    assert body["users_affected"] == 1200
    assert body["quality_score"] == 5
    assert body["team"] == {"slug": "payments", "name": "Payments", "min_quality_score": 3}
    summary = body["case_summary"]
    assert summary["key"] == triaged_case.key
    assert summary["organisation"] == "Acme Corp"
    assert summary["tier"] == "enterprise"
    assert [e["body"] for e in summary["attached_events"]] == ["Shared: DB is healthy"]
    assert "grumpy" not in json.dumps(body)
    assert body["web_url"] == f"http://testserver/escalations/{escalation.pk}/view/"


def test_attachment_links_download_with_the_same_credentials(draft, agent, engineer, scope_to, identity, now):
    services.add_attachment(
        draft, upload=SimpleUploadedFile("app.log", b"ERROR timeout\n", "text/plain"), actor=agent, now=now
    )
    services.submit(draft, actor=agent, now=now)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {factories.api_token_key(engineer)}")
    [item] = client.get(f"/api/escalations/{draft.pk}/").json()["attachments"]
    assert (item["name"], item["content_type"], item["size"]) == ("app.log", "text/plain", 14)
    response = client.get(item["download_url"])
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"ERROR timeout\n"
    assert response["Content-Disposition"].startswith("attachment")
    assert client.get(f"/api/escalations/{draft.pk}/attachments/999999/").status_code == 404
    scope_to(engineer, identity)
    assert client.get(item["download_url"]).status_code == 404


def test_support_uploads_files_through_the_api_and_engineers_cannot(draft, agent, engineer, settings):
    upload = SimpleUploadedFile("trace.json", b'{"trace": 1}', "application/json")
    response = _client(agent).post(
        f"/api/escalations/{draft.pk}/attachments/", {"file": upload}, format="multipart"
    )
    assert response.status_code == 201
    assert response.json()["content_type"] == "application/json"
    services.submit(draft, actor=agent, now=dt.datetime.now(dt.UTC))
    upload = SimpleUploadedFile("x.txt", b"hello", "text/plain")
    response = _client(engineer).post(
        f"/api/escalations/{draft.pk}/attachments/", {"file": upload}, format="multipart"
    )
    assert response.status_code == 403
    settings.ATTACHMENT_MAX_BYTES = 4
    response = _client(agent).post(
        f"/api/escalations/{draft.pk}/attachments/",
        {"file": SimpleUploadedFile("x.txt", b"hello", "text/plain")},
        format="multipart",
    )
    assert response.status_code == 400


# --- Lists: filters, order, pages, queries ------------------------------------------------------


@pytest.fixture
def spread(organisation, contact, payments, identity, agent, engineer, now):
    """Six escalations over several cases, teams, states and times."""
    other_org = factories.OrganisationFactory(name="Globex", tier="standard")
    other_contact = factories.ContactFactory(organisation=other_org)
    made = {}
    specs = [
        ("a", organisation, contact, payments, "P1", S.SUBMITTED, 0),
        ("b", organisation, contact, identity, "P2", S.ACKNOWLEDGED, 1),
        ("c", other_org, other_contact, payments, "P3", S.IN_PROGRESS, 2),
        ("d", other_org, other_contact, identity, "P2", S.RESOLVED, 3),
        ("e", organisation, contact, payments, "P2", S.NEEDS_INFO, 4),
        ("f", other_org, other_contact, payments, "P4", S.DRAFT, 5),
    ]
    for name, org, requester, team, severity, state, days in specs:
        when = now - dt.timedelta(days=10 - days)
        case = case_services.create_case(
            title=f"Case {name}",
            organisation=org,
            requester=requester,
            actor=agent,
            now=when,
            severity=severity,
        )
        case = case_services.transition(
            case, Status.TRIAGED, actor=agent, now=when, severity=severity, assignee=agent
        )
        component = "checkout-api" if team == payments else ""
        escalation = services.create_draft(
            case=case, team=team, actor=agent, now=when, **complete_package(component=component, summary=name)
        )
        if state != S.DRAFT:
            escalation = services.submit(escalation, actor=agent, now=when)
        steps = {
            S.ACKNOWLEDGED: ["acknowledge"],
            S.IN_PROGRESS: ["acknowledge", "start"],
            S.RESOLVED: ["acknowledge", "start", "resolve"],
            S.NEEDS_INFO: ["request_info"],
        }.get(state, [])
        for step in steps:
            kwargs = {"questions": "?"} if step == "request_info" else {}
            if step == "resolve":
                kwargs = {"resolution": "done"}
            escalation = getattr(services, step)(escalation, actor=engineer, now=when, **kwargs)
        made[name] = escalation
    services.link(made["c"], external_key="PAY-7", actor=engineer, now=now)
    return made


def _names(response) -> set[str]:
    return {row["summary"] for row in response.json()["results"]}


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, {"a", "b", "c", "d", "e", "f"}),
        ({"state": "submitted"}, {"a"}),
        ({"state": ["acknowledged", "needs_info"]}, {"b", "e"}),
        ({"team": "identity"}, {"b", "d"}),
        ({"component": "checkout-api"}, {"a", "c", "e", "f"}),
        ({"severity": "P2"}, {"b", "d", "e"}),
        ({"tier": "standard"}, {"c", "d", "f"}),
        ({"has_external_key": "true"}, {"c"}),
        ({"has_external_key": "false"}, {"a", "b", "d", "e", "f"}),
    ],
)
def test_list_filters(spread, agent, params, expected):
    response = _client(agent).get("/api/escalations/", params)
    assert response.status_code == 200
    assert _names(response) == expected


def test_filter_by_organisation_case_and_submission_time(spread, agent, organisation, now):
    client = _client(agent)
    assert _names(client.get("/api/escalations/", {"organisation": organisation.pk})) == {"a", "b", "e"}
    assert _names(client.get("/api/escalations/", {"case": spread["c"].case.key})) == {"c"}
    after = (now - dt.timedelta(days=8, hours=1)).isoformat()
    before = (now - dt.timedelta(days=6, hours=1)).isoformat()
    response = client.get("/api/escalations/", {"submitted_after": after, "submitted_before": before})
    assert _names(response) == {"c", "d"}


@pytest.mark.parametrize(
    "params",
    [
        {"state": "lost"},
        {"team": "nope"},
        {"submitted_after": "yesterday"},
        {"ordering": "random"},
        {"cursor": "garbage"},
        {"page_size": "0"},
        {"organisation": "x"},
    ],
)
def test_bad_list_parameters_are_400(spread, agent, params):
    assert _client(agent).get("/api/escalations/", params).status_code == 400


def test_orderings_and_cursor_pages(spread, agent):
    client = _client(agent)
    newest = [row["summary"] for row in client.get("/api/escalations/").json()["results"]]
    assert newest == ["f", "e", "d", "c", "b", "a"]
    oldest = client.get("/api/escalations/", {"ordering": "oldest"}).json()["results"]
    assert [row["summary"] for row in oldest] == ["a", "b", "c", "d", "e", "f"]
    severity = client.get("/api/escalations/", {"ordering": "severity"}).json()["results"]
    assert [row["severity"] for row in severity] == ["P1", "P2", "P2", "P2", "P3", "P4"]
    seen = []
    page = client.get("/api/escalations/", {"page_size": 4}).json()
    seen += [row["summary"] for row in page["results"]]
    page = client.get(page["next"]).json()
    seen += [row["summary"] for row in page["results"]]
    assert seen == newest
    assert page["next"] is None


def test_the_list_costs_the_same_queries_whatever_its_length(
    spread, agent, engineer, django_assert_num_queries
):
    for user in (agent, engineer):
        client = _client(user)
        with CaptureQueriesContext(connection) as one_row:
            assert len(client.get("/api/escalations/", {"page_size": 1}).json()["results"]) == 1
        with django_assert_num_queries(len(one_row.captured_queries)):
            assert len(client.get("/api/escalations/", {"page_size": 6}).json()["results"]) >= 5
