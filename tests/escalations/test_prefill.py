"""The escalation form starts from what the case already says: "Version: 4.2"-style lines of the
description and the customer's messages, the case's organisation, tier and severity; and the
agent picks the customer's messages and replies to show engineering."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse

from cases import services as case_services
from escalations.models import Escalation
from escalations.prefill import parse

pytestmark_db = pytest.mark.django_db


# --- The parser (pure) --------------------------------------------------------------------------


def test_label_value_lines_fill_the_fields():
    found = parse(
        [
            "Checkout fails since this morning.\n"
            "Version: 4.2\n"
            "Environment: production\n"
            "OS: Windows 11\n"
            "Browser: Chrome 126\n"
            "Region: eu-west-1\n"
            "Tenant: acme-prod\n"
            "Request ID: req-8f2c91\n"
        ]
    )
    assert found.as_initial() == {
        "product_version": "4.2",
        "region": "eu-west-1",
        "tenant": "acme-prod",
        "environment": "Environment: production\nOS: Windows 11\nBrowser: Chrome 126",
        "request_ids": "req-8f2c91",
    }


@pytest.mark.parametrize(
    ("line", "field", "value"),
    [
        ("version: 4.2.1", "product_version", "4.2.1"),
        ("  - Product version = 4.3", "product_version", "4.3"),
        ("* App-Version: 7.0 (build 12).", "product_version", "7.0 (build 12)"),
        ("Data centre: Frankfurt", "region", "Frankfurt"),
        ("• Workspace: acme", "tenant", "acme"),
        ("OPERATING SYSTEM: macOS 14", "environment", "OS: macOS 14"),
        ("env: staging", "environment", "Environment: staging"),
        ("Correlation-ID: c-1, c-2", "request_ids", "c-1\nc-2"),
        ("x-request-id: abc123", "request_ids", "abc123"),
    ],
)
def test_labels_are_recognised_in_their_usual_spellings(line, field, value):
    assert parse([line]).as_initial() == {field: value}


@pytest.mark.parametrize(
    "text",
    [
        "We upgraded to version 4.2 last week.",  # a sentence, not a fact line
        "> Version: 3.9",  # quoted from an earlier mail
        "Note: the customer is upset",  # a label we do not map
        "Time: 10:30",
        "See https://status.example/incident",
        "Version: " + "x" * 150,  # too long to be a version
        "Version:",
        "",
    ],
)
def test_nothing_is_invented(text):
    assert parse([text]).as_initial() == {}


def test_a_later_message_overrides_an_earlier_one_and_request_ids_accumulate():
    found = parse(
        [
            "Version: 4.1\nRequest ID: req-1\nBrowser: Firefox",
            "Update: we upgraded.\nVersion: 4.2\nRequest ID: req-2\nrequest id: req-1",
        ]
    )
    initial = found.as_initial()
    assert initial["product_version"] == "4.2"
    assert initial["request_ids"] == "req-1\nreq-2"
    assert initial["environment"] == "Browser: Firefox"


def test_none_and_empty_texts_are_fine():
    assert parse([None, "", "\n\n"]).as_initial() == {}


# --- The form -------------------------------------------------------------------------------------


@pytest.fixture
def case_with_facts(organisation, contact, agent, now):
    case = case_services.create_case(
        title="Checkout fails with 502",
        description="Every checkout fails.\nVersion: 4.1\nEnvironment: production\nOS: Windows 11",
        organisation=organisation,
        requester=contact,
        severity="P1",
        actor=agent,
        now=now,
    )
    case_services.add_public_reply(case, body="Which browser and region?", actor=agent, now=now)
    case_services.add_customer_message(
        case,
        body="Browser: Chrome 126\nRegion: eu-west-1\nVersion: 4.2\n> Version: 4.1",
        sender=contact,
        now=now + dt.timedelta(minutes=5),
    )
    case_services.add_internal_note(case, body="Looks like the gateway.", actor=agent, now=now)
    return case


@pytestmark_db
def test_the_form_is_prefilled_from_the_case(client, agent, case_with_facts, payments):
    client.force_login(agent)
    response = client.get(reverse("escalations:create", args=[case_with_facts.key]))
    form = response.context["form"]
    assert form["summary"].value() == "Checkout fails with 502"
    assert form["tier"].value() == "enterprise"
    assert form["severity"].value() == "P1"
    assert form["product_version"].value() == "4.2"  # the customer's latest word
    assert form["region"].value() == "eu-west-1"
    assert form["tenant"].value() == "Acme Corp"  # the organisation, as the case names no tenant
    assert form["environment"].value() == "Environment: production\nOS: Windows 11\nBrowser: Chrome 126"
    html = response.content.decode()
    assert 'id="prefilled"' in html
    assert "Product version" in html.split('id="prefilled"', 1)[1].split("</p>", 1)[0]


@pytestmark_db
def test_a_case_without_facts_prefills_only_what_the_case_holds(client, agent, new_case, payments):
    client.force_login(agent)
    form = client.get(reverse("escalations:create", args=[new_case.key])).context["form"]
    assert form["product_version"].value() is None
    assert form["tenant"].value() == "Acme Corp"


@pytestmark_db
def test_the_customers_messages_and_replies_can_be_picked_for_engineering(
    client, agent, case_with_facts, payments
):
    client.force_login(agent)
    form = client.get(reverse("escalations:create", args=[case_with_facts.key])).context["form"]
    labels = [label for _, label in form.fields["attached_events"].choices]
    kinds = [label.split(" · ")[1] for label in labels]
    assert kinds == ["Public reply", "Internal note", "Customer message"]
    message = case_with_facts.events.get(kind="customer_message")
    data = {
        "team": "payments",
        "summary": "Checkout 502",
        "tier": "enterprise",
        "severity": "P1",
        "attached_events": [message.pk],
        "environment": "OS: Windows 11",
    }
    response = client.post(reverse("escalations:create", args=[case_with_facts.key]), data)
    assert response.status_code == 302
    escalation = Escalation.objects.get(case=case_with_facts)
    assert escalation.environment == "OS: Windows 11"
    assert list(escalation.attached_events.all()) == [message]
    # engineering's page shows the picked message (and only it)
    html = client.get(reverse("escalations:engineer-view", args=[escalation.pk])).content.decode()
    assert "Customer message" in html
    assert "Chrome 126" in html
    assert "OS: Windows 11" in html
    assert "Looks like the gateway." not in html


@pytestmark_db
def test_the_score_panel_is_placed_to_stay_in_view(client, agent, case_with_facts, payments):
    client.force_login(agent)
    html = client.get(reverse("escalations:create", args=[case_with_facts.key])).content.decode()
    assert 'class="esc-grid esc-form-layout"' in html
    assert "position: sticky" in html
    # the score comes first in the page (a bar on top on narrow screens), then the form
    assert html.index('id="quality"') < html.index('id="package-form"')
