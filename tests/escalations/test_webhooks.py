"""Signed webhooks: written with the change, sent only after commit, retried with backoff, recorded,
at least once under one delivery id. A real HTTP server on 127.0.0.1 plays the receiver."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import socket
import threading
from unittest import mock

import pytest
import time_machine
from celery.exceptions import Retry
from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import reverse

from escalations import services, tasks, webhooks
from escalations.models import DeliveryStatus, WebhookDelivery, WebhookEvent, WebhookSubscription
from escalations.states import EscalationState
from tests.escalations.receiver import Receiver

S = EscalationState
pytestmark = pytest.mark.django_db
SECRET = "s3cret-shared-with-engineering"


@pytest.fixture(autouse=True)
def _local_receivers_allowed(settings):
    """The receiver runs on 127.0.0.1, which webhooks may reach only when the operator allows it
    (tests/security/test_ssrf.py covers the refusal)."""
    settings.WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.1/32"]


@pytest.fixture
def receiver():
    server = Receiver(secret=SECRET)
    yield server
    server.close()


@pytest.fixture
def subscription(payments, receiver):
    return WebhookSubscription.objects.create(team=payments, url=receiver.url, secret=SECRET)


@pytest.fixture
def enqueued():
    """The ids handed to Celery (``deliver_webhook.delay``), instead of a broker."""
    calls: list[str] = []
    task = tasks.deliver_webhook._get_current_object()
    with mock.patch.object(task, "delay", side_effect=lambda delivery_id: calls.append(delivery_id)):
        yield calls


def _submit(draft, agent, now, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        return services.submit(draft, actor=agent, now=now)


def _only_delivery() -> WebhookDelivery:
    return WebhookDelivery.objects.get()


# --- Writing and enqueueing ----------------------------------------------------------------------


def test_an_event_is_enqueued_only_after_the_transaction_commits(
    draft, agent, subscription, enqueued, now, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.submit(draft, actor=agent, now=now)
    delivery = _only_delivery()
    assert delivery.status == DeliveryStatus.PENDING
    assert enqueued == []  # nothing left the process before commit
    for callback in callbacks:
        callback()
    assert enqueued == [str(delivery.delivery_id)]


def test_a_rolled_back_change_sends_nothing(
    draft, agent, subscription, enqueued, now, django_capture_on_commit_callbacks
):
    def submit_then_fail():
        with transaction.atomic():
            services.submit(draft, actor=agent, now=now)
            raise RuntimeError("the request failed after the submit")

    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError):
        submit_then_fail()
    assert not WebhookDelivery.objects.exists()
    assert enqueued == []


def test_each_event_is_one_delivery_with_its_own_id(
    escalation_in, subscription, engineer, enqueued, now, django_capture_on_commit_callbacks
):
    escalation = escalation_in(S.SUBMITTED)
    with django_capture_on_commit_callbacks(execute=True):
        services.acknowledge(escalation, actor=engineer, now=now)
    deliveries = list(WebhookDelivery.objects.order_by("id"))
    assert [d.event for d in deliveries] == [WebhookEvent.SUBMITTED, WebhookEvent.ACKNOWLEDGED]
    assert len({d.delivery_id for d in deliveries}) == 2
    assert [d.payload["delivery_id"] for d in deliveries] == [str(d.delivery_id) for d in deliveries]


def test_a_subscription_gets_only_the_events_it_asked_for(
    escalation_in, payments, receiver, engineer, now, enqueued, django_capture_on_commit_callbacks
):
    WebhookSubscription.objects.create(team=payments, url=receiver.url, events=[WebhookEvent.RESOLVED])
    WebhookSubscription.objects.create(team=payments, url=receiver.url, active=False)
    escalation = escalation_in(S.IN_PROGRESS)
    with django_capture_on_commit_callbacks(execute=True):
        services.resolve(escalation, resolution="Fixed", actor=engineer, now=now)
    assert list(WebhookDelivery.objects.values_list("event", flat=True)) == [WebhookEvent.RESOLVED]


def test_other_teams_subscriptions_are_not_told(
    draft, agent, identity, receiver, enqueued, now, django_capture_on_commit_callbacks
):
    WebhookSubscription.objects.create(team=identity, url=receiver.url)
    _submit(draft, agent, now, django_capture_on_commit_callbacks)
    assert not WebhookDelivery.objects.exists()


def test_a_broker_outage_leaves_the_delivery_pending(
    draft, agent, subscription, now, django_capture_on_commit_callbacks
):
    task = tasks.deliver_webhook._get_current_object()
    with mock.patch.object(task, "delay", side_effect=ConnectionError("broker down")):
        escalation = _submit(draft, agent, now, django_capture_on_commit_callbacks)
    assert escalation.state == S.SUBMITTED
    assert _only_delivery().status == DeliveryStatus.PENDING


# --- Sending and signing -------------------------------------------------------------------------


def test_a_delivery_is_signed_and_the_receiver_verifies_it(
    draft, agent, subscription, receiver, enqueued, now, django_capture_on_commit_callbacks
):
    _submit(draft, agent, now, django_capture_on_commit_callbacks)
    [delivery_id] = enqueued
    assert tasks.deliver_webhook.apply(args=[delivery_id]).get() == "succeeded"
    [request] = receiver.received
    assert request.signature_valid
    assert request.header("webhook-signature").startswith("v1,")
    assert request.delivery_id == delivery_id
    assert request.header("X-SupportDesk-Event") == "escalation.submitted"
    assert request.header("Content-Type") == "application/json"
    assert abs(int(request.header("webhook-timestamp")) - int(now.timestamp())) < 60
    body = request.json
    assert body["delivery_id"] == delivery_id
    assert body["event"] == "escalation.submitted"
    assert body["escalation"]["key"] == draft.key
    assert body["escalation"]["case"] == draft.case.key
    assert body["escalation"]["api_url"] == f"https://support.example/api/escalations/{draft.pk}/"
    assert body["escalation"]["web_url"] == f"https://support.example/escalations/{draft.pk}/view/"
    delivery = _only_delivery()
    assert delivery.status == DeliveryStatus.SUCCEEDED
    assert (delivery.attempts, delivery.last_status_code, delivery.last_error) == (1, 200, "")
    assert delivery.delivered_at is not None


def test_a_receiver_with_another_secret_rejects_the_signature(
    draft, agent, payments, receiver, enqueued, now, django_capture_on_commit_callbacks
):
    WebhookSubscription.objects.create(team=payments, url=receiver.url, secret="not-the-receivers-secret")
    _submit(draft, agent, now, django_capture_on_commit_callbacks)
    outcome = services.attempt_delivery(delivery_id=enqueued[0], now=now)
    assert outcome.status == "retrying"
    assert receiver.received[0].signature_valid is False
    assert _only_delivery().last_error == "HTTP 401"


def test_the_signature_covers_id_timestamp_and_body_and_expires():
    secret = "whsec_" + base64.b64encode(b"k" * 32).decode()
    body = json.dumps({"a": 1}).encode()
    sent_at = dt.datetime(2026, 12, 3, 9, 0, tzinfo=dt.UTC)
    stamp = int(sent_at.timestamp())

    def headers(**changes):
        values = {
            "webhook-id": "d-1",
            "webhook-timestamp": str(stamp),
            "webhook-signature": webhooks.sign(delivery_id="d-1", timestamp=stamp, body=body, secret=secret),
        }
        return {**values, **changes}

    # The scheme's own arithmetic, computed here by hand.
    expected = hmac.new(b"k" * 32, f"d-1.{stamp}.".encode() + body, hashlib.sha256).digest()
    assert headers()["webhook-signature"] == "v1," + base64.b64encode(expected).decode()
    with time_machine.travel(sent_at + dt.timedelta(minutes=1), tick=False):
        assert webhooks.verify(body, secret, headers())
        assert not webhooks.verify(body + b" ", secret, headers())
        assert not webhooks.verify(body, "whsec_" + base64.b64encode(b"x" * 32).decode(), headers())
        assert not webhooks.verify(body, secret, headers(**{"webhook-id": "d-2"}))
        # Replaying the request with a fresh timestamp breaks the signature.
        assert not webhooks.verify(body, secret, headers(**{"webhook-timestamp": str(stamp + 60)}))
        assert not webhooks.verify(body, secret, {"webhook-id": "d-1"})
    # A replay of the very same request later than the tolerance window is refused.
    with time_machine.travel(sent_at + dt.timedelta(minutes=6), tick=False):
        assert not webhooks.verify(body, secret, headers())


def test_a_new_subscription_gets_a_standard_webhooks_secret(payments):
    subscription = WebhookSubscription.objects.create(team=payments, url="https://hooks.example.com/x")
    assert subscription.secret.startswith("whsec_")
    assert len(base64.b64decode(subscription.secret[len("whsec_") :])) == 32


# --- Failures, retries and backoff --------------------------------------------------------------


def test_a_failing_receiver_is_retried_until_it_accepts(
    draft, agent, subscription, receiver, enqueued, now, django_capture_on_commit_callbacks
):
    receiver.statuses = [500, 503, 502]
    _submit(draft, agent, now, django_capture_on_commit_callbacks)
    result = tasks.deliver_webhook.apply(args=[enqueued[0]])  # runs the retries eagerly
    assert result.get() == "succeeded"
    assert len(receiver.received) == 4
    assert {r.delivery_id for r in receiver.received} == {enqueued[0]}
    assert all(r.signature_valid for r in receiver.received)
    assert len({r.body for r in receiver.received}) == 1  # the same bytes every time
    delivery = _only_delivery()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == (
        DeliveryStatus.SUCCEEDED,
        4,
        200,
    )


def test_a_receiver_that_never_accepts_fails_for_good_after_eight_attempts(
    draft, agent, subscription, receiver, enqueued, now, django_capture_on_commit_callbacks
):
    receiver.statuses = [500] * 20
    _submit(draft, agent, now, django_capture_on_commit_callbacks)
    assert tasks.deliver_webhook.apply(args=[enqueued[0]]).get() == "failed"
    assert len(receiver.received) == services.MAX_ATTEMPTS == 8
    delivery = _only_delivery()
    assert delivery.status == DeliveryStatus.FAILED
    assert (delivery.attempts, delivery.last_status_code, delivery.last_error) == (8, 500, "HTTP 500")
    assert delivery.next_attempt_at is None


def test_each_failure_is_recorded_with_an_exponential_backoff(
    draft, agent, subscription, receiver, enqueued, django_capture_on_commit_callbacks
):
    receiver.statuses = [500, 500, 500]
    start = dt.datetime(2025, 5, 6, 10, 0, tzinfo=dt.UTC)
    task = tasks.deliver_webhook._get_current_object()
    with time_machine.travel(start, tick=False):
        _submit(draft, agent, start, django_capture_on_commit_callbacks)
        with mock.patch.object(task, "retry", wraps=task.retry) as retry, pytest.raises(Retry):
            tasks.deliver_webhook(enqueued[0])  # called directly: asks Celery to retry
        assert retry.call_args.kwargs["countdown"] == 30
        delivery = _only_delivery()
        assert delivery.attempts == 1
        assert delivery.status == DeliveryStatus.PENDING
        assert delivery.next_attempt_at == start + dt.timedelta(seconds=30)
        assert delivery.last_error == "HTTP 500"
    with time_machine.travel(start + dt.timedelta(seconds=30), tick=False):
        with mock.patch.object(task, "retry", wraps=task.retry) as retry, pytest.raises(Retry):
            tasks.deliver_webhook(enqueued[0])
        assert retry.call_args.kwargs["countdown"] == 60
        delivery.refresh_from_db()
        assert delivery.attempts == 2
        assert delivery.next_attempt_at == start + dt.timedelta(seconds=90)
    assert services.backoff(7) == dt.timedelta(seconds=1920)
    assert services.backoff(12) == dt.timedelta(hours=1)


def test_a_receiver_that_does_not_answer_in_time_is_a_failed_attempt(
    draft, agent, subscription, receiver, enqueued, now, settings, django_capture_on_commit_callbacks
):
    settings.ESCALATION_WEBHOOK_TIMEOUT = 0.3
    receiver.hold = threading.Event()  # the receiver waits until the test lets it go
    _submit(draft, agent, now, django_capture_on_commit_callbacks)
    outcome = services.attempt_delivery(delivery_id=enqueued[0], now=now)
    receiver.hold.set()
    assert outcome.status == "retrying"
    delivery = _only_delivery()
    assert delivery.last_error == "Timed out after 0.3 s"
    assert delivery.last_status_code is None
    assert delivery.locked_until is None


def test_an_unreachable_receiver_is_a_failed_attempt(
    draft, agent, payments, enqueued, now, django_capture_on_commit_callbacks
):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    WebhookSubscription.objects.create(team=payments, url=f"http://127.0.0.1:{port}/hook", secret=SECRET)
    _submit(draft, agent, now, django_capture_on_commit_callbacks)
    assert services.attempt_delivery(delivery_id=enqueued[0], now=now).status == "retrying"
    assert "refused" in _only_delivery().last_error.lower()


def test_a_redirect_is_not_followed(
    draft, agent, subscription, receiver, enqueued, now, django_capture_on_commit_callbacks
):
    receiver.statuses = [302]
    _submit(draft, agent, now, django_capture_on_commit_callbacks)
    services.attempt_delivery(delivery_id=enqueued[0], now=now)
    assert len(receiver.received) == 1
    delivery = _only_delivery()
    assert (delivery.last_status_code, delivery.last_error) == (302, "HTTP 302")


def test_a_deactivated_subscription_stops_its_pending_deliveries(
    draft, agent, subscription, receiver, enqueued, now, django_capture_on_commit_callbacks
):
    _submit(draft, agent, now, django_capture_on_commit_callbacks)
    subscription.active = False
    subscription.save()
    assert services.attempt_delivery(delivery_id=enqueued[0], now=now).status == "failed"
    assert receiver.received == []


# --- At least once, exactly one id --------------------------------------------------------------


def test_a_delivery_already_sent_is_not_sent_again(
    draft, agent, subscription, receiver, enqueued, now, django_capture_on_commit_callbacks
):
    _submit(draft, agent, now, django_capture_on_commit_callbacks)
    assert services.attempt_delivery(delivery_id=enqueued[0], now=now).status == "succeeded"
    assert services.attempt_delivery(delivery_id=enqueued[0], now=now).status == "skipped"
    assert tasks.deliver_webhook.apply(args=[enqueued[0]]).get() == "skipped"
    assert len(receiver.received) == 1
    assert _only_delivery().attempts == 1


def test_a_worker_lost_after_sending_means_a_second_send_the_receiver_recognises(
    draft, agent, subscription, receiver, enqueued, django_capture_on_commit_callbacks
):
    start = dt.datetime(2025, 5, 6, 10, 0, tzinfo=dt.UTC)
    _submit(draft, agent, start, django_capture_on_commit_callbacks)
    # The first worker sends, then dies before recording the outcome.
    with (
        mock.patch.object(services, "record_attempt", side_effect=SystemExit("worker killed")),
        pytest.raises(SystemExit),
    ):
        services.attempt_delivery(delivery_id=enqueued[0], now=start)
    assert len(receiver.received) == 1
    # While its claim holds, no other worker sends it.
    later = start + dt.timedelta(seconds=10)
    assert services.attempt_delivery(delivery_id=enqueued[0], now=later).status == "skipped"
    # Once the claim expires the delivery goes out again, under the same id: the receiver can tell.
    after_lock = start + dt.timedelta(seconds=services.LOCK_SECONDS + 1)
    assert services.attempt_delivery(delivery_id=enqueued[0], now=after_lock).status == "succeeded"
    assert [r.delivery_id for r in receiver.received] == [enqueued[0], enqueued[0]]
    assert receiver.duplicates == [enqueued[0]]
    assert _only_delivery().attempts == 2


def test_two_workers_racing_for_one_delivery_send_it_once(
    draft, agent, subscription, receiver, enqueued, now, django_capture_on_commit_callbacks
):
    receiver.hold = threading.Event()
    _submit(draft, agent, now, django_capture_on_commit_callbacks)
    first_claimed = WebhookDelivery.objects.filter(delivery_id=enqueued[0]).update(
        locked_until=now + dt.timedelta(seconds=services.LOCK_SECONDS)
    )
    assert first_claimed == 1  # worker one holds it (as attempt_delivery's claim does)
    assert services.attempt_delivery(delivery_id=enqueued[0], now=now).status == "skipped"
    assert receiver.received == []


# --- Lost tasks, admin retry --------------------------------------------------------------------


def test_the_sweep_enqueues_a_lost_delivery_once(
    draft, agent, subscription, enqueued, django_capture_on_commit_callbacks
):
    start = dt.datetime(2025, 5, 6, 10, 0, tzinfo=dt.UTC)
    task = tasks.deliver_webhook._get_current_object()
    with mock.patch.object(task, "delay", side_effect=ConnectionError("broker down")):
        _submit(draft, agent, start, django_capture_on_commit_callbacks)
    with time_machine.travel(start + dt.timedelta(minutes=1), tick=False):
        assert tasks.redeliver_due() == 0  # not late yet
    with time_machine.travel(start + dt.timedelta(minutes=6), tick=False):
        assert tasks.redeliver_due() == 1
        assert tasks.redeliver_due() == 0  # run twice: the second changes nothing
    assert enqueued == [str(_only_delivery().delivery_id)]


def test_admins_see_deliveries_and_can_send_a_failed_one_again(
    client,
    admin_user,
    draft,
    agent,
    subscription,
    receiver,
    enqueued,
    now,
    django_capture_on_commit_callbacks,
):
    receiver.statuses = [500] * 8
    _submit(draft, agent, now, django_capture_on_commit_callbacks)
    tasks.deliver_webhook.apply(args=[enqueued[0]])
    delivery = _only_delivery()
    assert delivery.status == DeliveryStatus.FAILED
    client.force_login(admin_user)
    page = client.get(reverse("admin:escalations_webhookdelivery_changelist"))
    assert page.status_code == 200
    assert str(delivery.delivery_id) in page.content.decode()
    detail = client.get(reverse("admin:escalations_webhookdelivery_change", args=[delivery.pk]))
    assert detail.status_code == 200
    assert "HTTP 500" in detail.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("admin:escalations_webhookdelivery_changelist"),
            {"action": "retry", "_selected_action": [delivery.pk]},
        )
    assert response.status_code == 302
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.PENDING, 0)
    assert enqueued == [enqueued[0], str(delivery.delivery_id)]
    assert tasks.deliver_webhook.apply(args=[enqueued[-1]]).get() == "succeeded"
    assert receiver.received[-1].delivery_id == str(delivery.delivery_id)


def test_agents_cannot_open_the_delivery_admin(client, agent):
    client.force_login(agent)
    response = client.get(reverse("admin:escalations_webhookdelivery_changelist"))
    assert response.status_code == 302  # to the admin login


# --- Outbound URLs -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "ftp://files.example/hook",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "http://",
        "https://user:pw@h.example/",
    ],
)
def test_only_http_and_https_urls_can_be_subscribed(payments, url):
    subscription = WebhookSubscription(team=payments, url=url)
    with pytest.raises(ValidationError) as info:
        subscription.full_clean()
    assert "url" in info.value.message_dict


def test_a_stored_non_http_url_is_never_requested():
    result = webhooks.post(
        url="file:///etc/passwd", body=b"{}", secret="k", delivery_id="d", event="e", timestamp=0
    )
    assert not result.ok
    assert result.status_code is None
    assert "http" in result.error
