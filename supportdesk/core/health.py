"""Health endpoints, answered by ``HealthCheckMiddleware`` before host checks and HTTPS redirects.

* ``/healthz/live``: the process answers. No database, no broker: a container restarted because
  Redis is down would not bring Redis back. For liveness probes (the compose healthcheck).
* ``/healthz/ready``: the product works: the database and the broker answer, beat's heartbeat is
  recent and the SLA sweep keeps up (the checks registered with ``register_readiness_check``;
  the ``sla`` app adds its sweep). 503 names each failing check and why. For load balancers and
  monitoring.
* ``/healthz``: the same answer as ``/healthz/ready`` (kept for existing probes).

A fresh install is not ready until beat and a worker have run once (beat's first heartbeat and the
first completed sweep, about a minute after they start): "not yet seen" fails, so an install whose
beat was never started cannot look ready.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from supportdesk.celery import app as celery_app

from .models import Heartbeat

BEAT_HEARTBEAT = "beat"


@dataclass(frozen=True)
class CheckResult:
    """One readiness check: ``state`` in a word ("ok", "down", "stale", "not yet seen", "behind"),
    ``error`` the reason when it fails, ``details`` extra fields for the JSON body, ``summary``
    what a person reads when it is fine (the System page)."""

    state: str = "ok"
    error: str | None = None
    details: dict = field(default_factory=dict)
    summary: str = ""

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class _Registered:
    name: str
    label: str
    check: Callable[..., CheckResult]


_READINESS_CHECKS: dict[str, _Registered] = {}


def register_readiness_check(name: str, label: str, check: Callable[..., CheckResult]) -> None:
    """Add a check to ``/healthz/ready`` (after the database, broker and beat checks).

    ``check(now=...)`` returns a ``CheckResult``; it may read the database (it is skipped while the
    database is down) and should be one or two indexed queries: load balancers call it every few
    seconds. Registering a name again replaces it.
    """
    _READINESS_CHECKS[name] = _Registered(name, label, check)


def check_database() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # noqa: BLE001 - any failure means "down"
        return f"{type(exc).__name__}: {exc}"
    return None


def check_broker() -> str | None:
    try:
        with celery_app.connection_for_write(url=settings.CELERY_BROKER_URL) as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
    except Exception as exc:  # noqa: BLE001
        return f"{type(exc).__name__}: {exc}"
    return None


def seconds(delta: dt.timedelta) -> int:
    return int(delta.total_seconds())


def check_beat(*, now: dt.datetime) -> CheckResult:
    """Beat sends ``core.heartbeat`` every HEARTBEAT_SECONDS and a worker records it: a recent row
    means beat, the broker and a worker all work."""
    max_age = settings.HEALTH_BEAT_MAX_AGE_SECONDS
    seen_at = Heartbeat.objects.filter(name=BEAT_HEARTBEAT).values_list("seen_at", flat=True).first()
    if seen_at is None:
        return CheckResult(
            "not yet seen",
            "beat's heartbeat has never been recorded: are celery beat and a worker running?",
            {"beat_last_seen": None},
        )
    details = {"beat_last_seen": seen_at.isoformat(), "beat_age_seconds": seconds(now - seen_at)}
    if now - seen_at > dt.timedelta(seconds=max_age):
        return CheckResult(
            "stale",
            f"beat's heartbeat was last recorded {seconds(now - seen_at)} s ago (more than {max_age} s): "
            "celery beat or the workers are not running, or the workers are busy",
            details,
        )
    return CheckResult("ok", None, details, f"heartbeat recorded {seconds(now - seen_at)} s ago")


@dataclass(frozen=True)
class Readiness:
    ok: bool
    checks: dict[str, tuple[str, CheckResult]]  # name -> (label, result), in display order

    def body(self, *, now: dt.datetime) -> dict:
        body: dict = {"status": "ok" if self.ok else "down"}
        for name, (_label, result) in self.checks.items():
            body[name] = result.state
        for _label, result in self.checks.values():
            body.update(result.details)
        body["time"] = now.isoformat()
        failing = {name: result.error for name, (_label, result) in self.checks.items() if not result.ok}
        if failing:
            body["down"] = list(failing)
            body["errors"] = failing
        return body

    def rows(self) -> list[tuple[str, CheckResult]]:
        """(label, result) of each check, for the System page."""
        return list(self.checks.values())


def _down(error: str | None) -> CheckResult:
    return CheckResult("down", error) if error else CheckResult()


def readiness(*, now: dt.datetime) -> Readiness:
    """Run every readiness check at ``now``; those that read the database are skipped while it is down."""
    checks: dict[str, tuple[str, CheckResult]] = {}
    database_error = check_database()
    checks["database"] = ("Database", _down(database_error))
    broker_error = check_broker()
    checks["broker"] = ("Broker", _down(broker_error))
    registered = [_Registered(BEAT_HEARTBEAT, "Scheduler (beat)", check_beat), *_READINESS_CHECKS.values()]
    for entry in registered:
        if database_error:
            result = CheckResult("unknown")  # the database check names the cause
        else:
            try:
                result = entry.check(now=now)
            except Exception as exc:  # noqa: BLE001 - a check that cannot run is failing, not a 500
                result = CheckResult("down", f"{type(exc).__name__}: {exc}")
        checks[entry.name] = (entry.label, result)
    return Readiness(ok=all(result.ok for _label, result in checks.values()), checks=checks)


@never_cache
@require_safe
def live(request):
    return JsonResponse({"status": "ok", "time": timezone.now().isoformat()})


@never_cache
@require_safe
def ready(request):
    now = timezone.now()
    report = readiness(now=now)
    return JsonResponse(report.body(now=now), status=200 if report.ok else 503)


# Paths answered by HealthCheckMiddleware, before ALLOWED_HOSTS and SECURE_SSL_REDIRECT apply.
ENDPOINTS: dict[str, Callable] = {"/healthz/live": live, "/healthz/ready": ready, "/healthz": ready}
