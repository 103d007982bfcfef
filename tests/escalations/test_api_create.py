"""Drafting an escalation through the API (POST /api/escalations/): support staff only, the case's
tier and severity as defaults, the service's rules as 400s."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from cases import services as case_services
from cases.models import Status
from escalations.models import Escalation
from escalations.states import EscalationState
from tests import factories
from tests.escalations.conftest import complete_package

pytestmark = pytest.mark.django_db


def client_of(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {factories.api_token_key(user)}")
    return client


def draft_body(of_case, **overrides) -> dict:
    package = complete_package()
    package["first_seen_at"] = package["first_seen_at"].isoformat()
    return {"case": of_case.key, "team": "payments", **package, **overrides}


def test_an_agent_drafts_an_escalation_with_the_cases_tier_and_severity(agent, triaged_case, payments):
    note = triaged_case.events.order_by("id").first()
    response = client_of(agent).post(
        "/api/escalations/", draft_body(triaged_case, attached_events=[note.pk]), format="json"
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    escalation = Escalation.objects.get()
    assert response["Location"] == body["url"]
    assert body["key"] == escalation.key
    assert body["state"] == EscalationState.DRAFT
    assert body["quality_score"] == 5
    assert (escalation.case, escalation.team, escalation.created_by) == (triaged_case, payments, agent)
    assert (escalation.tier, escalation.severity) == ("enterprise", "P2")
    assert list(escalation.attached_events.all()) == [note]
    assert triaged_case.events.filter(kind="escalation_drafted").count() == 1


def test_a_summary_is_enough_for_a_draft(agent, triaged_case, payments):
    response = client_of(agent).post(
        "/api/escalations/", {"case": triaged_case.key, "team": "payments", "summary": "502s"}, format="json"
    )

    assert response.status_code == 201, response.json()
    assert response.json()["quality_score"] < 5


def test_engineers_cannot_draft_escalations(engineer, triaged_case, payments):
    response = client_of(engineer).post("/api/escalations/", draft_body(triaged_case), format="json")

    assert response.status_code == 403
    assert not Escalation.objects.exists()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"case": "CASE-999999"}, "case"),
        ({"team": "no-such-team"}, "team"),
        ({"summary": ""}, "summary"),
        ({"severity": "P9"}, "severity"),
        ({"first_seen_at": "0001-01-01T00:00:00+14:00"}, "first_seen_at"),
        ({"quality_score": 5}, "quality_score"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(agent, triaged_case, payments, change, field):
    response = client_of(agent).post("/api/escalations/", draft_body(triaged_case, **change), format="json")

    assert response.status_code == 400
    assert field in response.json()
    assert not Escalation.objects.exists()


def test_a_resolved_case_cannot_be_escalated(agent, triaged_case, payments, now):
    case_services.transition(triaged_case, Status.IN_PROGRESS, actor=agent, now=now)
    case_services.transition(triaged_case, Status.RESOLVED, actor=agent, now=now)
    response = client_of(agent).post("/api/escalations/", draft_body(triaged_case), format="json")

    assert response.status_code == 400
    assert "reopen it" in response.json()["case"][0]
    assert not Escalation.objects.exists()
