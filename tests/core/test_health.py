"""/healthz/live (the process answers), /healthz/ready (database, broker, beat, SLA sweep) and /healthz
(the same as ready), as a load balancer and a container runtime see them."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest
import time_machine
from django.db import OperationalError, connections
from django.urls import reverse

from sla import tasks as sla_tasks
from sla.models import SlaClock, Target
from supportdesk.core import tasks as core_tasks
from supportdesk.core.models import Heartbeat
from supportdesk.core.services import record_heartbeat
from tests import factories
from tests.factories import at

ROOT = Path(__file__).resolve().parents[2]
T0 = at(2026, 3, 4, 10, 0)
SECOND = dt.timedelta(seconds=1)
ENDPOINTS = ["/healthz/live", "/healthz/ready", "/healthz"]


@pytest.fixture(autouse=True)
def thresholds(settings):
    settings.HEALTH_BEAT_MAX_AGE_SECONDS = 180
    settings.HEALTH_SWEEP_MAX_LAG_SECONDS = 300


@pytest.fixture
def clock():
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


def _healthy(now: dt.datetime) -> None:
    """What beat and a worker leave behind: the heartbeat and a completed sweep at ``now``."""
    record_heartbeat(name="beat", now=now)
    record_heartbeat(name="sla-sweep", now=now)


def _clock(case, *, warn_at: dt.datetime, due_at: dt.datetime) -> SlaClock:
    return SlaClock.objects.create(
        case=case,
        target=Target.RESOLUTION,
        target_minutes=60,
        business_time=False,
        warning_ratio=0.75,
        started_at=warn_at - dt.timedelta(minutes=45),
        warn_at=warn_at,
        due_at=due_at,
    )


def _break_the_database(monkeypatch) -> None:
    """Every query fails where a refused connection would: opening the connection."""

    def refused(*args, **kwargs):
        raise OperationalError(
            'connection to server at "db" (10.0.0.5), port 5432 failed: Connection refused'
        )

    monkeypatch.setattr(connections["default"], "ensure_connection", refused)


# --------------------------------------------------------------------------- all fine


@pytest.mark.django_db
def test_ready_and_healthz_answer_200_with_every_check_ok(client, clock):
    _healthy(T0 - 30 * SECOND)
    response = client.get("/healthz/ready")
    assert response.status_code == 200
    body = response.json()
    assert body == {
        **body,
        "status": "ok",
        "database": "ok",
        "broker": "ok",
        "beat": "ok",
        "sla_sweep": "ok",
        "beat_last_seen": (T0 - 30 * SECOND).isoformat(),
        "sla_sweep_lag_seconds": 30,
    }
    assert "down" not in body
    healthz = client.get("/healthz")
    assert (healthz.status_code, healthz.json()) == (200, body)


@pytest.mark.django_db
def test_live_answers_200_without_asking_anything(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/healthz/live")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


@pytest.mark.django_db
@pytest.mark.parametrize("path", ENDPOINTS)
def test_each_endpoint_answers_any_host_over_plain_http_and_is_never_cached(client, settings, clock, path):
    _healthy(T0)
    settings.ALLOWED_HOSTS = ["support.example.com"]
    settings.SECURE_SSL_REDIRECT = True
    assert client.get("/login/", HTTP_HOST="10.0.0.7:8000").status_code == 400  # the host check applies
    response = client.get(path, HTTP_HOST="10.0.0.7:8000")
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    assert client.head(path, HTTP_HOST="10.0.0.7:8000").status_code == 200
    assert client.post(path, HTTP_HOST="10.0.0.7:8000").status_code == 405


@pytest.mark.django_db
def test_the_urls_are_named():
    assert [reverse(n) for n in ("healthz-live", "healthz-ready", "healthz")] == [
        "/healthz/live",
        "/healthz/ready",
        "/healthz",
    ]


# --------------------------------------------------------------------------- database down


@pytest.mark.django_db
def test_database_down_fails_ready_and_healthz_but_not_live(client, clock, monkeypatch):
    _healthy(T0)
    _break_the_database(monkeypatch)
    for path in ("/healthz/ready", "/healthz"):
        response = client.get(path)
        assert response.status_code == 503
        body = response.json()
        assert body["down"] == ["database"]
        assert "Connection refused" in body["errors"]["database"]
        # What needs the database is not evaluated: the database is named as the cause.
        assert (body["beat"], body["sla_sweep"], body["broker"]) == ("unknown", "unknown", "ok")
    assert client.get("/healthz/live").status_code == 200


# --------------------------------------------------------------------------- broker down


@pytest.mark.django_db
def test_broker_down_fails_ready_and_names_it_but_live_stays_200(client, settings, clock):
    _healthy(T0)
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    response = client.get("/healthz/ready")
    assert response.status_code == 503
    body = response.json()
    assert body["down"] == ["broker"]
    assert body["errors"]["broker"]
    assert (body["database"], body["beat"], body["sla_sweep"]) == ("ok", "ok", "ok")
    assert client.get("/healthz").status_code == 503
    assert client.get("/healthz/live").status_code == 200


# --------------------------------------------------------------------------- beat


@pytest.mark.django_db
def test_beat_is_stale_once_its_heartbeat_is_older_than_the_threshold(client, clock):
    _healthy(T0)
    clock.move_to(T0 + 180 * SECOND)
    record_heartbeat(name="sla-sweep", now=T0 + 180 * SECOND)
    assert client.get("/healthz/ready").status_code == 200

    clock.move_to(T0 + 181 * SECOND)
    response = client.get("/healthz/ready")
    assert response.status_code == 503
    body = response.json()
    assert (body["beat"], body["down"]) == ("stale", ["beat"])
    assert "181 s ago" in body["errors"]["beat"]
    assert client.get("/healthz/live").status_code == 200


@pytest.mark.django_db
def test_a_fresh_install_is_not_ready_until_beat_and_a_worker_have_run_once(client, clock):
    response = client.get("/healthz/ready")
    assert response.status_code == 503
    body = response.json()
    assert (body["beat"], body["sla_sweep"]) == ("not yet seen", "not yet seen")
    assert body["down"] == ["beat", "sla_sweep"]
    assert client.get("/healthz/live").status_code == 200

    # What beat sends and a worker runs in the first minute.
    core_tasks.heartbeat()
    sla_tasks.sweep()
    assert client.get("/healthz/ready").status_code == 200


# --------------------------------------------------------------------------- SLA sweep


@pytest.mark.django_db
def test_the_sweep_records_when_it_completed_up_to_its_start(clock):
    sla_tasks.sweep()
    assert Heartbeat.objects.get(name="sla-sweep").seen_at == T0
    # A sweep that started earlier and finishes later does not move the time back.
    record_heartbeat(name="sla-sweep", now=T0 - 60 * SECOND)
    assert Heartbeat.objects.get(name="sla-sweep").seen_at == T0


@pytest.mark.django_db
def test_the_sweep_is_behind_when_no_sweep_completed_within_the_threshold(client, clock):
    _healthy(T0)
    clock.move_to(T0 + 301 * SECOND)
    record_heartbeat(name="beat", now=T0 + 301 * SECOND)
    response = client.get("/healthz/ready")
    assert response.status_code == 503
    body = response.json()
    assert (body["sla_sweep"], body["down"]) == ("behind", ["sla_sweep"])
    assert body["sla_sweep_lag_seconds"] == 301
    assert "301 s ago" in body["errors"]["sla_sweep"]


@pytest.mark.django_db
def test_the_sweep_is_behind_when_a_breach_stays_unrecorded_although_sweeps_complete(
    client, clock, organisation, contact
):
    _healthy(T0)
    long_ago = T0 - dt.timedelta(hours=2)
    case = factories.CaseFactory(organisation=organisation, requester=contact, created_at=long_ago)
    _clock(case, warn_at=long_ago, due_at=T0 - 400 * SECOND)
    response = client.get("/healthz/ready")
    assert response.status_code == 503
    body = response.json()
    assert body["down"] == ["sla_sweep"]
    assert body["sla_oldest_unrecorded"] == {
        "case": case.key,
        "target": "resolution",
        "kind": "breach",
        "due": (T0 - 400 * SECOND).isoformat(),
        "overdue_seconds": 400,
    }
    assert case.key in body["errors"]["sla_sweep"]


@pytest.mark.django_db
def test_an_unrecorded_warning_alone_is_lag_too(client, clock, organisation, contact):
    _healthy(T0)
    long_ago = T0 - dt.timedelta(minutes=10)
    case = factories.CaseFactory(organisation=organisation, requester=contact, created_at=long_ago)
    _clock(case, warn_at=long_ago, due_at=T0 + dt.timedelta(minutes=30))
    body = client.get("/healthz/ready").json()
    assert body["sla_oldest_unrecorded"]["kind"] == "warning"
    assert body["sla_oldest_unrecorded"]["overdue_seconds"] == 600


@pytest.mark.django_db
def test_deadlines_the_sweep_has_not_had_time_for_are_not_lag(client, clock, organisation, contact):
    """Due within the threshold, or on a case changed within it (a severity raised on an old case
    puts its clock in the past at once): the next sweep records them."""
    _healthy(T0)
    long_ago = T0 - dt.timedelta(hours=2)
    recent = factories.CaseFactory(organisation=organisation, requester=contact, created_at=long_ago)
    _clock(recent, warn_at=T0 - 299 * SECOND, due_at=T0 - 200 * SECOND)
    retargeted = factories.CaseFactory(
        organisation=organisation, requester=contact, created_at=long_ago, updated_at=T0 - 60 * SECOND
    )
    _clock(retargeted, warn_at=long_ago, due_at=long_ago + dt.timedelta(minutes=15))
    assert client.get("/healthz/ready").status_code == 200

    # Once the sweep has recorded them, nothing is left behind.
    sla_tasks.sweep()
    assert not SlaClock.objects.filter(state="running", due_at__lt=T0).exists()


# --------------------------------------------------------------------------- System page and settings


@pytest.mark.django_db
def test_the_system_page_shows_the_readiness_checks(client, manager, clock):
    record_heartbeat(name="beat", now=T0 - 5 * SECOND)
    client.force_login(manager)
    page = client.get(reverse("core:status")).content.decode()
    assert "Scheduler (beat)" in page
    assert "heartbeat recorded 5 s ago" in page
    assert "SLA sweep" in page
    assert "Not yet seen" in page
    assert "no SLA sweep has completed yet" in page


@pytest.mark.parametrize(
    ("env", "expected"),
    [({}, "180 300"), ({"HEARTBEAT_SECONDS": "120", "SLA_SWEEP_SECONDS": "120"}, "360 600")],
)
def test_thresholds_follow_the_beat_intervals_by_default(env, expected):
    full_env = {
        k: v for k, v in os.environ.items() if not k.startswith(("HEALTH_", "HEARTBEAT_", "SLA_SWEEP_"))
    }
    full_env.update(DEBUG="true", **env)
    code = (
        "from supportdesk.settings import *; print(HEALTH_BEAT_MAX_AGE_SECONDS, HEALTH_SWEEP_MAX_LAG_SECONDS)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=60
    )
    assert result.stdout.strip() == expected, result.stderr
