"""SLA warnings and breaches as signed webhooks, through the escalations' delivery outbox: chosen
by the subscriber, written with the record, sent after commit, signed like every delivery."""

from __future__ import annotations

import datetime as dt
from unittest import mock

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import reverse

from cases import services as case_services
from escalations import tasks
from escalations.models import DeliveryStatus, WebhookDelivery, WebhookEvent, WebhookSubscription
from escalations.states import EscalationState
from sla import services as sla_services
from sla.events import SlaWebhookEvent
from sla.models import SlaClock, SlaPolicy, Target
from sla.services import ThresholdInput
from tests.escalations.receiver import Receiver
from tests.factories import at

pytestmark = pytest.mark.django_db
SECRET = "whsec_c2xhLXdlYmhvb2tzLXRlc3Qtc2VjcmV0LTMyYnl0ZXM="
T0 = at(2026, 3, 4, 10, 0)
MIN = dt.timedelta(minutes=1)


@pytest.fixture(autouse=True)
def _local_receivers_allowed(settings):
    settings.WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.1/32"]


@pytest.fixture
def receiver():
    server = Receiver(secret=SECRET)
    yield server
    server.close()


@pytest.fixture
def enqueued():
    calls: list[str] = []
    task = tasks.deliver_webhook._get_current_object()
    with mock.patch.object(task, "delay", side_effect=lambda delivery_id: calls.append(delivery_id)):
        yield calls


@pytest.fixture
def p2_case(organisation, contact, agent):
    """Enterprise P2: first response warned at 45 min, due at 60 (24x7)."""
    return case_services.create_case(
        title="Checkout fails",
        organisation=organisation,
        requester=contact,
        severity="P2",
        assignee=agent,
        actor=agent,
        now=T0,
    )


def _sweep(at_minute: int, callbacks) -> int:
    with callbacks(execute=True):
        return sla_services.record_due_warnings_and_breaches(now=T0 + at_minute * MIN)


def test_the_sla_event_names_are_the_ones_subscribers_choose_from():
    assert WebhookEvent.SLA_WARNING == SlaWebhookEvent.WARNING == "sla.warning"
    assert WebhookEvent.SLA_BREACHED == SlaWebhookEvent.BREACHED == "sla.breached"


def test_sla_events_go_only_to_subscriptions_that_name_them(
    p2_case, payments, receiver, enqueued, django_capture_on_commit_callbacks
):
    every_escalation_event = WebhookSubscription.objects.create(team=payments, url=receiver.url)
    breaches = WebhookSubscription.objects.create(url=receiver.url, events=[WebhookEvent.SLA_BREACHED])
    both = WebhookSubscription.objects.create(
        team=payments, url=receiver.url, events=[WebhookEvent.SLA_WARNING, WebhookEvent.SLA_BREACHED]
    )
    WebhookSubscription.objects.create(url=receiver.url, events=[WebhookEvent.SLA_WARNING], active=False)
    assert _sweep(46, django_capture_on_commit_callbacks) == 1  # the first response's warning
    assert _sweep(61, django_capture_on_commit_callbacks) == 1  # and its breach
    rows = sorted(WebhookDelivery.objects.values_list("subscription_id", "event"))
    assert rows == sorted(
        [(breaches.pk, "sla.breached"), (both.pk, "sla.warning"), (both.pk, "sla.breached")]
    )
    assert not WebhookDelivery.objects.filter(subscription=every_escalation_event).exists()
    assert sorted(enqueued) == sorted(
        str(d) for d in WebhookDelivery.objects.values_list("delivery_id", flat=True)
    )
    # A second sweep adds nothing.
    assert _sweep(62, django_capture_on_commit_callbacks) == 0
    assert WebhookDelivery.objects.count() == 3


def test_a_subscription_without_a_team_must_name_an_sla_event():
    with pytest.raises(ValidationError, match="receives only SLA events"):
        WebhookSubscription(url="https://hooks.example.com/x", events=[WebhookEvent.SUBMITTED]).clean()
    with pytest.raises(ValidationError, match="Unknown events: sla.maybe"):
        WebhookSubscription(url="https://hooks.example.com/x", events=["sla.maybe"]).clean()
    WebhookSubscription(url="https://hooks.example.com/x", events=[WebhookEvent.SLA_BREACHED]).clean()
    assert str(WebhookSubscription(url="https://h.example/x")) == "SLA events → https://h.example/x"


