#!/usr/bin/env python
"""Latency of case search at volume (a script, not a test).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_cases DEBUG=false SECRET_KEY=bench \\
        ALLOWED_HOSTS=testserver .venv/bin/python bench/bench_search.py --count 1000000

Works on the database ``bench/bench_cases.py`` fills (or fills one the same way): creates it if
missing, migrates it, adds missing cases with ``manage.py generate_cases`` (existing ones are kept;
``--recreate`` drops a database whose name contains "bench" first). ``generate_cases`` bypasses the
services, so the search documents of cases that have none are then written with the same SQL the
application uses (cases/search.py), in batches; when most are missing, the GIN indexes are dropped
first and rebuilt after (far quicker than updating them row by row).

A few open cases get a public reply with a rare word through the services (the write path agents
use). Then, logged in as an agent, the script requests the search page and the search API for a rare
word, a common word (the most frequent lexeme of a sample of the documents), the busiest
organisation's name, a part of that name (trigram match) and the common word with a status filter:
``--warmup`` untimed and ``--requests`` timed requests each; it prints median and p95 latency, the
query count and the SQL time of one captured request, then ``EXPLAIN (ANALYZE, BUFFERS)`` of the
slowest query of the slowest row (and of every row slower than ``--explain-over`` ms).
"""

from __future__ import annotations

import argparse
import logging
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

RARE_WORD = "xylophonist"
RARE_CASES = 5


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1_000_000, help="cases to benchmark against")
    parser.add_argument(
        "--reuse", action="store_true", help="keep the database and its cases (the default; for symmetry)"
    )
    parser.add_argument(
        "--recreate", action="store_true", help="drop the database first (its name must contain 'bench')"
    )
    parser.add_argument("--batch", type=int, default=50_000, help="generate_cases batch size")
    parser.add_argument("--seed", type=int, default=1, help="generate_cases seed")
    parser.add_argument("--index-batch", type=int, default=50_000, help="case ids per document batch")
    parser.add_argument("--requests", type=int, default=30, help="timed requests per row (default 30)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed requests first (default 3)")
    parser.add_argument(
        "--explain-over",
        type=float,
        default=100.0,
        help="also EXPLAIN every row slower than this (ms median)",
    )
    return parser.parse_args(argv)


COUNT_RE = re.compile(r'id="search-count"[^>]*>\s*(?:More than )?([\d,]+) case')


def page_count(response) -> int:
    match = COUNT_RE.search(response.content.decode())
    return int(match.group(1).replace(",", "")) if match else -1


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile (p95 of 30 samples is the 29th smallest)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(share * len(ordered) + 0.5)))
    return ordered[rank - 1]


def build_documents(connection, *, batch: int) -> None:
    """Write the search documents of the cases that have none (the application's own statement)."""
    from django.db.models import Max, Min

    from cases import search
    from cases.models import Case, CaseSearchDocument

    table = CaseSearchDocument._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*) FROM cases_case c WHERE NOT EXISTS "  # noqa: S608 - fixed names
            f"(SELECT 1 FROM {table} d WHERE d.case_id = c.id)"
        )
        missing = cursor.fetchone()[0]
    total = Case.objects.count()
    if not missing:
        print(f"Search documents: all {total:,} cases have one.")
        return
    started = time.monotonic()
    bulk = missing > total // 5
    if bulk:
        with connection.cursor() as cursor:
            for name in search.INDEXES:
                cursor.execute(f"DROP INDEX IF EXISTS {name}")
    where = (
        f"c.id >= %(low)s AND c.id < %(high)s AND NOT EXISTS (SELECT 1 FROM {table} x WHERE x.case_id = c.id)"
    )
    sql = search.document_sql(where)
    bounds = Case.objects.aggregate(low=Min("pk"), high=Max("pk"))
    written = 0
    for low in range(bounds["low"], bounds["high"] + 1, batch):
        with connection.cursor() as cursor:
            cursor.execute(sql, search.document_params(low=low, high=low + batch))
            written += cursor.rowcount
        print(f"  {written:,} of {missing:,} documents written", file=sys.stderr)
    built = time.monotonic()
    print(f"Search documents: {written:,} written in {built - started:.1f} s.")
    with connection.cursor() as cursor:
        if bulk:
            cursor.execute("SET maintenance_work_mem = '1GB'")
            for name, definition in search.INDEXES.items():
                t0 = time.monotonic()
                cursor.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {table} {definition}")
                print(f"  index {name} built in {time.monotonic() - t0:.1f} s")
        cursor.execute(f"VACUUM (ANALYZE) {table}")
    print(f"Search indexes and statistics ready in {time.monotonic() - built:.1f} s.")


