"""``python -m tests.sla.ladder_worker <celery worker arguments>``: a real Celery worker whose clock
the warning-ladder acceptance test (tests/sla/test_ladder_workers.py) controls.

* time-machine freezes the process's clock at the instant stored in Redis under
  ``LADDER_CLOCK_KEY`` and, before every task, moves it to the key's current value: each task reads
  the test's clock (the sweep's ``now``, the outbox's, the webhook sender's).
* Each sweep (``sla.sweep``) sweeps in batches of ``LADDER_BATCH`` (small: the two workers' sweeps
  take turns over the same cases, case lock by case lock), and the first two sweeps of each instant
  meet at a gate in Redis before they start, so a sweep of one worker always overlaps one of the
  other (a worker runs one task at a time). Each finished sweep is listed under
  ``<key>:done:<instant>`` as ``<worker>:<claims>:<met|alone>``.
"""

from __future__ import annotations

import datetime as dt
import os
import sys

GATE_SECONDS = 20


def main(argv: list[str]) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.sla.worker_settings")
    import django

    django.setup()
    import redis
    import time_machine
    from celery.signals import task_prerun

    from sla import services
    from supportdesk.celery import app

    client = redis.Redis.from_url(os.environ["CELERY_BROKER_URL"])
    key = os.environ["LADDER_CLOCK_KEY"]
    worker = os.environ["LADDER_WORKER"]
    batch = int(os.environ.get("LADDER_BATCH", "4"))

    def controlled() -> dt.datetime:
        return dt.datetime.fromisoformat(client.get(key).decode())

    coordinates = time_machine.travel(controlled(), tick=False).start()

    def follow_the_test(**kwargs) -> None:
        coordinates.move_to(controlled())

    task_prerun.connect(follow_the_test, weak=False)
    sweep = services.record_due_warnings_and_breaches

    def overlapping(*, now: dt.datetime, **kwargs) -> int:
        instant = now.isoformat()
        arrived = client.incr(f"{key}:started:{instant}")
        met = "met"
        if arrived <= 2:
            if arrived == 2:
                client.rpush(f"{key}:gate:{instant}", "go", "go")
            if client.blpop([f"{key}:gate:{instant}"], timeout=GATE_SECONDS) is None:
                met = "alone"
        recorded = sweep(now=now, batch_size=batch)
        client.rpush(f"{key}:done:{instant}", f"{worker}:{recorded}:{met}")
        return recorded

    services.record_due_warnings_and_breaches = overlapping
    app.worker_main(["worker", *argv])


if __name__ == "__main__":
    main(sys.argv[1:])
