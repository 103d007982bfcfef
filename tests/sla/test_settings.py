"""What the SLA app needs from the project's settings and URLs."""

from __future__ import annotations

from django.conf import settings
from django.urls import reverse


def test_beat_schedules_the_sweep_every_sla_sweep_seconds():
    entries = [e for e in settings.CELERY_BEAT_SCHEDULE.values() if e.get("task") == "sla.sweep"]
    assert len(entries) == 1, "add the 'sla-sweep' entry to CELERY_BEAT_SCHEDULE in supportdesk/settings.py"
    assert float(entries[0]["schedule"]) == float(settings.SLA_SWEEP_SECONDS)


def test_the_project_routes_the_sla_pages_and_api():
    assert reverse("sla:policies") == "/sla/policies/"
    assert reverse("sla_api:preview") == "/api/sla/preview"
    assert reverse("sla_api:case-sla", args=["CASE-1"]) == "/api/cases/CASE-1/sla/"