def plant_rare_word(connection) -> None:
    """A reply with ``RARE_WORD`` on a few open cases, through the services (once)."""
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from cases import services
    from cases.models import OPEN_Q, Case, CaseSearchDocument

    found = CaseSearchDocument.objects.filter(public_vector=_query(RARE_WORD)).count()
    if found:
        print(f"'{RARE_WORD}' is in {found} cases already.")
        return
    actor = get_user_model().objects.get(username="bench-agent-001")
    open_ids = list(Case.objects.filter(OPEN_Q).order_by("id").values_list("id", flat=True))
    ids = open_ids[:: max(1, len(open_ids) // RARE_CASES)][:RARE_CASES]
    now = timezone.now()
    for case in Case.objects.filter(pk__in=ids):
        services.add_public_reply(
            case, body=f"The {RARE_WORD} module was restarted; please check again.", actor=actor, now=now
        )
    print(f"Planted '{RARE_WORD}' in a reply on {len(ids)} open cases.")


def _query(text: str):
    from django.contrib.postgres.search import SearchQuery

    from cases import search

    return SearchQuery(text, search_type="websearch", config=search.SEARCH_CONFIG)


def common_word(connection) -> tuple[str, int]:
    """The lexeme in most documents of a 1 % sample that a query for it finds as itself."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT word, ndoc FROM ts_stat($$SELECT public_vector FROM cases_casesearchdocument "
            "TABLESAMPLE SYSTEM (1) REPEATABLE (7)$$) WHERE length(word) >= 5 AND word ~ '^[a-z]+$' "
            "ORDER BY ndoc DESC LIMIT 40"
        )
        candidates = cursor.fetchall()
        for word, ndoc in candidates:
            cursor.execute("SELECT websearch_to_tsquery('english', %s)::text", [word])
            if cursor.fetchone()[0] == f"'{word}'":
                return word, ndoc
    return "please", 0


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    url = os.environ.get("DATABASE_URL", "")
    if not url:
        sys.exit("Set DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_cases")
    ensure_database(url, recreate=args.recreate, script="bench_search.py")

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "supportdesk.settings")
    import django

    django.setup()

    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.db.models import Count
    from django.test import Client
    from django.test.utils import CaptureQueriesContext, override_settings

    from cases.models import Case, CaseEvent
    from cases.search import SEARCH_LIMIT

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

    build_documents(connection, batch=args.index_batch)
    plant_rare_word(connection)
    total_cases = Case.objects.count()
    events = CaseEvent.objects.count()
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        version = cursor.fetchone()[0]
        cursor.execute("SELECT pg_size_pretty(pg_total_relation_size('cases_casesearchdocument'))")
        size = cursor.fetchone()[0]
    print(f"\nPostgreSQL {version}: {total_cases:,} cases, {events:,} events; search documents {size}.")

    word, ndoc = common_word(connection)
    organisation = (Case.objects.values("organisation__name").annotate(n=Count("id")).order_by("-n").first())[
        "organisation__name"
    ]
    partial = organisation.split()[0][:-1].lower()  # "Acorn Logistics" -> "acor"
    print(f"Common word: '{word}' (in {ndoc:,} documents of a 1 % sample); organisation: '{organisation}'.")

    viewer = get_user_model().objects.filter(username="bench-agent-001").first()
    if viewer is None:
        sys.exit("No bench-agent-001 user: generate_cases creates it.")
    client = Client()
    client.force_login(viewer)
    logging.getLogger("supportdesk.request").setLevel(logging.WARNING)  # one line per request otherwise
    searches = [
        ("rare word", {"q": RARE_WORD}),
        ("common word", {"q": word}),
        ("organisation name", {"q": organisation}),
        ("part of a name", {"q": partial}),
        ("common word, status=in_progress", {"q": word, "status": "in_progress"}),
    ]
    endpoints = [("page", "/cases/search/"), ("api", "/api/cases/search/")]
    headers = {"api": {"HTTP_ACCEPT": "application/json"}, "page": {}}

    def get(endpoint: str, path: str):
        response = client.get(path, **headers[endpoint])
        if response.status_code != 200:
            raise SystemExit(f"GET {path} -> {response.status_code}: {response.content[:500]!r}")
        return response

    plain_static = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    rows = []
    with override_settings(STORAGES=plain_static):
        for endpoint, base in endpoints:
            for label, params in searches:
                path = f"{base}?{urlencode(params)}"
                for _ in range(args.warmup):
                    get(endpoint, path)
                timings = []
                for _ in range(args.requests):
                    started = time.perf_counter()
                    get(endpoint, path)
                    timings.append((time.perf_counter() - started) * 1000)
                with CaptureQueriesContext(connection) as captured:
                    response = get(endpoint, path)
                matches = response.json()["count"] if endpoint == "api" else page_count(response)
                rows.append(
                    {
                        "endpoint": base,
                        "search": label,
                        "matches": matches,
                        "median": statistics.median(timings),
                        "p95": percentile(timings, 0.95),
                        "queries": len(captured.captured_queries),
                        "db": sum(float(q.get("time") or 0) for q in captured.captured_queries) * 1000,
                        "sql": list(captured.captured_queries),
                    }
                )
                print(f"  measured {base} {label}", file=sys.stderr)

    print(
        f"\n{'endpoint':<20} {'search':<34} {'ranked':>7} {'median ms':>10} {'p95 ms':>8} "
        f"{'queries':>8} {'db ms':>7}"
    )
    print("-" * 100)
    for row in rows:
        print(
            f"{row['endpoint']:<20} {row['search']:<34} {row['matches']:>7} {row['median']:>10.1f} "
            f"{row['p95']:>8.1f} {row['queries']:>8} {row['db']:>7.1f}"
        )
    print(f"('ranked' stops at the search limit of {SEARCH_LIMIT}; the rare word is planted in a few.)")

    slowest = max(rows, key=lambda r: r["median"])
    to_explain = [slowest] + [r for r in rows if r["median"] > args.explain_over and r is not slowest]
    for row in to_explain:
        query = max(row["sql"], key=lambda q: float(q.get("time") or 0))
        title = "Slowest" if row is slowest else f"Over {args.explain_over:.0f} ms"
        print(
            f"\n{title}: {row['endpoint']} {row['search']} (median {row['median']:.1f} ms); its slowest query"
        )
        print(f"({query['time']} s):\n{query['sql']}\n")
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + query["sql"])
            for (line,) in cursor.fetchall():
                print(line)


if __name__ == "__main__":
    main()
