"""/ops/metrics: who may read it, and that each figure is right for the data behind it."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from escalations.models import DeliveryStatus, EngineeringTeam, WebhookDelivery, WebhookSubscription
from inbound.models import InboundMessage, InboundStatus, Mailbox, MailboxMode
from sla.models import ClockState, SlaClock
from supportdesk.core import prometheus
from supportdesk.core.models import Heartbeat, OutboundMessage
from tests import factories

NOW = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC)
TOKEN = "scrape-token-0123456789abcdef"


@pytest.fixture
def token(settings):
    settings.PROMETHEUS_TOKEN = TOKEN
    return TOKEN


def scrape(client, **headers) -> dict[str, dict[tuple, float]]:
    """``{sample name: {sorted label items: value}}`` of a successful scrape."""
    response = client.get("/ops/metrics", headers={"Authorization": f"Bearer {TOKEN}", **headers})
    assert response.status_code == 200, response.content[:300]
    assert response["Content-Type"].startswith("text/plain")
    samples: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def value(samples, name: str, **labels) -> float:
    return samples[name][tuple(sorted(labels.items()))]


# --- Access -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization", [None, "Bearer wrong-token", f"Token {TOKEN}", f"Bearer {TOKEN}x", "Bearer "]
)
@pytest.mark.django_db
def test_metrics_are_refused_without_the_right_token(client, token, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    response = client.get("/ops/metrics", headers=headers)

    assert response.status_code == 403
    assert b"supportdesk_" not in response.content


@pytest.mark.django_db
def test_without_a_configured_token_no_bearer_token_is_accepted(client, settings):
    settings.PROMETHEUS_TOKEN = ""
    assert client.get("/ops/metrics", headers={"Authorization": "Bearer "}).status_code == 403
    assert client.get("/ops/metrics", headers={"Authorization": "Bearer x"}).status_code == 403


@pytest.mark.django_db
def test_metrics_are_served_with_the_token(client, token):
    samples = scrape(client)

    assert value(samples, "supportdesk_metrics_collector_up", part="sla") == 1


@pytest.mark.django_db
def test_a_scrape_with_the_token_is_answered_from_any_host_and_over_plain_http(client, token, settings):
    """Prometheus scrapes each process by its address inside the network, like the health probes."""
    settings.ALLOWED_HOSTS = ["support.example.com"]
    settings.SECURE_SSL_REDIRECT = True

    assert scrape(client, Host="10.0.0.7:8000")
    assert client.get("/ops/metrics", headers={"Host": "10.0.0.7:8000"}).status_code == 400


@pytest.mark.django_db
def test_a_superuser_may_read_the_metrics_in_the_browser_but_an_agent_may_not(client, agent, settings):
    settings.PROMETHEUS_TOKEN = ""
    client.force_login(agent)
    assert client.get("/ops/metrics").status_code == 403

    client.force_login(factories.AdminFactory(username="root"))
    response = client.get("/ops/metrics")
    assert response.status_code == 200
    assert b"supportdesk_sla_sweep_lag_seconds" in response.content


@pytest.mark.django_db
def test_only_get_and_head_are_answered(client, token):
    response = client.post("/ops/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 405


# --- Figures ------------------------------------------------------------------------------------


def _clock(*, due_in: dt.timedelta, state: str = ClockState.RUNNING, target: str = "resolution") -> SlaClock:
    now = timezone.now()
    return SlaClock.objects.create(
        case=factories.CaseFactory(),
        target=target,
        state=state,
        target_minutes=60,
        business_time=False,
        warning_ratio=0.75,
        started_at=now - dt.timedelta(hours=1),
        due_at=now + due_in,
        warn_at=now + due_in - dt.timedelta(minutes=15),
        paused_at=now if state == ClockState.PAUSED else None,
    )


@pytest.mark.django_db
def test_sweep_lag_is_how_long_the_oldest_running_clock_is_past_due(client, token):
    with time_machine.travel(NOW, tick=False):
        _clock(due_in=-dt.timedelta(seconds=90))
        _clock(due_in=-dt.timedelta(seconds=30), target="triage")
        _clock(due_in=dt.timedelta(minutes=5), target="first_response")  # not due yet
        _clock(due_in=-dt.timedelta(hours=2), state=ClockState.PAUSED)  # paused: not the sweep's
        _clock(due_in=-dt.timedelta(hours=3), state=ClockState.BREACHED)  # recorded already
        Heartbeat.objects.create(name="sla-sweep", seen_at=NOW - dt.timedelta(seconds=45))
        samples = scrape(client)

    assert value(samples, "supportdesk_sla_sweep_lag_seconds") == 90
    assert value(samples, "supportdesk_sla_sweep_last_run_age_seconds") == 45


@pytest.mark.django_db
def test_sweep_lag_grows_while_no_sweep_records_the_breach(client, token):
    with time_machine.travel(NOW, tick=False) as traveller:
        _clock(due_in=dt.timedelta(seconds=10))
        assert value(scrape(client), "supportdesk_sla_sweep_lag_seconds") == 0
        traveller.shift(dt.timedelta(seconds=100))
        assert value(scrape(client), "supportdesk_sla_sweep_lag_seconds") == 90


@pytest.mark.django_db
def test_no_sweep_yet_means_no_last_run_age(client, token):
    samples = scrape(client)

    assert "supportdesk_sla_sweep_last_run_age_seconds" not in samples
    assert value(samples, "supportdesk_sla_sweep_lag_seconds") == 0


@pytest.mark.django_db
def test_webhook_failures_and_retries_are_counted(client, token):
    team = EngineeringTeam.objects.create(name="Payments", slug="payments")
    subscription = WebhookSubscription.objects.create(team=team, url="https://hooks.example/in")

    def delivery(status: str, attempts: int) -> None:
        WebhookDelivery.objects.create(
            subscription=subscription,
            event="escalation.submitted",
            payload={},
            status=status,
            attempts=attempts,
            created_at=timezone.now(),
        )

    delivery(DeliveryStatus.FAILED, 8)
    delivery(DeliveryStatus.FAILED, 8)
    delivery(DeliveryStatus.PENDING, 2)  # failed once, waits for its next attempt
    delivery(DeliveryStatus.PENDING, 0)  # not tried yet
    delivery(DeliveryStatus.SUCCEEDED, 1)

    samples = scrape(client)

    assert value(samples, "supportdesk_webhook_deliveries_failed") == 2
    assert value(samples, "supportdesk_webhook_deliveries_retrying") == 1


@pytest.mark.django_db
def test_failed_inbound_mail_and_mailbox_polls_are_reported(client, token):
    now = timezone.now()
    imap = Mailbox.objects.create(
        name="support",
        address="help@desk.example",
        mode=MailboxMode.IMAP,
        imap_host="imap.example",
        last_polled_at=now - dt.timedelta(seconds=90),
        last_poll_error="LoginError: authentication failed",
    )
    Mailbox.objects.create(name="sales", address="sales@desk.example", mode=MailboxMode.MAILDIR)
    Mailbox.objects.create(name="hooks", address="hooks@desk.example", mode=MailboxMode.PROVIDER)
    for n, status in enumerate([InboundStatus.FAILED, InboundStatus.FAILED, InboundStatus.INGESTED]):
        InboundMessage.objects.create(
            mailbox=imap, message_id=f"<m{n}@x>", via="imap", status=status, received_at=now
        )

    with time_machine.travel(now, tick=False):
        samples = scrape(client)

    assert value(samples, "supportdesk_inbound_mails_failed") == 2
    assert value(samples, "supportdesk_inbound_mails_unprocessed") == 0
    assert value(samples, "supportdesk_mailbox_last_poll_age_seconds", mailbox="support") == 90
    assert value(samples, "supportdesk_mailbox_poll_failing", mailbox="support") == 1
    assert value(samples, "supportdesk_mailbox_poll_failing", mailbox="sales") == 0
    # A provider mailbox is not polled; a mailbox never polled has no age yet.
    assert (("mailbox", "hooks"),) not in samples["supportdesk_mailbox_poll_failing"]
    assert (("mailbox", "sales"),) not in samples["supportdesk_mailbox_last_poll_age_seconds"]


@pytest.mark.django_db
def test_without_a_redis_broker_no_queue_length_is_reported(client, token, settings):
    settings.CELERY_BROKER_URL = "memory://"
    samples = scrape(client)

    assert "supportdesk_celery_queue_length" not in samples
    assert value(samples, "supportdesk_metrics_collector_up", part="queues") == 1


@pytest.mark.django_db
def test_an_unreachable_broker_is_reported_as_a_failed_part_not_a_failed_scrape(client, token, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    samples = scrape(client)

    assert value(samples, "supportdesk_metrics_collector_up", part="queues") == 0
    assert value(samples, "supportdesk_metrics_collector_up", part="webhooks") == 1
    assert "supportdesk_sla_sweep_lag_seconds" in samples


def test_queue_names_come_from_the_settings_else_the_products_defaults(settings):
    from kombu import Queue

    settings.CELERY_TASK_QUEUES = None
    assert prometheus.queue_names() == ["sla", "mail", "webhooks", "imports", "default"]
    settings.CELERY_TASK_QUEUES = (Queue("sla"), Queue("bulk"))
    assert prometheus.queue_names() == ["sla", "bulk"]
    settings.CELERY_TASK_QUEUES = {"sla": {}, "mail": {}}
    assert prometheus.queue_names() == ["sla", "mail"]


@pytest.mark.django_db
def test_outbox_backlog_and_failures_are_counted(client, token):
    def mail(n: int, status: str) -> None:
        OutboundMessage.objects.create(
            kind="notification", to=["a@example.com"], from_email="support@example.com",
            subject="s", body="b", message_id=f"<{status}-{n}@example.com>", status=status,
            created_at=timezone.now(),
        )  # fmt: skip

    for n, status in enumerate(["queued", "queued", "retrying", "sending", "sent", "sent", "failed"]):
        mail(n, status)
    samples = scrape(client)

    assert value(samples, "supportdesk_outbox_backlog_messages") == 4
    assert value(samples, "supportdesk_outbox_failed_messages") == 1
    assert value(samples, "supportdesk_metrics_collector_up", part="outbox") == 1


@pytest.mark.django_db
def test_a_scrape_costs_the_same_few_queries_whatever_the_data(client, token, django_assert_num_queries):
    for seconds in (10, 20, 30):
        _clock(due_in=-dt.timedelta(seconds=seconds), target=f"t{seconds}")
    with django_assert_num_queries(
        6
    ):  # oldest due clock, sweep heartbeat, outbox, webhooks, inbound mails, mailboxes
        scrape(client)


@pytest.mark.django_db
def test_request_latency_is_counted_by_method_route_and_status_class(client, token):
    labels = {"method": "GET", "route": "login", "status": "2xx"}
    before = scrape(client).get("supportdesk_http_request_duration_seconds_count", {})
    before_count = before.get(tuple(sorted(labels.items())), 0)

    client.get("/login/")
    client.get("/login/")
    client.get("/no/such/page/")

    samples = scrape(client)
    assert value(samples, "supportdesk_http_request_duration_seconds_count", **labels) == before_count + 2
    assert (
        value(
            samples,
            "supportdesk_http_request_duration_seconds_count",
            method="GET",
            route="unmatched",
            status="4xx",
        )
        >= 1
    )
    assert (
        value(samples, "supportdesk_http_request_duration_seconds_bucket", le="+Inf", **labels)
        == before_count + 2
    )


@pytest.mark.django_db
@pytest.mark.django_db
def test_an_unknown_method_does_not_make_a_new_label(client):
    client.generic("BREW", "/login/")

    count = prometheus.scrape_registry().get_sample_value(
        "supportdesk_http_request_duration_seconds_count",
        {"method": "other", "route": "login", "status": "4xx"},
    )
    assert (count or 0) >= 1
