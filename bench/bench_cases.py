#!/usr/bin/env python
"""Latency of the case list API and the queue page at volume (a script, not a test).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_cases DEBUG=false SECRET_KEY=bench \\
        ALLOWED_HOSTS=testserver .venv/bin/python bench/bench_cases.py --count 1000000 [--reuse]

Creates the database if it is missing, migrates it, loads ``--count`` cases with
``manage.py generate_cases`` (without ``--reuse`` the benchmark database is dropped and loaded
afresh; with it, existing cases are kept and only missing ones are added), then requests each
endpoint with each filter through Django's test client as a logged-in agent and prints median and
p95 latency and the query count, plus ``EXPLAIN ANALYZE`` of the slowest query of the slowest row
(and of every row slower than ``--explain-over`` ms). See bench/README.md.
"""

from __future__ import annotations

import argparse
import html
import os
import re
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import ensure_database  # noqa: E402 - after the path is set


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1_000_000, help="cases to benchmark against")
    parser.add_argument("--reuse", action="store_true", help="keep the database; only add missing cases")
    parser.add_argument("--batch", type=int, default=50_000, help="generate_cases batch size")
    parser.add_argument("--seed", type=int, default=1, help="generate_cases seed")
    parser.add_argument("--requests", type=int, default=30, help="timed requests per row (default 30)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed requests first (default 3)")
    parser.add_argument(
        "--deep", type=int, default=20, help="follow `next` this many times for the deep page"
    )
    parser.add_argument(
        "--explain-over",
        type=float,
        default=100.0,
        help="also EXPLAIN every row slower than this (ms median)",
    )
    return parser.parse_args(argv)


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile (p95 of 30 samples is the 29th smallest)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(share * len(ordered) + 0.5)))
    return ordered[rank - 1]


NEXT_LINK = re.compile(r'<a href="([^"]*)" rel="next"')


def next_url(endpoint: str, response) -> str | None:
    if endpoint == "api":
        return response.json()["next"]
    match = NEXT_LINK.search(response.content.decode())
    if match is None:
        return None
    href = html.unescape(match.group(1))
    return "/cases/" + href if href.startswith("?") else href


# generate_cases writes no SLA clocks, so the open cases get the urgency columns the SLA app would
# keep, spread as a busy queue has them (deterministic by id): 15 % breached (due up to 3 days ago),
# 10 % at risk (due within 2 h), 60 % on track (due within 5 days), 15 % paused (nothing due).
FILL_URGENCY = """
UPDATE cases_case SET
  next_due_at = CASE
    WHEN (id * 7919) % 100 < 15 THEN now() - ((id * 31) % 4320) * interval '1 minute'
    WHEN (id * 7919) % 100 < 25 THEN now() + ((id * 31) % 120) * interval '1 minute'
    WHEN (id * 7919) % 100 < 85 THEN now() + (120 + (id * 31) % 7080) * interval '1 minute'
  END,
  next_due_target = CASE WHEN (id * 7919) % 100 < 85 THEN 'resolution' ELSE '' END,
  next_due_state = CASE
    WHEN (id * 7919) % 100 < 15 THEN 'breached'
    WHEN (id * 7919) % 100 < 25 THEN 'at_risk'
    WHEN (id * 7919) % 100 < 85 THEN 'on_track'
    ELSE 'paused'
  END
WHERE status IN ('new', 'triaged', 'in_progress', 'waiting_on_customer', 'waiting_on_engineering', 'reopened')
  AND next_due_state = 'none'
"""


