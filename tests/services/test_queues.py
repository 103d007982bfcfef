"""SLA work never waits behind an import: the compose file's workers (worker-sla, worker,
worker-imports) and beat on real PostgreSQL and Redis, with a history import of a generated
ServiceNow export occupying the imports worker and a burst of tasks queued for the others. A
first-response clock that becomes due is breached by beat's sweep within a few sweep intervals,
while the import is still running and a second import still waits for the busy imports worker.

The clock's target is minutes, so the test moves its ``warn_at``/``due_at`` a second ahead in the
database instead of waiting for the real target.
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from pathlib import Path

import pytest
from django.utils import timezone

from bench.bench_import import write_servicenow
from cases import services as case_services
from escalations.models import DeliveryStatus, EngineeringTeam, WebhookDelivery, WebhookSubscription
from escalations.tasks import deliver_webhook
from imports import services as import_services
from imports.mapping import default_mapping_text
from imports.models import ImportJob, JobStatus
from imports.tasks import run_import
from sla.models import ClockState, SlaClock, Target
from supportdesk.celery import app as celery_app
from supportdesk.core.models import Heartbeat, WorkerPing
from supportdesk.core.tasks import ping
from tests.escalations.receiver import Receiver

from .stack import compose_command, service_env, wait_for, worker_services

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

SWEEP_SECONDS = 2
#: Rows of the generated export: an import of a minute or more on a busy two-core machine.
IMPORT_ROWS = 400_000
#: Webhook deliveries in the burst: the general worker (4 processes) holds 4 at a time.
WEBHOOKS = 40
PINGS = 500
SMALL_EXPORT = Path(__file__).resolve().parents[1] / "imports" / "data" / "servicenow.csv"


@pytest.fixture
def receiver():
    server = Receiver(secret="s3cret-shared-with-engineering", hold=threading.Event())
    yield server
    server.close()


@pytest.fixture(scope="module")
def big_export(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("export") / "incidents.csv"
    write_servicenow(path, IMPORT_ROWS, seed=7, first=0)
    return path


def _queued(queue: str) -> int:
    with celery_app.connection_for_write() as conn:
        return conn.default_channel.queue_declare(queue=queue, passive=True).message_count


def _nodes_answering(*names: str) -> bool:
    replies = celery_app.control.ping(timeout=1.0) or []
    return set(names) <= {host.split("@")[0] for reply in replies for host in reply}


def _import_job(path: Path) -> ImportJob:
    return import_services.create_job(
        format="servicenow-csv",
        mapping_text=default_mapping_text("servicenow-csv"),
        mapping_name="default",
        now=timezone.now(),
        path=str(path),
        time_zone="Europe/Berlin",
    )


def test_sla_sweep_breaches_on_time_while_an_import_runs_and_other_queues_are_busy(
    processes, receiver, tmp_path, big_export, organisation, contact, agent
):
    env = service_env(
        tmp_path,
        SLA_SWEEP_SECONDS=str(SWEEP_SECONDS),
        HEARTBEAT_SECONDS="1",
        DATABASE_CONN_MAX_AGE="0",
        # The receiver listens on 127.0.0.1, which webhooks reach only when the operator allows it.
        WEBHOOK_ALLOWED_NETWORKS="127.0.0.1/32",
    )
    workers = worker_services()
    assert {"worker-sla", "worker", "worker-imports"} <= set(workers)
    for name in workers:
        processes.start(name, compose_command(name), env)
    processes.start("beat", compose_command("beat"), env)
    wait_for(
        lambda: _nodes_answering("sla", "worker", "imports"),
        timeout=90,
        what="the three workers",
        processes=processes,
    )

    # --- The imports worker is busy with a long import; a second import waits behind it ----------
    long_import = _import_job(big_export)
    run_import.delay(long_import.pk)
    writing = ImportJob.objects.filter(pk=long_import.pk, status=JobStatus.RUNNING, rows_read__gt=0)
    wait_for(
        writing.exists,
        timeout=120,
        what="the long import to be writing",
        processes=processes,
    )
    waiting_import = _import_job(SMALL_EXPORT)
    run_import.delay(waiting_import.pk)

    # --- A burst for the other lanes: webhook deliveries to a receiver that holds each request (the
    # general worker's processes all wait on it) and pings (default) queued behind them --------------
    team = EngineeringTeam.objects.create(name="Payments", slug="payments", components="checkout-api")
    subscription = WebhookSubscription.objects.create(team=team, url=receiver.url, secret=receiver.secret)
    now = timezone.now()
    deliveries = WebhookDelivery.objects.bulk_create(
        WebhookDelivery(subscription=subscription, event="escalation.submitted", payload={}, created_at=now)
        for _ in range(WEBHOOKS)
    )
    for delivery in deliveries:
        deliver_webhook.delay(str(delivery.delivery_id))
    nonces = [uuid.uuid4().hex for _ in range(PINGS)]
    WorkerPing.objects.bulk_create(WorkerPing(nonce=n, sent_at=timezone.now()) for n in nonces)
    for nonce in nonces:
        ping.delay(nonce)
    wait_for(lambda: receiver.received, timeout=60, what="the first webhook request", processes=processes)

    # --- A first response becomes due now --------------------------------------------------------------
    case = case_services.create_case(
        title="Checkout down",
        organisation=organisation,
        requester=contact,
        severity="P1",
        assignee=agent,
        actor=agent,
        now=timezone.now(),
    )
    clock = SlaClock.objects.filter(case=case, target=Target.FIRST_RESPONSE)
    due_at = timezone.now() + dt.timedelta(seconds=1)
    assert clock.update(warn_at=due_at - dt.timedelta(seconds=1), due_at=due_at) == 1

    wait_for(
        lambda: clock.filter(state=ClockState.BREACHED).exists(),
        timeout=6 * SWEEP_SECONDS + 10,
        what="the sweep to record the breach",
        processes=processes,
    )
    # What the lanes looked like when the breach was recorded: the import still running, the second
    # import still queued (its worker really was occupied), the general worker busy with the burst.
    long_status = ImportJob.objects.get(pk=long_import.pk)
    waiting_status = ImportJob.objects.get(pk=waiting_import.pk).status
    imports_queued = _queued("imports")
    webhooks_received = len(receiver.received)
    pings_left = WorkerPing.objects.filter(nonce__in=nonces, executed_at__isnull=True).count()
    receiver.hold.set()  # the receiver answers from now on

    breached_at = clock.get().breached_at
    assert breached_at - due_at < dt.timedelta(seconds=3 * SWEEP_SECONDS), (breached_at, due_at)
    assert (long_status.status, long_status.finished_at) == (JobStatus.RUNNING, None), "import ended first"
    assert long_status.rows_read < IMPORT_ROWS
    assert (waiting_status, imports_queued) == (JobStatus.QUEUED, 1)
    assert 0 < webhooks_received < WEBHOOKS, "the general worker was busy with webhooks"
    assert pings_left > 0, "pings waited behind them"

    # The other lanes are served too, only later: the general worker works off the burst.
    wait_for(
        lambda: (
            not WorkerPing.objects.filter(nonce__in=nonces, executed_at__isnull=True).exists()
            and not WebhookDelivery.objects.exclude(status=DeliveryStatus.SUCCEEDED).exists()
        ),
        timeout=240,
        what="the general worker to work off the burst",
        processes=processes,
    )
    served_by = set(WorkerPing.objects.filter(nonce__in=nonces).values_list("worker", flat=True))
    assert {host.split("@")[0] for host in served_by} == {"worker"}
    assert Heartbeat.objects.filter(name="beat").exists()
    processes.kill("worker-imports")  # no need to wait for the import to finish
