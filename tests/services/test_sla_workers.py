"""The SLA sweep on real PostgreSQL and Redis with real Celery processes: two workers and two beat
schedulers (a duplicated scheduler) record every warning and breach exactly once, and a worker
killed with SIGKILL in the middle of a sweep loses nothing.

Targets are minutes, so the test moves the clocks' ``warn_at``/``due_at`` a few seconds ahead in
the database instead of waiting for real targets to elapse.
"""

from __future__ import annotations

import datetime as dt
import email
import re
import signal
from collections import Counter
from pathlib import Path

import pytest
from django.utils import timezone

from cases import services as case_services
from cases.models import Case, CaseEvent
from sla.models import ClockState, SlaClock, Target
from supportdesk.celery import app as celery_app
from supportdesk.core.models import Heartbeat, MailStatus, Notification, OutboundMessage

from .stack import service_env, wait_for

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

FAR = dt.timedelta(days=30)


def worker_command(name: str) -> list[str]:
    # Without -Q a worker consumes every queue of CELERY_TASK_QUEUES: the sweep (sla), beat's
    # heartbeat (sla) and the SLA mails (mail.* tasks).
    return [
        "celery",
        "-A",
        "supportdesk",
        "worker",
        "--loglevel=INFO",
        "--concurrency=2",
        "-n",
        f"{name}@%h",
    ]


BEAT = ["celery", "-A", "supportdesk", "beat", "--loglevel=INFO"]


def _env(var_dir: Path) -> dict[str, str]:
    var_dir.mkdir(parents=True, exist_ok=True)
    return service_env(
        var_dir,
        DJANGO_SETTINGS_MODULE="tests.sla.worker_settings",
        SLA_SWEEP_SECONDS="1",
        HEARTBEAT_SECONDS="1",
        EMAIL_BACKEND="django.core.mail.backends.filebased.EmailBackend",
        DATABASE_CONN_MAX_AGE="0",
    )


def _workers_answering(*names: str) -> bool:
    replies = celery_app.control.ping(timeout=1.0) or []
    hosts = {host.split("@")[0] for reply in replies for host in reply}
    return set(names) <= hosts


def _open_p2_cases(count: int, *, organisation, contact, assignee) -> list[Case]:
    now = timezone.now()
    return [
        case_services.create_case(
            title=f"Outage {i}",
            organisation=organisation,
            requester=contact,
            severity="P2",
            assignee=assignee,
            actor=assignee,
            now=now,
        )
        for i in range(count)
    ]


def _bulk_p2_cases(count: int, *, organisation, contact, assignee, due_at: dt.datetime) -> list[int]:
    """Many cases whose first response is already due (rows written directly: faster than services)."""
    now = timezone.now()
    cases = Case.objects.bulk_create(
        Case(
            title=f"Bulk {i}",
            organisation=organisation,
            requester=contact,
            severity="P2",
            assignee=assignee,
            created_at=now,
            updated_at=now,
        )
        for i in range(count)
    )
    SlaClock.objects.bulk_create(
        SlaClock(
            case=case,
            target=Target.FIRST_RESPONSE,
            target_minutes=60,
            business_time=False,
            warning_ratio=0.75,
            started_at=now,
            warn_at=due_at,
            due_at=due_at,
        )
        for case in cases
    )
    return [c.pk for c in cases]


def _mail_headers(mail_dir: Path) -> Counter:
    """X-SupportDesk-Notification of every message the workers' file backend wrote."""
    found: Counter = Counter()
    if not mail_dir.exists():
        return found
    for path in mail_dir.iterdir():
        # The file backend writes each message followed by a line of 79 dashes.
        for chunk in re.split(r"\n-{79}\n", path.read_text(errors="replace")):
            if chunk.strip():
                key = email.message_from_string(chunk.strip()).get("X-SupportDesk-Notification")
                if key:
                    found[key] += 1
    return found


