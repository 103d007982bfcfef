"""Settings for the worker and beat processes of the SLA service test.

The project's settings, plus the SLA sweep in the beat schedule if the project does not schedule it
yet (tests/sla/test_settings.py checks that it does).
"""

from supportdesk.settings import *  # noqa: F403
from supportdesk.settings import CELERY_BEAT_SCHEDULE, SLA_SWEEP_SECONDS

if not any(entry.get("task") == "sla.sweep" for entry in CELERY_BEAT_SCHEDULE.values()):
    CELERY_BEAT_SCHEDULE = {
        **CELERY_BEAT_SCHEDULE,
        "sla-sweep": {"task": "sla.sweep", "schedule": float(SLA_SWEEP_SECONDS)},
    }
