"""Liveness of what the product needs: the database and the broker (and when beat last ran)."""

from __future__ import annotations

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from supportdesk.celery import app as celery_app

from .models import Heartbeat


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


@never_cache
@require_safe
def healthz(request):
    problems = {}
    if error := check_database():
        problems["database"] = error
    if error := check_broker():
        problems["broker"] = error
    body: dict = {
        "status": "ok" if not problems else "down",
        "database": "ok" if "database" not in problems else "down",
        "broker": "ok" if "broker" not in problems else "down",
        "time": timezone.now().isoformat(),
    }
    if problems:
        body["down"] = sorted(problems)
        body["errors"] = problems
    else:
        beat = Heartbeat.objects.filter(name="beat").first()
        body["beat_last_seen"] = beat.seen_at.isoformat() if beat else None
    return JsonResponse(body, status=200 if not problems else 503)
