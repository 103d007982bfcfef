"""Observability against the real stack: gunicorn's several workers answer one sum of request
figures, worker logs are JSON with the task id, queue lengths come from Redis."""

from __future__ import annotations

import json
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from supportdesk.celery import app as celery_app
from supportdesk.core.models import Heartbeat

from .stack import (
    compose_command,
    free_port,
    service_env,
    wait_for,
    worker_services,
)

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

TOKEN = "service-suite-scrape-token-0123456789"


def _get(url: str, **headers: str) -> tuple[int, bytes, dict]:
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 - local test server
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read(), dict(error.headers)
    except OSError:
        return 0, b"", {}


def _samples(body: bytes) -> dict[str, list]:
    samples: dict[str, list] = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample)
    return samples


def _json_lines(text: str) -> list[dict]:
    lines = []
    for raw in text.splitlines():
        try:
            lines.append(json.loads(raw))
        except ValueError:
            continue  # Celery's start banner is plain text
    return lines


@pytest.fixture
def stack(tmp_path, processes):
    port = free_port()
    env = service_env(tmp_path, PORT=str(port), HEARTBEAT_SECONDS="1", PROMETHEUS_TOKEN=TOKEN)
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # gunicorn.conf.py makes one for the server
    env.pop("LOG_FORMAT", None)
    # Every lane's worker of the compose file: beat's heartbeat runs on worker-sla.
    for name in ("web", *worker_services(), "beat"):
        processes.start(name, compose_command(name), env)
    return processes, f"http://127.0.0.1:{port}", tmp_path


def test_gunicorn_workers_report_one_sum_and_workers_log_json_with_task_ids(stack):
    processes, base_url, log_dir = stack
    wait_for(lambda: _get(base_url + "/healthz")[0], timeout=60, what="gunicorn", processes=processes)
    assert "--workers" in compose_command("web")

    def healthz_count() -> float:
        status, body, _ = _get(base_url + "/ops/metrics", Authorization=f"Bearer {TOKEN}")
        assert status == 200, body[:500]
        samples = _samples(body)["supportdesk_http_request_duration_seconds_count"]
        return sum(s.value for s in samples if s.labels["route"] == "healthz")

    # Requests spread over gunicorn's worker processes; every scrape, whichever worker answers it,
    # counts all of them.
    before = healthz_count()
    for i in range(24):
        _get(base_url + "/healthz", **{"X-Request-ID": f"probe-{i}"})
    assert {healthz_count() for _ in range(6)} == {before + 24}

    assert _get(base_url + "/ops/metrics")[0] == 403

    # The access line of a request is JSON with the id the proxy gave.
    status, _, headers = _get(base_url + "/api/cases/", **{"X-Request-ID": "svc-req-1"})
    assert (status, headers["X-Request-ID"]) == (401, "svc-req-1")
    access = wait_for(
        lambda: [
            line
            for line in _json_lines((log_dir / "web.log").read_text(errors="replace"))
            if line.get("request_id") == "svc-req-1" and line.get("logger") == "supportdesk.request"
        ],
        timeout=30,
        what="the access line in the web log",
        processes=processes,
    )
    assert access[0] == {**access[0], "status": 401, "path": "/api/cases/", "route": "cases_api:case-list"}

    # A worker's records of a task carry its id and name.
    wait_for(
        lambda: Heartbeat.objects.filter(name="beat").exists(),
        timeout=60,
        what="beat's heartbeat to be executed",
        processes=processes,
    )
    task_lines = wait_for(
        lambda: [
            line
            for line in _json_lines((log_dir / "worker-sla.log").read_text(errors="replace"))
            if line.get("task_name") == "core.heartbeat"
        ],
        timeout=30,
        what="a JSON line of the heartbeat task in the worker log",
        processes=processes,
    )
    assert task_lines[0]["task_id"] in task_lines[0]["message"]


def _queue_keys(name: str) -> list[str]:
    return [name] + [f"{name}\x06\x16{step}" for step in (3, 6, 9)]


def test_queue_lengths_are_read_from_the_redis_broker(client, settings):
    settings.PROMETHEUS_TOKEN = TOKEN
    settings.CELERY_TASK_QUEUES = None  # the product's default queue names
    import redis

    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    # Every product queue starts empty here, whatever earlier tests left for workers long gone.
    keys = [key for queue in ("sla", "mail", "webhooks", "imports", "default") for key in _queue_keys(queue)]
    broker.delete(*keys)
    try:
        for _ in range(3):
            celery_app.send_task("core.heartbeat", queue="mail")
        celery_app.send_task("core.heartbeat", queue="mail", priority=5)  # kept in a list of its own
        celery_app.send_task("core.heartbeat", queue="imports")

        response = client.get("/ops/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    finally:
        broker.delete(*keys)

    assert response.status_code == 200
    lengths = {
        s.labels["queue"]: s.value for s in _samples(response.content)["supportdesk_celery_queue_length"]
    }
    assert lengths == {"sla": 0, "mail": 4, "webhooks": 0, "imports": 1, "default": 0}
