"""The incidents REST API: the same rules as the pages, each answer as the schema documents it."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from rest_framework.test import APIClient

from cases import services as case_services
from cases.models import Status
from incidents.models import IncidentStatus, MajorIncident
from supportdesk.core.models import OutboundMessage
from tests.factories import at
from tests.schema_check import api_schema, assert_matches_schema

pytestmark = pytest.mark.django_db

T0 = at(2026, 3, 4, 10, 0)
MIN = dt.timedelta(minutes=1)
LIST = "/api/incidents/"
DETAIL = "/api/incidents/{key}/"


def _client(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def api(agent):
    return _client(agent)


@pytest.fixture
def make_case(organisation, contact, agent):
    def make(title="Checkout returns 502", **kwargs):
        kwargs.setdefault("severity", "P1")
        return case_services.create_case(
            title=title, organisation=organisation, requester=contact, actor=agent, now=T0, **kwargs
        )

    return make


def _declare(api, **payload):
    payload.setdefault("title", "Checkout is down")
    with time_machine.travel(T0 + MIN, tick=False):
        return api.post(LIST, payload, format="json")


def test_only_support_staff_use_it(engineer):
    assert APIClient().get(LIST).status_code in (401, 403)
    anonymous = APIClient().get(LIST)
    assert_matches_schema(anonymous, LIST, "get")
    response = _client(engineer).get(LIST)
    assert response.status_code == 403
    assert_matches_schema(response, LIST, "get")


def test_declare_with_cases_links_them_and_lists_the_refused(api, agent, manager, make_case):
    case = make_case()
    closed = make_case("Old")
    case_services.transition(closed, Status.RESOLVED, actor=agent, now=T0)
    case_services.auto_close_resolved(now=T0 + dt.timedelta(days=8))
    response = _declare(
        api,
        severity="P1",
        product_area="checkout",
        commander=manager.username,
        cadence_minutes=45,
        cases=[case.key, closed.key.lower(), "CASE-999999"],
    )
    assert response.status_code == 201, response.json()
    assert_matches_schema(response, LIST, "post")
    body = response.json()
    incident = MajorIncident.objects.get()
    assert response["Location"] == f"/api/incidents/{incident.key}/"
    assert body["linked"]["done"] == [case.key]
    assert {r["key"] for r in body["linked"]["refused"]} == {closed.key, "CASE-999999"}
    assert body["incident"]["commander"] == "maria"
    assert body["incident"]["cadence_minutes"] == 45
    assert body["incident"]["next_update_due_at"] == (T0 + 46 * MIN).isoformat().replace("+00:00", "Z")
    assert [c["key"] for c in body["incident"]["cases"]] == [case.key]
    # The agent is no commander: linking and updates, not the cadence or resolving.
    assert body["incident"]["allowed_actions"] == ["link", "updates"]


def test_bad_declarations_are_400_naming_the_field(api, engineer):
    for payload, field in [
        ({"title": "  "}, "title"),
        ({"title": "Down", "severity": "P9"}, "severity"),
        ({"title": "Down", "commander": engineer.username}, "commander"),
        ({"title": "Down", "cadence_minutes": 2}, "cadence_minutes"),
        ({"title": "Down", "from_case": "CASE-999999"}, "from_case"),
        ({"title": "Down", "colour": "red"}, "colour"),
    ]:
        response = _declare(api, **payload)
        assert response.status_code == 400, payload
        assert field in response.json(), (payload, response.json())
        assert_matches_schema(response, LIST, "post")
    assert not MajorIncident.objects.exists()


def test_link_post_and_read_an_incident(api, agent, make_case, organisation, contact):
    origin, other = make_case(), make_case("Cannot pay")
    key = _declare(api, from_case=origin.key).json()["incident"]["key"]
    path = f"/api/incidents/{key}/"

    linked = api.post(path + "link/", {"cases": [other.key, origin.key]}, format="json")
    assert linked.status_code == 200
    assert_matches_schema(linked, DETAIL + "link/", "post")
    assert linked.json() == {
        "done": [other.key],
        "refused": [{"key": origin.key, "reason": "already linked to this incident"}],
    }

    with time_machine.travel(T0 + 20 * MIN, tick=False):
        posted = api.post(path + "updates/", {"body": "We are on it.", "public": True}, format="json")
    assert posted.status_code == 201
    assert_matches_schema(posted, DETAIL + "updates/", "post")
    body = posted.json()
    assert sorted(body["posted"]["done"]) == sorted([origin.key, other.key])
    assert body["update"]["reached"] == 2
    assert body["update"]["on_time"] is True
    assert OutboundMessage.objects.filter(body="We are on it.").count() == 2
    internal = api.post(path + "updates/", {"body": "Proxy at fault.", "public": False}, format="json")
    assert internal.json()["posted"] == {"done": [], "refused": []}
    assert not OutboundMessage.objects.filter(body="Proxy at fault.").exists()

    detail = api.get(path)
    assert detail.status_code == 200
    assert_matches_schema(detail, DETAIL, "get")
    data = detail.json()
    assert [u["body"] for u in data["updates"]] == ["Proxy at fault.", "We are on it."]
    assert data["figures"]["cases"] == 2
    assert data["figures"]["organisations"] == 1
    assert data["figures"]["time_to_first_update"] == "00:19:00"
    assert data["next_update_due_at"] == (T0 + 50 * MIN).isoformat().replace("+00:00", "Z")

    listed = api.get(LIST, {"status": "active"})
    assert_matches_schema(listed, LIST, "get")
    assert [i["key"] for i in listed.json()["results"]] == [key]
    assert listed.json()["results"][0]["case_count"] == 2
    assert api.get(LIST, {"status": "resolved"}).json()["results"] == []
    missing = api.get("/api/incidents/INC-999999/")
    assert missing.status_code == 404
    assert_matches_schema(missing, DETAIL, "get")


def test_resolving_and_the_cadence_are_the_commanders_or_a_managers(
    api, agent, other_agent, manager, make_case
):
    case = make_case()
    key = _declare(api, from_case=case.key).json()["incident"]["key"]  # the agent commands it
    path = f"/api/incidents/{key}/"

    colleague = _client(other_agent)
    refused = colleague.post(path + "resolve/", {"closing_message": "Fixed."}, format="json")
    assert refused.status_code == 403
    assert_matches_schema(refused, DETAIL + "resolve/", "post")
    assert colleague.post(path + "cadence/", {"cadence_minutes": 60}, format="json").status_code == 403

    with time_machine.travel(T0 + 10 * MIN, tick=False):
        changed = api.post(path + "cadence/", {"cadence_minutes": 60}, format="json")
    assert changed.status_code == 200
    assert_matches_schema(changed, DETAIL + "cadence/", "post")
    assert changed.json()["next_update_due_at"] == (T0 + 61 * MIN).isoformat().replace("+00:00", "Z")

    resolved = _client(manager).post(path + "resolve/", {"closing_message": "Fixed."}, format="json")
    assert resolved.status_code == 200
    assert_matches_schema(resolved, DETAIL + "resolve/", "post")
    assert resolved.json()["resolved"] == {"done": [case.key], "refused": []}
    assert resolved.json()["incident"]["status"] == IncidentStatus.RESOLVED
    case.refresh_from_db()
    assert case.status == Status.RESOLVED
    # A resolved incident takes no more updates.
    again = api.post(path + "updates/", {"body": "More", "public": True}, format="json")
    assert again.status_code == 400
    assert_matches_schema(again, DETAIL + "updates/", "post")


def test_suggestions_through_the_api(api, agent, make_case):
    origin = make_case("Checkout returns 502 for card payments", product_area="checkout")
    key = _declare(api, from_case=origin.key, product_area="checkout").json()["incident"]["key"]
    with time_machine.travel(T0 + 5 * MIN, tick=False):
        similar = case_services.create_case(
            title="Card payments fail at checkout",
            organisation=origin.organisation,
            requester=origin.requester,
            severity="P1",
            product_area="checkout",
            actor=agent,
            now=T0 + 5 * MIN,
        )
    response = api.get(f"/api/incidents/{key}/suggestions/")
    assert response.status_code == 200
    assert_matches_schema(response, DETAIL + "suggestions/", "get")
    assert [c["key"] for c in response.json()] == [similar.key]


def test_the_schema_documents_every_incident_operation():
    paths = api_schema()["paths"]
    expected = {
        LIST: {"get", "post"},
        DETAIL: {"get"},
        DETAIL + "link/": {"post"},
        DETAIL + "updates/": {"post"},
        DETAIL + "cadence/": {"post"},
        DETAIL + "resolve/": {"post"},
        DETAIL + "suggestions/": {"get"},
    }
    for path, methods in expected.items():
        assert set(paths[path]) & {"get", "post", "put", "patch", "delete"} == methods, path
        for method in methods:
            responses = set(paths[path][method]["responses"])
            assert {"401", "403"} <= responses, (method, path)
            if method == "post":
                assert "400" in responses, (method, path)
            if "{key}" in path:
                assert "404" in responses, (method, path)
