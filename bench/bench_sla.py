#!/usr/bin/env python
"""How long the SLA sweep takes with 1,000,000 open clocks and 0, 100 or 10,000 of them due.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_sla DEBUG=false SECRET_KEY=bench \\
        .venv/bin/python bench/bench_sla.py [--clocks 1000000] [--due 0,100,10000] [--runs 3]

Creates the PostgreSQL database if it is missing and migrates it, then (unless it already holds
them) writes ``--clocks`` running clocks, four per open P2 case assigned to one agent, with
set-based ``INSERT ... SELECT generate_series`` (no per-row round trips). None is due: every due
instant lies weeks ahead. For each figure of ``--due`` it then makes that many clocks due, runs
``sla.services.record_due_warnings_and_breaches`` and reports the median wall time of ``--runs``
runs (the clocks are reset between runs), the queries it issued, and ``EXPLAIN (ANALYZE,
BUFFERS)`` of the sweep's two range queries. Each recorded breach writes a timeline event and an
in-app notification for the assignee and the manager (P2); e-mails go to the dummy backend.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import ensure_database  # noqa: E402 - after the path is set

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/bench_sla"
TARGETS = ("first_response", "triage", "update_cadence", "resolution")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clocks", type=int, default=1_000_000, help="running clocks (4 per case)")
    parser.add_argument("--due", default="0,100,10000", help="comma-separated numbers of due clocks")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per figure (median reported)")
    parser.add_argument("--recreate", action="store_true", help="drop and rewrite the clocks and cases")
    return parser.parse_args(argv)


def setup_django() -> None:
    os.environ.setdefault("DATABASE_URL", DEFAULT_URL)
    os.environ.setdefault("SECRET_KEY", "bench-secret-key-not-for-production")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "supportdesk.settings")
    # The sweep's e-mails are built and handed to a backend that drops them.
    os.environ.setdefault("EMAIL_BACKEND", "django.core.mail.backends.dummy.EmailBackend")
    ensure_database(os.environ["DATABASE_URL"], script="bench_sla.py")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def load(clocks: int, *, recreate: bool) -> None:
    """Write the open cases and their running clocks, unless they are already there."""
    from django.db import connection, transaction

    from cases.models import Contact, Organisation
    from sla.models import SlaClock
    from tests.factories import AgentFactory, ManagerFactory

    cases = clocks // len(TARGETS)
    have = SlaClock.objects.filter(case__title__startswith="bench-sla ").count()
    if have == cases * len(TARGETS) and not recreate:
        print(f"reusing {have:,} clocks")
        return
    started = time.perf_counter()
    agent = AgentFactory(username="bench-agent")
    ManagerFactory(username="bench-manager")
    org, _ = Organisation.objects.get_or_create(name="Bench SLA Ltd", defaults={"tier": "enterprise"})
    contact, _ = Contact.objects.get_or_create(
        organisation=org, email="bench@sla.example", defaults={"name": "Bench Contact"}
    )
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM core_notification WHERE dedupe_key LIKE 'sla:%'")
        cursor.execute(
            "DELETE FROM sla_slaclock WHERE case_id IN "
            "(SELECT id FROM cases_case WHERE title LIKE 'bench-sla %')"
        )
        # Timeline events are append-only (a trigger refuses DELETE), so old bench cases stay, closed.
        cursor.execute("UPDATE cases_case SET status = 'closed' WHERE title LIKE 'bench-sla %'")
        cursor.execute(
            """
            INSERT INTO cases_case (title, description, organisation_id, requester_id, severity,
                severity_confirmed, status, assignee_id, product_area, created_at, updated_at,
                reopen_count, version)
            SELECT 'bench-sla ' || g, '', %s, %s, 'P2', true, 'in_progress', %s, '',
                now() - interval '1 hour', now() - interval '1 hour', 0, 1
            FROM generate_series(1, %s) AS g
            """,
            [org.pk, contact.pk, agent.pk, cases],
        )
        # Due instants spread over the coming weeks; the warning 15 minutes before.
        cursor.execute(
            """
            INSERT INTO sla_slaclock (case_id, target, run, state, target_minutes, business_time,
                warning_ratio, started_at, due_at, warn_at, pauses, paused_total, consumed)
            SELECT c.id, t.target, 1, 'running', 60, false, 0.75, c.created_at,
                now() + interval '7 days' + mod(c.id, 40000) * interval '1 minute',
                now() + interval '7 days' + mod(c.id, 40000) * interval '1 minute' - interval '15 minutes',
                '[]'::jsonb, interval '0', interval '0'
            FROM cases_case c CROSS JOIN unnest(%s::text[]) AS t(target)
            WHERE c.title LIKE 'bench-sla %%' AND c.status = 'in_progress'
            """,
            [list(TARGETS)],
        )
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE sla_slaclock")
        cursor.execute("VACUUM ANALYZE cases_case")
    seconds = time.perf_counter() - started
    print(f"wrote {cases:,} cases and {cases * len(TARGETS):,} running clocks in {seconds:.1f}s")


def reset_and_make_due(due: int) -> None:
    """Undo the previous run, then make ``due`` clocks (spread over the table) due a minute ago."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM core_notification WHERE dedupe_key LIKE 'sla:%'")
        cursor.execute(
            """
            UPDATE sla_slaclock SET state = 'running', warned_at = NULL, breached_at = NULL,
                due_at = now() + interval '7 days' + mod(case_id, 40000) * interval '1 minute',
                warn_at = now() + interval '7 days' + mod(case_id, 40000) * interval '1 minute'
                    - interval '15 minutes'
            WHERE state <> 'running' OR warned_at IS NOT NULL OR due_at < now() + interval '1 day'
            """
        )
        if due:
            cursor.execute(
                """
                UPDATE sla_slaclock SET due_at = now() - interval '1 minute',
                    warn_at = now() - interval '16 minutes'
                WHERE id IN (SELECT id FROM sla_slaclock WHERE state = 'running'
                             ORDER BY hashint4(id::int) LIMIT %s)
                """,
                [due],
            )
        # As autovacuum would: drop the dead index entries the previous run left behind.
        cursor.execute("VACUUM ANALYZE sla_slaclock")


