"""Issue 16: the outside review's findings that had no test of their own reproducing the symptom
it reported (findings 1, 2, 5, 6, 8 and 9 are covered in test_ssrf, test_throttling,
tests/imports/test_xes, test_headers, test_tokens and tests/escalations/test_webhooks)."""

from __future__ import annotations

import json

import pytest
from django.contrib.messages import get_messages
from django.core import mail
from rest_framework.test import APIClient

from cases import services as case_services
from cases.models import Case
from supportdesk.core.models import MailStatus, OutboundMessage
from tests.outbox import deliver_mail
from tests.schema_check import api_schema, assert_matches_schema

pytestmark = pytest.mark.django_db


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_finding_3_a_title_with_cr_lf_neither_breaks_the_reply_mail_nor_claims_it_was_sent(
    client, agent, organisation, contact, now
):
    case = case_services.create_case(
        title="Export broken\r\nBcc: attacker@evil.example",
        organisation=organisation,
        requester=contact,
        severity="P2",
        assignee=agent,
        actor=agent,
        now=now,
    )
    client.force_login(agent)
    response = client.post(f"/cases/{case.key}/reply/", {"body": "We are on it."})
    assert response.status_code == 302
    (message,) = [str(m) for m in get_messages(response.wsgi_request)]
    # The page says what happened: recorded and queued, not "sent" before any mail left.
    assert "queued for delivery" in message
    assert "sent" not in message.lower()
    assert deliver_mail() == 1  # BadHeaderError before: swallowed, never delivered
    assert OutboundMessage.objects.get().status == MailStatus.SENT
    (sent,) = mail.outbox
    assert sent.subject == f"[{case.key}] Export broken Bcc: attacker@evil.example"
    assert sent.recipients() == [contact.email]


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("/api/metrics/summary/?start=0001-01-01&end=0001-01-05", "start"),
        ("/api/metrics/summary/?start=9999-12-25&end=9999-12-31", "start"),
        ("/api/metrics/trends/?end=0001-01-05", "end"),
        ("/api/metrics/summary/?start=2026-01-01&end=2026-01-31&team=" + "9" * 20, "team"),
        ("/api/metrics/backlog/?team=" + "9" * 20, "team"),
    ],
)
def test_finding_4_each_reported_metrics_500_is_a_400_naming_the_field(manager, url, field):
    response = client_for(manager).get(url)
    assert response.status_code == 400, response.content
    assert field in response.json()


@pytest.mark.parametrize("start", ["9999-12-31T23:59:00", "0001-01-01T00:00:00+14:00"])
def test_finding_4_the_sla_preview_instants_reported_are_a_400(agent, organisation, start):
    payload = {"organisation": organisation.pk, "severity": "P1", "start": start}
    response = client_for(agent).post("/api/sla/preview", payload, format="json")
    assert response.status_code == 400, response.content
    assert "start" in response.json()


def test_finding_4_a_body_nested_50000_levels_is_a_400(agent):
    body = "[" * 50_000 + "]" * 50_000
    response = client_for(agent).post("/api/cases/", data=body, content_type="application/json")
    assert response.status_code == 400
    assert not Case.objects.exists()


def test_finding_7_the_schema_and_docs_refuse_anonymous_callers(engineer):
    for url in ("/api/schema/", "/api/docs/"):
        assert APIClient().get(url).status_code == 401, url
    staff = APIClient()
    staff.force_login(engineer)
    assert staff.get("/api/schema/", {"format": "json"}).status_code == 200
    assert staff.get("/api/docs/").status_code == 200


def test_finding_10_the_four_reported_disagreements_are_gone(agent, manager, new_case):
    schemas = api_schema()["components"]["schemas"]
    # 1. external_url "" is sent for an escalation not linked yet: not documented as a URI.
    assert "format" not in schemas["EscalationDetail"]["properties"]["external_url"]
    # 2. ArticleSummary.rank is null outside a search.
    assert schemas["ArticleSummary"]["properties"]["rank"]["nullable"] is True
    # 3. /api/metrics/cases/ is documented as the page it sends, and its body matches.
    response = client_for(manager).get("/api/metrics/cases/", {"metric": "backlog"})
    assert set(response.json()) == {"count", "next", "previous", "results"}
    assert_matches_schema(response, "/api/metrics/cases/", "get")
    # 4. The KB 400 body for tags (messages per item) matches the documented 400.
    payload = {"kind": "article", "title": "Reset SSO", "body_markdown": "Steps.", "tags": ["", "ok"]}
    response = client_for(agent).post(
        "/api/knowledge/articles/", data=json.dumps(payload), content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["tags"] == {"0": ["This field may not be blank."]}
    assert_matches_schema(response, "/api/knowledge/articles/", "post")


def test_finding_10_every_operation_documents_its_400_403_404_and_409():
    for path, item in api_schema()["paths"].items():
        for method, operation in item.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            codes = set(operation["responses"])
            params = operation.get("parameters", [])
            assert {"401", "403"} <= codes, f"{method} {path}"
            if "{" in path:
                assert "404" in codes, f"{method} {path}"
            if method != "get" or any(p["in"] == "query" for p in params):
                assert "400" in codes, f"{method} {path}"
            if any(p["name"].lower() == "if-match" for p in params):
                assert "409" in codes, f"{method} {path}"
