"""The production stack of docker-compose.yml (gunicorn, Celery worker, Celery beat) against real
PostgreSQL and Redis: what the compose file runs is what this test runs."""

from __future__ import annotations

import json
import subprocess

import pytest

from supportdesk.core.models import Heartbeat, WorkerPing
from tests import factories

from .stack import (
    Browser,
    compose_command,
    free_port,
    service_env,
    wait_for,
    worker_services,
)

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def stack(tmp_path, processes):
    port = free_port()
    env = service_env(tmp_path, PORT=str(port), HEARTBEAT_SECONDS="1", SLA_SWEEP_SECONDS="2")
    # What the Dockerfile does at build time.
    subprocess.run(
        ["python", "manage.py", "collectstatic", "--noinput"],
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    for name in ("web", *worker_services(), "beat"):
        processes.start(name, compose_command(name), env)
    return processes, f"http://127.0.0.1:{port}"


def test_compose_commands_serve_pages_run_tasks_and_beat(stack):
    processes, base_url = stack
    factories.ManagerFactory(username="ops", password="ops-password-1")
    browser = Browser(base_url)

    wait_for(
        lambda: browser.get("/healthz/live")[0] == 200,
        timeout=60,
        what="gunicorn to answer /healthz/live",
        processes=processes,
    )

    status, page = browser.get("/login/")
    assert status == 200
    assert b"Log in to SupportDesk" in page
    status, css = browser.get("/static/supportdesk/app.css")  # served by WhiteNoise from collectstatic
    assert (status, b"--accent" in css) == (200, True)

    # A task sent by the web process is executed by the worker.
    browser.login("ops", "ops-password-1")
    status, body = browser.post("/status/ping/", accept_json=True)
    assert status == 202, body[:500]
    nonce = json.loads(body)["nonce"]
    wait_for(
        lambda: WorkerPing.objects.filter(nonce=nonce, executed_at__isnull=False).exists(),
        timeout=60,
        what="the worker to execute the ping task",
        processes=processes,
    )
    assert WorkerPing.objects.get(nonce=nonce).worker

    # Beat schedules the heartbeat; the worker records it.
    wait_for(
        lambda: Heartbeat.objects.filter(name="beat").exists(),
        timeout=60,
        what="beat's heartbeat to be executed",
        processes=processes,
    )

    # Ready once beat's heartbeat and a completed sweep are recorded.
    def ready():
        status, body = browser.get("/healthz/ready")
        return status == 200 and json.loads(body)

    health = wait_for(ready, timeout=60, what="/healthz/ready to answer 200", processes=processes)
    checks = {"database": "ok", "broker": "ok", "beat": "ok", "sla_sweep": "ok"}
    assert health == {**health, "status": "ok", **checks}
    assert health["beat_last_seen"] is not None
