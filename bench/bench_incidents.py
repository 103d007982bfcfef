#!/usr/bin/env python
"""How long one major-incident update takes to reach 1,000 linked cases, outbox rows included.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/inc_bench DEBUG=false SECRET_KEY=bench \\
        CELERY_BROKER_URL=redis://127.0.0.1:6379/13 .venv/bin/python bench/bench_incidents.py \\
        [--cases 1000] [--updates 3] [--reuse]

Creates (or, without ``--reuse``, recreates) the PostgreSQL database and migrates it, then writes
``--cases`` enterprise P1 cases through ``cases.services`` (each from its own requester at one of
100 customers, triaged and in progress, with its SLA clocks running) and links them all to one
incident. It then posts ``--updates`` public updates, each through ``incidents.services.post_update``
(the same call the incident page and the API make), and for each prints the wall time, the
queries, and how long the incident row was held: a probe on its own connection tries
``SELECT ... FOR UPDATE NOWAIT`` on the incident every 20 ms during the fan-out and reports how
often it got the row and the longest run of refusals.

After each update it checks what a customer would: every case has the update once as a public
reply, one outbox mail to its requester in its own thread, and its update-cadence clock met at the
update's instant with the next run started. With ``--helpers N`` it then times ``--updates`` more
updates with N helper processes (started beforehand, each running ``services.deliver_pending`` as
the ``incidents.deliver_update`` task does) sharing the fan-out with the caller. The mails are
handed to the broker of ``CELERY_BROKER_URL`` after each case's commit, as in production (run no
``mail`` worker on it, or it sends them to the dummy e-mail backend).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import ensure_database  # noqa: E402 - after the path is set

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/inc_bench"
TITLE = "bench-incident"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=1000, help="linked cases")
    parser.add_argument("--updates", type=int, default=3, help="timed public updates (median reported)")
    parser.add_argument("--reuse", action="store_true", help="keep the database and its cases")
    parser.add_argument(
        "--helpers",
        type=int,
        default=0,
        help="also time updates posted with this many helper processes beside the caller (as the "
        "incidents.deliver_update workers a large fan-out asks for)",
    )
    return parser.parse_args(argv)


def setup_django(*, reuse: bool, migrate: bool = True) -> None:
    os.environ.setdefault("DATABASE_URL", DEFAULT_URL)
    os.environ.setdefault("SECRET_KEY", "bench-secret-key-not-for-production")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "supportdesk.settings")
    os.environ.setdefault("EMAIL_BACKEND", "django.core.mail.backends.dummy.EmailBackend")
    if migrate:
        ensure_database(os.environ["DATABASE_URL"], recreate=not reuse, script="bench_incidents.py")
    import django

    django.setup()
    if migrate:
        from django.core.management import call_command

        call_command("migrate", verbosity=0)


def load(count: int):
    """The incident with ``count`` linked cases (made once; reused with ``--reuse``)."""
    from django.utils import timezone

    from cases import services as case_services
    from cases.models import Contact, Organisation, Status
    from incidents import services
    from incidents.models import MajorIncident
    from tests.factories import AgentFactory, ManagerFactory

    incident = MajorIncident.objects.filter(title=TITLE, status="active").first()
    if incident is not None and incident.links.count() == count:
        print(f"reusing {incident.key} with {count:,} linked cases")
        return incident
    started = time.perf_counter()
    agent = AgentFactory(username=f"bench-agent-{time.time_ns()}")
    manager = ManagerFactory(username=f"bench-manager-{time.time_ns()}")
    now = timezone.now()
    organisations = [
        Organisation.objects.create(name=f"Bench customer {time.time_ns()}-{i}", tier="enterprise")
        for i in range(100)
    ]
    cases = []
    for i in range(count):
        org = organisations[i % len(organisations)]
        contact = Contact.objects.create(
            organisation=org, name=f"Person {i}", email=f"person{i}-{org.pk}@bench.example"
        )
        case = case_services.create_case(
            title=f"Checkout fails for {org.name}",
            organisation=org,
            requester=contact,
            severity="P1",
            assignee=agent,
            actor=agent,
            now=now,
            product_area="checkout",
        )
        case = case_services.transition(case, Status.TRIAGED, severity="P1", actor=agent, now=now)
        cases.append(case_services.transition(case, Status.IN_PROGRESS, actor=agent, now=now))
    print(f"wrote {count:,} cases in {time.perf_counter() - started:.1f}s")
    incident = services.declare(
        title=TITLE, severity="P1", product_area="checkout", commander=manager, actor=agent, now=now
    )
    started = time.perf_counter()
    services.link_cases(incident, cases, actor=agent, now=now)
    print(f"linked {count:,} cases in {time.perf_counter() - started:.1f}s")
    from django.db import connection

    with connection.cursor() as cursor:
        for table in ("cases_case", "cases_caseevent", "sla_slaclock", "core_outboundmessage"):
            cursor.execute(f"VACUUM ANALYZE {table}")  # noqa: S608 - fixed table names
    return incident


class LockProbe(threading.Thread):
    """Tries to lock the incident row every ``interval`` seconds on its own connection."""

    def __init__(self, incident_id: int, interval: float = 0.02) -> None:
        super().__init__(daemon=True)
        self.incident_id = incident_id
        self.interval = interval
        self.stop = threading.Event()
        self.got = 0
        self.refused = 0
        self.longest_refused = 0.0
        self._refused_since: float | None = None

    def run(self) -> None:
        from django.db import OperationalError, connection, transaction

        try:
            while not self.stop.is_set():
                try:
                    with transaction.atomic(), connection.cursor() as cursor:
                        cursor.execute(
                            "SELECT 1 FROM incidents_majorincident WHERE id = %s FOR UPDATE NOWAIT",
                            [self.incident_id],
                        )
                    self.got += 1
                    if self._refused_since is not None:
                        self.longest_refused = max(
                            self.longest_refused, time.perf_counter() - self._refused_since
                        )
                        self._refused_since = None
                except OperationalError:
                    self.refused += 1
                    if self._refused_since is None:
                        self._refused_since = time.perf_counter()
                self.stop.wait(self.interval)
        finally:
            connection.close()


class QueryCounter:
    def __init__(self) -> None:
        self.queries = 0

    def __call__(self, execute, sql, params, many, context):
        self.queries += 1
        return execute(sql, params, many, context)


def check(update, cases: int) -> None:
    """Every case has the update once, as a reply mailed to its requester in its thread, and its
    cadence clock met at the update's instant."""
    from django.db.models import Count

    from cases.models import CaseEvent
    from incidents.models import DeliveryState
    from sla.models import ClockState, SlaClock, Target
    from supportdesk.core.models import OutboundMessage

    deliveries = update.deliveries.values("state").annotate(n=Count("id"))
    states = {row["state"]: row["n"] for row in deliveries}
    assert states == {DeliveryState.DELIVERED: cases}, states
    events = CaseEvent.objects.filter(
        kind="public_reply", body=update.body, created_at__gte=update.created_at
    )
    assert events.count() == cases
    assert events.values("case_id").distinct().count() == cases
    mails = OutboundMessage.objects.filter(body=update.body, kind="reply")
    assert mails.count() == cases
    assert mails.values("case_id").distinct().count() == cases
    threaded = mails.exclude(in_reply_to="").count()
    completed = [ClockState.MET, ClockState.BREACHED]
    replied = events.values("created_at")
    met = SlaClock.objects.filter(
        target=Target.UPDATE_CADENCE, met_at__in=replied, state__in=completed, case__in=events.values("case")
    ).count()
    started = SlaClock.objects.filter(
        target=Target.UPDATE_CADENCE, started_at__in=replied, state=ClockState.RUNNING
    ).count()
    assert met == cases, met
    assert started == cases, started
    print(f"    checked: {cases:,} replies, {cases:,} mails ({threaded:,} threaded), {met:,} cadence met")