def explain(now) -> None:
    from django.db import connection

    from sla import services

    for phase in (services.BREACH, services.WARNING):
        qs = services.due_clocks(now=now, phase=phase).values_list("id", "case_id")[:200]
        sql, params = qs.query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", params)
            plan = "\n".join("    " + row[0] for row in cursor.fetchall())
        print(f"  EXPLAIN the {phase.name} candidates query:\n{plan}")


class QueryCounter:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        return execute(sql, params, many, context)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    setup_django()
    from django.db import connection
    from django.utils import timezone

    from sla import services
    from sla.models import SlaClock

    load(args.clocks, recreate=args.recreate)
    running = SlaClock.objects.filter(state="running").count()
    print(f"{running:,} running clocks; PostgreSQL {connection.pg_version}")
    for due in [int(x) for x in args.due.split(",") if x.strip()]:
        times, queries, recorded = [], 0, 0
        for _ in range(args.runs):
            reset_and_make_due(due)
            now = timezone.now()
            counter = QueryCounter()
            with connection.execute_wrapper(counter):
                started = time.perf_counter()
                recorded = services.record_due_warnings_and_breaches(now=now)
                times.append(time.perf_counter() - started)
            queries = counter.count
            assert recorded == due, (recorded, due)
        median = statistics.median(times)
        per = f", {median / due * 1000:.2f} ms per breach" if due else ""
        print(
            f"\n{due:>6,} due of {running:,}: median {median * 1000:,.1f} ms over {args.runs} runs "
            f"(min {min(times) * 1000:,.1f}, max {max(times) * 1000:,.1f}){per}; {queries:,} queries; "
            f"{recorded:,} breaches recorded"
        )
        reset_and_make_due(due)
        explain(timezone.now())
    reset_and_make_due(0)


if __name__ == "__main__":
    main()
