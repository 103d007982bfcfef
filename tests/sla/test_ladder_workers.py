"""Acceptance (issue 19, warning ladder): a ladder of four thresholds fires once each with two
workers and two beats, on real PostgreSQL and Redis.

As tests/services/test_sla_workers.py does for the single warning: two real Celery worker
processes and two real beat schedulers (a duplicated scheduler, each sending the sweep every
second), with their own database connections. The workers' clock is the test's: time-machine in
each worker (tests/sla/ladder_worker.py) follows an instant the test moves in Redis, tick by
tick, past each rung and the breach of thirty cases. The two workers' sweeps of each instant
overlap and sweep in small batches; dozens of sweeps run at every instant. Each rung must be
recorded on the timeline and notified exactly once, every subscribed event must have exactly one
webhook delivery row, and each mail and webhook must leave exactly once (signed).

Skipped without PostgreSQL and Redis (the SQLite suite), like the rest of the service suite.
"""

from __future__ import annotations

import datetime as dt
import email
import re
import sys
from collections import Counter
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.utils import timezone

from cases import services as case_services
from cases.models import CaseEvent
from escalations.models import DeliveryStatus, WebhookDelivery, WebhookEvent, WebhookSubscription
from sla import services
from sla.health import SWEEP_HEARTBEAT
from sla.models import ClockState, DutyShift, SlaClock, SlaPolicy, Target, TeamLead
from sla.services import ThresholdInput
from supportdesk.core.models import Heartbeat, MailStatus, Notification, OutboundMessage
from tests import factories
from tests.escalations.receiver import Receiver
from tests.services.stack import Processes, purge_product_queues, service_env, wait_for

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

CASES = 30
MIN = dt.timedelta(minutes=1)
SECRET = "whsec_bGFkZGVyLWFjY2VwdGFuY2UtdGVzdC1zZWNyZXQtMzI="
FR = Target.FIRST_RESPONSE
CLOCK_KEY = "tests:sla-ladder:clock"
# Enterprise P2's first response: 60 minutes, 24x7.
LADDER = [
    ThresholdInput(FR, 50, ["assignee"]),
    ThresholdInput(FR, 75, ["team_lead"]),
    ThresholdInput(FR, 90, ["managers"]),
    ThresholdInput(FR, 100, ["duty_manager"]),
]
#: The instants the test moves the workers' clock to, in minutes after the cases opened: past each
#: rung and the breach, with instants between and after at which nothing may be recorded again.
TICKS = (31, 40, 46, 50, 55, 58, 61, 62, 75)


def _worker(name: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "tests.sla.ladder_worker",
        "--pool=solo",
        "--loglevel=INFO",
        "--without-mingle",
        "--without-gossip",
        "--without-heartbeat",
        "-n",
        f"{name}@%h",
    ]


BEAT = ["celery", "-A", "supportdesk", "beat", "--loglevel=INFO"]


def _env(var_dir: Path, **extra: str) -> dict[str, str]:
    var_dir.mkdir(parents=True, exist_ok=True)
    return service_env(
        var_dir,
        DJANGO_SETTINGS_MODULE="tests.sla.worker_settings",
        SLA_SWEEP_SECONDS="1",
        HEARTBEAT_SECONDS="1",
        EMAIL_BACKEND="django.core.mail.backends.filebased.EmailBackend",
        DATABASE_CONN_MAX_AGE="0",
        WEBHOOK_ALLOWED_NETWORKS="127.0.0.1/32",
        LADDER_CLOCK_KEY=CLOCK_KEY,
        LADDER_BATCH="4",
        **extra,
    )


def _forget_the_clock(client: redis.Redis) -> None:
    for name in client.scan_iter(f"{CLOCK_KEY}*"):
        client.delete(name)


@pytest.fixture
def broker():
    """Redis, with the controlled clock and the sweeps' records of no earlier run."""
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    purge_product_queues()
    _forget_the_clock(client)
    yield client
    _forget_the_clock(client)