def fill_urgency(connection) -> None:
    started = time.monotonic()
    with connection.cursor() as cursor:
        cursor.execute(FILL_URGENCY)
        filled = cursor.rowcount
        cursor.execute("VACUUM (ANALYZE) cases_case")
    if filled:
        print(f"Urgency of {filled:,} open cases filled in {time.monotonic() - started:.1f} s.")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    url = os.environ.get("DATABASE_URL", "")
    if not url:
        sys.exit("Set DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_cases")
    ensure_database(url, recreate=not args.reuse, script="bench_cases.py")

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "supportdesk.settings")
    import django

    django.setup()

    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.db.models import Count
    from django.test import Client
    from django.test.utils import CaptureQueriesContext, override_settings

    from cases.models import OPEN_Q, Case, CaseEvent

    call_command("migrate", verbosity=0)
    existing = Case.objects.count()
    if existing >= args.count:
        print(f"Reusing {existing:,} cases.")
    else:
        missing = args.count - existing
        print(f"Loading {missing:,} cases with generate_cases ...")
        started = time.monotonic()
        call_command("generate_cases", count=missing, batch=args.batch, seed=args.seed + existing)
        print(f"Load time: {time.monotonic() - started:.1f} s for {missing:,} cases.")

    fill_urgency(connection)
    total_cases = Case.objects.count()
    open_cases = Case.objects.filter(OPEN_Q).count()
    events = CaseEvent.objects.count()
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        version = cursor.fetchone()[0]
    print(f"\nPostgreSQL {version}: {total_cases:,} cases ({open_cases:,} open), {events:,} events.")

    # The busiest agent and team, so their filters select a realistic share of rows.
    busiest = (
        Case.objects.filter(assignee__isnull=False)
        .values("assignee__username")
        .annotate(n=Count("id"))
        .order_by("-n")
        .first()
    )
    team = (
        Case.objects.filter(team__isnull=False)
        .values("team__slug")
        .annotate(n=Count("id"))
        .order_by("-n")
        .first()
    )
    organisation = Case.objects.values("organisation__name").annotate(n=Count("id")).order_by("-n").first()
    assignee = busiest["assignee__username"] if busiest else "bench-agent-001"
    team_slug = team["team__slug"] if team else "tier-1"
    org_id = Case.objects.filter(organisation__name=organisation["organisation__name"]).values_list(
        "organisation_id", flat=True
    )[0]

    viewer = get_user_model().objects.filter(username="bench-agent-001").first()
    if viewer is None:
        sys.exit("No bench-agent-001 user: generate_cases creates it.")
    client = Client()
    client.force_login(viewer)

    filters: list[tuple[str, dict[str, str]]] = [
        ("none", {}),
        ("severity=P1", {"severity": "P1"}),
        ("tier=enterprise", {"tier": "enterprise"}),
        (f"assignee={assignee}", {"assignee": assignee}),
        ("unassigned=true", {"unassigned": "true"}),
        (f"team={team_slug}", {"team": team_slug}),
        ("status=in_progress", {"status": "in_progress"}),
        ("organisation (busiest)", {"organisation": str(org_id)}),
    ]
    endpoints = [("api", "/api/cases/"), ("queue", "/cases/")]
    headers = {"api": {"HTTP_ACCEPT": "application/json"}, "queue": {}}

    def get(endpoint: str, path: str):
        response = client.get(path, **headers[endpoint])
        if response.status_code != 200:
            raise SystemExit(f"GET {path} -> {response.status_code}: {response.content[:500]!r}")
        return response

    rows = []
    # No static-files manifest is needed to measure queries and rendering (DEBUG=false would
    # otherwise require collectstatic).
    plain_static = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    with override_settings(STORAGES=plain_static):
        for endpoint, base in endpoints:
            targets = [
                (label, base + ("?" + urlencode(params) if params else "")) for label, params in filters
            ]
            # A deep page: the unfiltered list after following `next` --deep times.
            path = base
            for _ in range(args.deep):
                following = next_url(endpoint, get(endpoint, path))
                if following is None:
                    break
                path = following
            targets.append((f"page {args.deep + 1} via next", path))
            for label, path in targets:
                for _ in range(args.warmup):
                    get(endpoint, path)
                timings = []
                for _ in range(args.requests):
                    started = time.perf_counter()
                    get(endpoint, path)
                    timings.append((time.perf_counter() - started) * 1000)
                with CaptureQueriesContext(connection) as captured:
                    get(endpoint, path)
                rows.append(
                    {
                        "endpoint": base,
                        "filter": label,
                        "median": statistics.median(timings),
                        "p95": percentile(timings, 0.95),
                        "queries": len(captured.captured_queries),
                        "db": sum(float(q.get("time") or 0) for q in captured.captured_queries) * 1000,
                        "sql": list(captured.captured_queries),
                    }
                )
                print(f"  measured {base} {label}", file=sys.stderr)

    # "db ms": time spent in SQL during one extra (captured) request; the rest is Python.
    print(f"\n{'endpoint':<12} {'filter':<28} {'median ms':>10} {'p95 ms':>10} {'queries':>8} {'db ms':>8}")
    print("-" * 81)
    for row in rows:
        print(
            f"{row['endpoint']:<12} {row['filter']:<28} {row['median']:>10.1f} {row['p95']:>10.1f} "
            f"{row['queries']:>8} {row['db']:>8.1f}"
        )

    slowest = max(rows, key=lambda r: r["median"])
    to_explain = [slowest] + [r for r in rows if r["median"] > args.explain_over and r is not slowest]
    for row in to_explain:
        query = max(row["sql"], key=lambda q: float(q.get("time") or 0))
        title = "Slowest" if row is slowest else f"Over {args.explain_over:.0f} ms"
        print(
            f"\n{title}: {row['endpoint']} {row['filter']} (median {row['median']:.1f} ms); its slowest query"
        )
        print(f"({query['time']} s):\n{query['sql']}\n")
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + query["sql"])
            for (line,) in cursor.fetchall():
                print(line)


if __name__ == "__main__":
    main()