def test_two_workers_and_two_beats_record_each_warning_and_breach_once_and_survive_a_kill(
    processes, tmp_path, organisation, contact, agent, manager
):
    workers_dir = tmp_path / "workers"
    processes.start("worker1", worker_command("sla-w1"), _env(workers_dir))
    processes.start("worker2", worker_command("sla-w2"), _env(workers_dir))
    processes.start("beat1", BEAT, _env(tmp_path / "beat1"))
    processes.start("beat2", BEAT, _env(tmp_path / "beat2"))
    started = timezone.now()
    wait_for(
        lambda: _workers_answering("sla-w1", "sla-w2"), timeout=90, what="both workers", processes=processes
    )
    wait_for(
        lambda: Heartbeat.objects.filter(name="beat", seen_at__gt=started).exists(),
        timeout=60,
        what="beat to schedule tasks the workers run",
        processes=processes,
    )

    # --- Part 1: 30 cases whose first response warns and then breaches during the test -------------
    cases = _open_p2_cases(30, organisation=organisation, contact=contact, assignee=agent)
    now = timezone.now()
    fr = SlaClock.objects.filter(case__in=cases, target=Target.FIRST_RESPONSE)
    assert fr.count() == 30
    for i, clock in enumerate(fr.order_by("id")):
        # Staggered over a few seconds; each warning window spans several sweeps.
        SlaClock.objects.filter(pk=clock.pk).update(
            warn_at=now + dt.timedelta(seconds=3 + i % 5), due_at=now + dt.timedelta(seconds=12 + i % 5)
        )
    wait_for(
        lambda: fr.filter(state=ClockState.BREACHED).count() == 30,
        timeout=120,
        what="every first response to be breached",
        processes=processes,
    )
    # Let a few more sweeps of both schedulers run over the recorded clocks: none may record again.
    last = timezone.now()
    wait_for(
        lambda: Heartbeat.objects.filter(name="beat", seen_at__gt=last + dt.timedelta(seconds=3)).exists(),
        timeout=60,
        what="a few more sweeps",
        processes=processes,
    )
    assert fr.filter(warned_at__isnull=True).count() == 0
    events = Counter(
        CaseEvent.objects.filter(case__in=cases, kind__in=["sla_warning", "sla_breached"]).values_list(
            "case_id", "kind"
        )
    )
    assert events == Counter({(c.pk, kind): 1 for c in cases for kind in ("sla_warning", "sla_breached")})
    notes = Counter(
        Notification.objects.filter(title__contains="First response").values_list(
            "recipient__username", "kind"
        )
    )
    assert notes == Counter({("alice", "sla_warning"): 30, ("alice", "sla_breached"): 30}) + Counter(
        {("maria", "sla_warning"): 30, ("maria", "sla_breached"): 30}  # P2: managers too
    )
    expected_keys = {f"sla:{c.pk}:{suffix}" for c in fr for suffix in ("warning", "breach")}
    # The mails are in the outbox, each once by its dedupe key; the mail worker sends them after commit.
    assert set(OutboundMessage.objects.values_list("dedupe_key", flat=True)) == expected_keys
    wait_for(
        lambda: not OutboundMessage.objects.exclude(status=MailStatus.SENT).exists(),
        timeout=60,
        what="every SLA e-mail to be sent",
        processes=processes,
    )
    mails = _mail_headers(workers_dir / "mail")
    assert set(mails) == expected_keys
    assert set(mails.values()) == {1}, "every SLA e-mail is sent exactly once"

    # --- Part 2: one worker left, killed with SIGKILL while it sweeps 1,500 breaches -------------------
    processes.kill("worker2", signal.SIGTERM)  # a graceful stop
    wait_for(
        lambda: not _workers_answering("sla-w2"), timeout=30, what="worker 2 to stop", processes=processes
    )
    due = timezone.now() - dt.timedelta(seconds=1)
    bulk_ids = _bulk_p2_cases(1500, organisation=organisation, contact=contact, assignee=agent, due_at=due)
    bulk = SlaClock.objects.filter(case_id__in=bulk_ids)
    wait_for(
        lambda: bulk.filter(state=ClockState.BREACHED).exists(),
        timeout=60,
        what="worker 1 to start sweeping the batch",
        processes=processes,
    )
    processes.kill("worker1")  # SIGKILL to the worker and its pool: no cleanup, no ack
    recorded_before_restart = bulk.filter(state=ClockState.BREACHED).count()
    assert 0 < recorded_before_restart < 1500, "the worker must have died in the middle of the sweep"

    processes.start("worker3", worker_command("sla-w3"), _env(workers_dir))
    wait_for(
        lambda: bulk.filter(state=ClockState.BREACHED).count() == 1500,
        timeout=180,
        what="a restarted worker to record the rest",
        processes=processes,
    )
    last = timezone.now()
    wait_for(
        lambda: Heartbeat.objects.filter(name="beat", seen_at__gt=last + dt.timedelta(seconds=3)).exists(),
        timeout=60,
        what="a few more sweeps",
        processes=processes,
    )
    breaches = Counter(
        CaseEvent.objects.filter(case_id__in=bulk_ids, kind="sla_breached").values_list("case_id", flat=True)
    )
    assert len(breaches) == 1500
    assert set(breaches.values()) == {1}, "no breach recorded twice, none lost"
    # Their warnings fell due while no sweep ran: each recorded once, late, with its breach.
    warnings = CaseEvent.objects.filter(case_id__in=bulk_ids, kind="sla_warning")
    assert Counter(warnings.values_list("case_id", flat=True)) == Counter(dict.fromkeys(bulk_ids, 1))
    assert all(value["late"] for value in warnings.values_list("new_value", flat=True))
    per_key = Counter(
        Notification.objects.filter(dedupe_key__in=[f"sla:{c.pk}:breach" for c in bulk]).values_list(
            "recipient__username", flat=True
        )
    )
    assert per_key == Counter({"alice": 1500, "maria": 1500})
    # Part 1's clocks were never recorded again by the later sweeps.
    assert CaseEvent.objects.filter(case__in=cases, kind__in=["sla_warning", "sla_breached"]).count() == 60