@pytest.fixture
def processes(tmp_path, broker):
    """The worker and beat processes, stopped before the broker fixture forgets the clock."""
    procs = Processes(tmp_path)
    try:
        yield procs
    finally:
        procs.stop_all()
        purge_product_queues()


@pytest.fixture
def receiver():
    server = Receiver(secret=SECRET)
    yield server
    server.close()


def _mail_keys(mail_dir: Path) -> Counter:
    """X-SupportDesk-Notification of every message the workers' file backend wrote."""
    found: Counter = Counter()
    for path in mail_dir.iterdir() if mail_dir.exists() else ():
        for chunk in re.split(r"\n-{79}\n", path.read_text(errors="replace")):
            if chunk.strip():
                key = email.message_from_string(chunk.strip()).get("X-SupportDesk-Notification")
                if key:
                    found[key] += 1
    return found


def test_a_ladder_of_four_thresholds_fires_once_each_with_two_workers_and_two_beats(
    processes, broker, receiver, tmp_path, organisation, contact, agent, manager
):
    team = factories.TeamFactory(name="Tier 2", slug="tier-2")
    team.members.add(agent)
    TeamLead.objects.create(team=team, user=factories.AgentFactory(username="lena"))
    dora = factories.ManagerFactory(username="dora")
    everything = WebhookSubscription.objects.create(
        url=receiver.url, secret=SECRET, events=[WebhookEvent.SLA_WARNING, WebhookEvent.SLA_BREACHED]
    )
    breaches_only = WebhookSubscription.objects.create(
        url=receiver.url, secret=SECRET, events=[WebhookEvent.SLA_BREACHED]
    )
    services.save_ladder(SlaPolicy.objects.get(tier="enterprise", severity="P2"), thresholds=LADDER)
    # The controlled clock runs in the past: beat's real-time schedule (and its messages' expiry)
    # is always ahead of it.
    t0 = timezone.now().replace(second=0, microsecond=0) - 3 * 60 * MIN
    DutyShift.objects.create(user=dora, starts_at=t0, ends_at=t0 + 8 * 60 * MIN)
    broker.set(CLOCK_KEY, t0.isoformat())

    workers_dir = tmp_path / "workers"
    processes.start("worker1", _worker("ladder-w1"), _env(workers_dir, LADDER_WORKER="w1"))
    processes.start("worker2", _worker("ladder-w2"), _env(workers_dir, LADDER_WORKER="w2"))
    processes.start("beat1", BEAT, _env(tmp_path / "beat1"))
    processes.start("beat2", BEAT, _env(tmp_path / "beat2"))
    cases = [
        case_services.create_case(
            title=f"Checkout fails for tenant {i}",
            organisation=organisation,
            requester=contact,
            severity="P2",
            assignee=agent,
            team=team,
            actor=agent,
            now=t0,
        )
        for i in range(CASES)
    ]
    wait_for(
        lambda: (
            len({line.split(b":")[0] for line in broker.lrange(f"{CLOCK_KEY}:done:{t0.isoformat()}", 0, -1)})
            == 2
        ),
        timeout=120,
        what="both workers to sweep at the start instant",
        processes=processes,
    )

    sweeps: dict[str, list[str]] = {}
    for minute in TICKS:
        now = t0 + minute * MIN
        instant = now.isoformat()
        broker.set(CLOCK_KEY, instant)
        done = f"{CLOCK_KEY}:done:{instant}"

        def swept(done=done, now=now) -> bool:
            # Both workers finished a sweep of this instant, and nothing due at it is unrecorded.
            finished = {line.split(b":")[0] for line in broker.lrange(done, 0, -1)}
            return (
                finished == {b"w1", b"w2"}
                and not services.due_clocks(now=now, phase=services.BREACH).exists()
                and not services.due_clocks(now=now, phase=services.WARNING).exists()
            )

        wait_for(swept, timeout=60, what=f"the sweeps at {instant}", processes=processes)
        sweeps[instant] = [line.decode() for line in broker.lrange(done, 0, -1)]

    # At every instant both workers swept, their first sweeps together.
    for instant, lines in sweeps.items():
        assert {line.split(":")[0] for line in lines} == {"w1", "w2"}, (instant, lines)
        assert all(line.endswith(":met") for line in lines[:2]), (instant, lines)

    # --- The timeline: each rung once per case, none late ----------------------------------------------
    events = CaseEvent.objects.filter(case__in=cases, kind__in=["sla_warning", "sla_breached"])
    rungs = (("sla_warning", 50), ("sla_warning", 75), ("sla_warning", 90), ("sla_breached", 100))
    assert Counter((e.case_id, e.kind, e.new_value["percent"]) for e in events) == Counter(
        {(c.pk, kind, percent): 1 for c in cases for kind, percent in rungs}
    )
    assert not any(e.new_value.get("late") for e in events)
    clocks = SlaClock.objects.filter(case__in=cases, target=FR)
    assert set(clocks.values_list("state", flat=True)) == {ClockState.BREACHED}

    # --- Notified once each, to the rung's people as they were when it fired --------------------------
    notes = Counter(
        (key.rsplit(":", 1)[1], user)
        for key, user in Notification.objects.filter(dedupe_key__startswith="sla:").values_list(
            "dedupe_key", "recipient__username"
        )
    )
    assert notes == Counter(
        {
            ("warning", "alice"): CASES,
            ("warning-75", "lena"): CASES,
            ("warning-90", "maria"): CASES,  # "the managers": every active manager
            ("warning-90", "dora"): CASES,
            ("breach", "dora"): CASES,  # the duty manager
        }
    )
    expected_mail_keys = {
        f"sla:{clk.pk}:{part}" for clk in clocks for part in ("warning", "warning-75", "warning-90", "breach")
    }
    assert set(OutboundMessage.objects.values_list("dedupe_key", flat=True)) == expected_mail_keys

    # --- One delivery row per subscribed event ------------------------------------------------------
    per_event = Counter(
        (d.subscription_id, d.event, d.payload["case"]["key"], d.payload["threshold"]["percent"])
        for d in WebhookDelivery.objects.all()
    )
    assert per_event == Counter(
        {(everything.pk, "sla.warning", c.key, p): 1 for c in cases for p in (50, 75, 90)}
        | {(sub.pk, "sla.breached", c.key, 100): 1 for c in cases for sub in (everything, breaches_only)}
    )

    # --- And each mail and webhook leaves once ---------------------------------------------------------
    wait_for(
        lambda: (
            not OutboundMessage.objects.exclude(status=MailStatus.SENT).exists()
            and not WebhookDelivery.objects.exclude(status=DeliveryStatus.SUCCEEDED).exists()
        ),
        timeout=120,
        what="every SLA e-mail and webhook to be sent",
        processes=processes,
    )
    mails = _mail_keys(workers_dir / "mail")
    assert set(mails) == expected_mail_keys
    assert set(mails.values()) == {1}, "every SLA e-mail is sent exactly once"
    assert len(receiver.received) == 5 * CASES
    assert all(request.signature_valid for request in receiver.received)
    assert receiver.duplicates == []
    assert {r.header("X-SupportDesk-Event") for r in receiver.received} == {"sla.warning", "sla.breached"}
    # The workers swept at the test's clock, not their own.
    assert Heartbeat.objects.get(name=SWEEP_HEARTBEAT).seen_at == t0 + TICKS[-1] * MIN
    # Every claim counted once across both workers and all their sweeps: four per case.
    instants = [t0, *(t0 + minute * MIN for minute in TICKS)]
    finished = [
        line.decode()
        for at in instants
        for line in broker.lrange(f"{CLOCK_KEY}:done:{at.isoformat()}", 0, -1)
    ]
    assert sum(int(line.split(":")[1]) for line in finished) == 4 * CASES
