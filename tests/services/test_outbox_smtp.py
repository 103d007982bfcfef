"""The outbox against a real SMTP server (aiosmtpd, on a local port) and a real Celery
worker on PostgreSQL and Redis: an agent's reply reaches the server with its threading headers; with
the server down the reply is retried and the case page says so (queued, then retrying); when it is
back the reply is delivered and shown sent. (A bounce that marks a sent reply failed:
test_inbound_mail.py.)
"""

from __future__ import annotations

from pathlib import Path

import pytest
from django.db import transaction
from django.test import Client
from django.utils import timezone

from cases import services as case_services
from supportdesk.celery import app as celery_app
from supportdesk.core.models import MailStatus, OutboundMessage

from .smtp import delivery_state
from .stack import service_env, wait_for

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

# Without -Q the worker takes every queue the product uses (mail.* tasks run on the "mail" queue).
WORKER = [
    "celery",
    "-A",
    "supportdesk",
    "worker",
    "--loglevel=INFO",
    "--concurrency=1",
    "-n",
    "mail-w1@%h",
]


@pytest.fixture
def worker(tmp_path, smtp, processes):
    var_dir: Path = tmp_path / "var"
    var_dir.mkdir()
    env = service_env(
        var_dir,
        **smtp.env(),
        DEFAULT_FROM_EMAIL="Acme Support <support@help.acme.example>",
        DATABASE_CONN_MAX_AGE="0",
    )
    processes.start("worker", WORKER, env)
    wait_for(_worker_answering, timeout=90, what="the mail worker", processes=processes)
    return processes


def _worker_answering() -> bool:
    replies = celery_app.control.ping(timeout=1.0) or []
    return any(host.startswith("mail-w1@") for reply in replies for host in reply)


def _row(event) -> OutboundMessage:
    return OutboundMessage.objects.get(event_id=event.pk)


def test_replies_reach_a_real_smtp_server_and_survive_it_going_down(
    worker, smtp, organisation, contact, agent, settings
):
    settings.DEFAULT_FROM_EMAIL = "Acme Support <support@help.acme.example>"
    case = case_services.create_case(
        title="Checkout fails\r\nwith 502",
        organisation=organisation,
        requester=contact,
        severity="P2",
        assignee=agent,
        actor=agent,
        now=timezone.now(),
    )
    client = Client()
    client.force_login(agent)

    # --- the server is up: the reply goes out right after commit -----------------------------------
    first = _row(case_services.add_public_reply(case, body="reply first", actor=agent, now=timezone.now()))
    first = wait_for(
        lambda: OutboundMessage.objects.filter(pk=first.pk, status=MailStatus.SENT).first(),
        timeout=60,
        what="the first reply to be sent",
        processes=worker,
    )
    received = smtp.inbox.by_message_id(first.message_id)
    assert received is not None, "the server has the mail the row says was sent"
    assert received["To"] == "carla@acme.example"
    assert received["Subject"] == f"[{case.key}] Checkout fails with 502"
    assert received["X-SupportDesk-Case"] == case.key
    assert received["Auto-Submitted"] is None  # an agent wrote it
    assert "reply first" in received.get_content()

    second = _row(case_services.add_public_reply(case, body="reply second", actor=agent, now=timezone.now()))
    wait_for(
        lambda: smtp.inbox.by_message_id(second.message_id),
        timeout=60,
        what="the second reply at the server",
        processes=worker,
    )
    threaded = smtp.inbox.by_message_id(second.message_id)
    assert threaded["In-Reply-To"] == first.message_id
    assert threaded["References"] == first.message_id

    # --- the server goes away: the reply is kept and retried ---------------------------------------
    smtp.stop()
    with transaction.atomic():
        third = _row(
            case_services.add_public_reply(case, body="reply third", actor=agent, now=timezone.now())
        )
        # Until a worker takes it (after this commit) the timeline says it waits for delivery.
        assert delivery_state(client, case, "reply third") == "queued"
    third = wait_for(
        lambda: OutboundMessage.objects.filter(pk=third.pk, status=MailStatus.RETRYING).first(),
        timeout=60,
        what="the reply to be retrying while the server is down",
        processes=worker,
    )
    assert third.attempts >= 1
    assert "refused" in third.last_error.lower()
    assert delivery_state(client, case, "reply third") == "retrying"
    assert smtp.inbox.by_message_id(third.message_id) is None

    # --- the server is back: the minute sweep (run on the worker) delivers it ------------------------
    smtp.start()

    def delivered():
        celery_app.send_task("mail.send_due")
        return OutboundMessage.objects.filter(pk=third.pk, status=MailStatus.SENT).first()

    wait_for(delivered, timeout=90, what="the retried reply to be delivered", processes=worker)
    assert delivery_state(client, case, "reply third") == "sent"
    late = smtp.inbox.by_message_id(third.message_id)
    assert late is not None
    assert late["In-Reply-To"] == second.message_id
    assert late["References"].split() == [first.message_id, second.message_id]
    # Each reply reached the server exactly once, however many sweeps ran.
    ids = [m["Message-ID"] for _, m in smtp.inbox.received]
    assert sorted(ids) == sorted([first.message_id, second.message_id, third.message_id])