def test_an_sla_delivery_is_signed_and_says_what_happened(
    p2_case, agent, receiver, enqueued, django_capture_on_commit_callbacks, settings
):
    WebhookSubscription.objects.create(url=receiver.url, secret=SECRET, events=[WebhookEvent.SLA_BREACHED])
    _sweep(70, django_capture_on_commit_callbacks)  # the warning was missed: recorded late, no webhook
    [delivery_id] = enqueued
    assert tasks.deliver_webhook.apply(args=[delivery_id]).get() == "succeeded"
    [request] = receiver.received
    assert request.signature_valid
    assert request.delivery_id == delivery_id
    assert request.header("X-SupportDesk-Event") == "sla.breached"
    fr = SlaClock.objects.get(case=p2_case, target=Target.FIRST_RESPONSE)
    assert request.json == {
        "delivery_id": delivery_id,
        "event": "sla.breached",
        "occurred_at": (T0 + 70 * MIN).isoformat(),
        "case": {
            "key": p2_case.key,
            "title": "Checkout fails",
            "severity": "P2",
            "status": "new",
            "organisation": "Acme Corp",
            "tier": "enterprise",
            "assignee": "alice",
            "team": None,
            "web_url": f"https://support.example/cases/{p2_case.key}/",
            "api_url": f"https://support.example/api/cases/{p2_case.key}/sla/",
        },
        "clock": {
            "id": fr.pk,
            "target": "first_response",
            "run": 1,
            "state": "breached",
            "target_minutes": 60,
            "business_time": False,
            "started_at": T0.isoformat(),
            "due_at": (T0 + 60 * MIN).isoformat(),
            "met_at": None,
        },
        "threshold": {"percent": 100, "reached_at": (T0 + 60 * MIN).isoformat(), "late": False},
    }
    assert WebhookDelivery.objects.get().status == DeliveryStatus.SUCCEEDED


def test_a_late_warning_is_announced_with_its_share_and_marked_late(
    p2_case, receiver, enqueued, django_capture_on_commit_callbacks
):
    WebhookSubscription.objects.create(url=receiver.url, events=[WebhookEvent.SLA_WARNING])
    _sweep(70, django_capture_on_commit_callbacks)
    [warning] = WebhookDelivery.objects.all()
    assert warning.payload["threshold"] == {
        "percent": 75,
        "reached_at": (T0 + 45 * MIN).isoformat(),
        "late": True,
    }


def test_a_rung_without_the_webhook_sends_none(
    organisation, contact, agent, receiver, enqueued, django_capture_on_commit_callbacks
):
    policy = SlaPolicy.objects.get(tier="enterprise", severity="P2")
    sla_services.save_ladder(
        policy,
        thresholds=[
            ThresholdInput(Target.FIRST_RESPONSE, 50, ["assignee"], webhook=False),
            ThresholdInput(Target.FIRST_RESPONSE, 90, ["managers"], webhook=True),
        ],
    )
    WebhookSubscription.objects.create(url=receiver.url, events=[WebhookEvent.SLA_WARNING])
    case_services.create_case(
        title="Slow", organisation=organisation, requester=contact, severity="P2", assignee=agent,
        actor=agent, now=T0,
    )  # fmt: skip
    _sweep(31, django_capture_on_commit_callbacks)
    assert not WebhookDelivery.objects.exists()
    _sweep(55, django_capture_on_commit_callbacks)
    assert [d.payload["threshold"]["percent"] for d in WebhookDelivery.objects.all()] == [90]


def test_a_rolled_back_sweep_leaves_no_delivery_and_sends_nothing(
    p2_case, receiver, enqueued, django_capture_on_commit_callbacks
):
    WebhookSubscription.objects.create(url=receiver.url, events=[WebhookEvent.SLA_WARNING])

    def killed_mid_sweep():
        with transaction.atomic():
            sla_services.record_due_warnings_and_breaches(now=T0 + 46 * MIN)
            assert WebhookDelivery.objects.count() == 1  # written with the record...
            raise RuntimeError("worker killed")

    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError):
        killed_mid_sweep()
    assert not WebhookDelivery.objects.exists()  # ... and gone with it
    assert enqueued == []
    assert _sweep(47, django_capture_on_commit_callbacks) == 1
    assert len(enqueued) == 1


def test_escalation_events_still_reach_a_team_subscription_that_also_names_sla_events(
    escalation_in, payments, receiver, engineer, now, enqueued, django_capture_on_commit_callbacks
):
    from escalations import services

    WebhookSubscription.objects.create(
        team=payments, url=receiver.url, events=[WebhookEvent.ACKNOWLEDGED, WebhookEvent.SLA_BREACHED]
    )
    escalation = escalation_in(EscalationState.SUBMITTED)
    with django_capture_on_commit_callbacks(execute=True):
        services.acknowledge(escalation, actor=engineer, now=now)
    assert list(WebhookDelivery.objects.values_list("event", flat=True)) == [WebhookEvent.ACKNOWLEDGED]


def test_an_admin_subscribes_a_receiver_to_sla_events_without_a_team(admin_user, client, receiver):
    client.force_login(admin_user)
    response = client.post(
        reverse("admin:escalations_webhooksubscription_add"),
        {"url": receiver.url, "secret": SECRET, "events": '["sla.warning", "sla.breached"]', "active": "on"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    subscription = WebhookSubscription.objects.get()
    assert (subscription.team, subscription.events) == (None, ["sla.warning", "sla.breached"])
    response = client.post(
        reverse("admin:escalations_webhooksubscription_add"),
        {"url": receiver.url, "secret": SECRET, "events": '["escalation.submitted"]', "active": "on"},
    )
    assert response.status_code == 200
    assert "receives only SLA events" in response.content.decode()