def helper(ready, work, done) -> None:
    """A helper process: Django set up once, then its share of each update it is handed."""
    setup_django(reuse=True, migrate=False)
    from django.utils import timezone

    from incidents import services

    ready.put(os.getpid())
    while (update_id := work.get()) is not None:
        done.put(services.deliver_pending(update_id, now=timezone.now()))


def timed_update(incident, n: int, *, cases: int, label: str, helpers=None) -> float:
    """One update to every case, by the caller alone (``post_update``) or with ``helpers``: the
    (work, done, count) queues and number of the helper processes."""
    from django.db import connection
    from django.utils import timezone

    from incidents import services

    probe = LockProbe(incident.pk)
    probe.start()
    now = timezone.now()
    body = f"Update {n} at {now:%H:%M:%S.%f}: engineers are rolling back the payment proxy."
    started = time.perf_counter()
    counter = QueryCounter()
    with connection.execute_wrapper(counter):
        if helpers is None:
            outcome = services.post_update(
                incident, body=body, public=True, actor=incident.commander, now=now
            )
            update, posted = outcome.update, len(outcome.done)
            assert not outcome.refused, outcome.refused[:3]
        else:
            work, done, count = helpers
            update = services.start_update(
                incident, body=body, public=True, actor=incident.commander, now=now
            )
            for _ in range(count):
                work.put(update.pk)
            posted = len(services.deliver(update, actor=incident.commander, now=now).done)
            posted += sum(done.get() for _ in range(count))
    seconds = time.perf_counter() - started
    probe.stop.set()
    probe.join()
    assert posted == cases, posted
    print(
        f"{label} {n}: {posted:,} cases in {seconds:.2f}s ({seconds / cases * 1000:.2f} ms a case), "
        f"{counter.queries:,} queries in the caller ({counter.queries / cases:.1f} a case); "
        f"incident lock probe: got it {probe.got} times, refused {probe.refused} "
        f"(longest {probe.longest_refused * 1000:.0f} ms)"
    )
    check(update, cases)
    return seconds


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    setup_django(reuse=args.reuse)
    incident = load(args.cases)
    alone = [timed_update(incident, n + 1, cases=args.cases, label="update") for n in range(args.updates)]
    print(f"median over {len(alone)} updates: {statistics.median(alone):.2f}s for {args.cases:,} cases")
    if not args.helpers:
        return
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    ready, work, done = context.Queue(), context.Queue(), context.Queue()
    processes = [context.Process(target=helper, args=(ready, work, done)) for _ in range(args.helpers)]
    for process in processes:
        process.start()
    for _ in processes:
        ready.get()
    try:
        shared = [
            timed_update(
                incident,
                n + 1,
                cases=args.cases,
                label=f"with {args.helpers} helpers, update",
                helpers=(work, done, args.helpers),
            )
            for n in range(args.updates)
        ]
    finally:
        for _ in processes:
            work.put(None)
        for process in processes:
            process.join()
    print(
        f"median with {args.helpers} helpers over {len(shared)} updates: {statistics.median(shared):.2f}s "
        f"for {args.cases:,} cases"
    )


if __name__ == "__main__":
    main()
