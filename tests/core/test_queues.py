"""Queues, routes and time limits: SLA work has a lane of its own, and no task outlives the broker's
visibility timeout (Redis would hand a task still running to a second worker)."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
import yaml
from django.conf import settings

from escalations.services import BACKOFF_MAX_SECONDS
from supportdesk.celery import app as celery_app

ROOT = Path(__file__).resolve().parents[2]
PRODUCT_PREFIXES = ("core.", "cases.", "sla.", "escalations.", "knowledge.", "metrics.", "imports.", "mail.")
QUEUES = {"sla", "mail", "webhooks", "imports", "default"}


def intended_queue(name: str) -> str:
    """The lane each task belongs to, as the operations notes describe it."""
    if name.startswith("sla.") or name == "core.heartbeat":
        return "sla"
    if name.startswith("mail."):
        return "mail"
    if name in ("escalations.deliver_webhook", "escalations.redeliver_due"):
        return "webhooks"
    if name.startswith("imports."):
        return "imports"
    return "default"


def product_tasks() -> dict:
    celery_app.loader.import_default_modules()  # what a worker does at start (autodiscovery)
    return {name: task for name, task in celery_app.tasks.items() if name.startswith(PRODUCT_PREFIXES)}


def routed_queue(name: str) -> str:
    return celery_app.amqp.router.route({}, name)["queue"].name


def test_every_task_of_the_product_is_registered_and_routed_to_its_lane():
    tasks = product_tasks()
    known = {
        "sla.sweep": "sla",
        "core.heartbeat": "sla",
        "core.ping": "default",
        "cases.auto_close_resolved": "default",
        "escalations.deliver_webhook": "webhooks",
        "escalations.redeliver_due": "webhooks",
        "knowledge.flag_stale": "default",
        "metrics.refresh_rollup": "default",
        "imports.run_import": "imports",
    }
    assert set(known) <= set(tasks)
    assert {name: routed_queue(name) for name in known} == known
    assert {name: routed_queue(name) for name in tasks} == {name: intended_queue(name) for name in tasks}


def test_mail_tasks_route_to_the_mail_lane_by_name():
    # Outbound and inbound mail tasks are named mail.*; the route holds for those not written yet.
    assert routed_queue("mail.send_outbound") == "mail"
    assert routed_queue("mail.fetch_inbound") == "mail"


def test_a_task_nobody_routed_goes_to_the_default_queue():
    assert settings.CELERY_TASK_DEFAULT_QUEUE == "default"
    assert routed_queue("knowledge.some_future_task") == "default"
    assert {q.name for q in settings.CELERY_TASK_QUEUES} == QUEUES


def test_every_task_has_a_hard_time_limit_below_the_visibility_timeout():
    visibility = settings.BROKER_VISIBILITY_TIMEOUT_SECONDS
    limits = {}
    for name, task in product_tasks().items():
        hard = task.time_limit or celery_app.conf.task_time_limit
        assert hard, f"{name} has no hard time limit"
        if task.soft_time_limit:
            assert task.soft_time_limit < hard, f"{name}: the soft limit must come before the hard one"
        limits[name] = hard
    too_long = {name: hard for name, hard in limits.items() if hard >= visibility}
    assert not too_long, f"time limits at or above the visibility timeout ({visibility}s): {too_long}"
    # The import is the long one: hours, explicitly, not the 10-minute default.
    assert limits["imports.run_import"] >= 3600
    # A webhook retry waits on its worker for its countdown (an ETA), then runs: both under the timeout.
    assert BACKOFF_MAX_SECONDS + limits["escalations.deliver_webhook"] < visibility


def test_the_redis_broker_uses_the_visibility_timeout_of_the_settings():
    options = celery_app.conf.broker_transport_options or {}
    if str(celery_app.conf.broker_url).startswith("filesystem://"):
        pytest.skip("the filesystem broker (development) never redelivers")
    assert options["visibility_timeout"] == settings.BROKER_VISIBILITY_TIMEOUT_SECONDS


def _worker_queues(command: list[str]) -> tuple[set[str], str | None]:
    """The queues (-Q) and node name (-n/--hostname) of a `celery worker` command."""
    queues = hostname = None
    for i, arg in enumerate(command):
        if arg in ("-Q", "--queues"):
            queues = command[i + 1]
        elif arg.startswith("--queues="):
            queues = arg.split("=", 1)[1]
        elif arg in ("-n", "--hostname"):
            hostname = command[i + 1]
        elif arg.startswith("--hostname="):
            hostname = arg.split("=", 1)[1]
    assert queues, f"a worker must name its queues: {command}"
    return set(queues.split(",")), hostname


def _compose_workers() -> dict[str, dict]:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    return {
        name: service
        for name, service in services.items()
        if service.get("command", [])[:1] == ["celery"] and "worker" in service["command"]
    }


def test_compose_runs_sla_and_imports_on_workers_of_their_own_and_consumes_every_queue():
    workers = {name: _worker_queues(service["command"])[0] for name, service in _compose_workers().items()}
    assert set().union(*workers.values()) == QUEUES, "every queue needs a worker"
    sla = [name for name, queues in workers.items() if "sla" in queues]
    imports = [name for name, queues in workers.items() if "imports" in queues]
    assert [workers[name] for name in sla] == [{"sla"}], "SLA work shares its worker with nothing"
    assert [workers[name] for name in imports] == [{"imports"}], "an import never blocks another lane"


def test_compose_worker_healthchecks_ping_the_node_name_the_worker_runs_as():
    for name, service in _compose_workers().items():
        _, hostname = _worker_queues(service["command"])
        node = (hostname or "celery@%h").replace("%h", "$$HOSTNAME")
        check = " ".join(service["healthcheck"]["test"])
        assert f"-d {node} " in check, f"{name}: healthcheck pings another node than {node}: {check}"


def test_the_development_worker_consumes_every_queue():
    procfile = dict(line.split(": ", 1) for line in (ROOT / "Procfile.dev").read_text().splitlines() if line)
    queues, _ = _worker_queues(shlex.split(procfile["worker"]))
    assert queues == QUEUES
