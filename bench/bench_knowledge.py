#!/usr/bin/env python
"""Latency of knowledge search at volume on PostgreSQL (a script, not a test).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_knowledge SECRET_KEY=bench \\
        ALLOWED_HOSTS=testserver .venv/bin/python bench/bench_knowledge.py --count 100000 [--reuse]

Creates the database if it is missing (without ``--reuse`` it is dropped and loaded afresh), migrates
it, loads ``--count`` generated articles and runbooks with COPY, fills their search vectors with one
UPDATE (the same weighted expression the app stores) and ANALYZEs. Then, for about twenty realistic
queries, it times what the search page does (the matching count plus the first 20 ranked results with
their highlighted snippets) and the same search through ``/api/knowledge/articles/?q=``, and prints
the median and p95 latency per query and over all of them, plus the case-page suggestions.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import ensure_database  # noqa: E402 - after the path is set

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/bench_knowledge"

QUERIES = [
    "sso login",
    "password reset",
    "webhook signature",
    "invoice currency",
    "api rate limit 429",
    "export csv",
    "timeout",
    '"certificate rotation"',
    "mobile app crash",
    "two factor authentication",
    "refund billing",
    "slow dashboard",
    "email not delivered",
    "ldap sync",
    "permission denied",
    "upload fails large file",
    "database connection pool",
    "gdpr data retention",
    "kubernetes node drain",
    "saml -okta",
]

CASES = [
    (
        "Users cannot log in with SSO after certificate rotation",
        "Every SSO login fails with invalid signature.",
    ),
    ("Webhook deliveries fail with 401", "Since the key rotation our endpoint rejects the signature header."),
    ("Invoice shows wrong currency", "The March invoice is in USD but our account is billed in EUR."),
]

PRODUCTS = [
    (
        "identity",
        ["SSO", "SAML", "Okta", "Azure AD", "LDAP sync", "two factor authentication", "password reset"],
    ),
    ("billing", ["invoice", "refund", "currency", "credit card", "VAT number", "subscription plan"]),
    ("integrations", ["webhook", "API", "rate limit", "OAuth token", "Slack app", "Zapier"]),
    ("reporting", ["dashboard", "CSV export", "scheduled report", "chart", "PDF export"]),
    ("mobile", ["mobile app", "push notification", "iOS", "Android", "offline mode"]),
    ("platform", ["database connection pool", "Kubernetes node", "timeout", "upload", "storage quota"]),
    ("email", ["email delivery", "SPF record", "DKIM", "bounce", "mailbox"]),
    ("privacy", ["GDPR", "data retention", "audit log", "data export request", "deletion request"]),
]
SYMPTOMS = [
    "fails with an error",
    "is slow",
    "times out",
    "returns 401",
    "returns 429",
    "returns 500",
    "crashes on start",
    "shows the wrong value",
    "stops syncing",
    "is not delivered",
    "is rejected",
    "is missing after upgrade",
]
CAUSES = [
    "after certificate rotation",
    "after the upgrade",
    "for large files",
    "behind a proxy",
    "for some users",
    "after a password change",
    "when the token expires",
    "in the EU region",
    "on the first login",
    "during peak hours",
]
STEPS = [
    "Check the {p} settings in the admin console and compare them with the values below.",
    "Ask the customer for the request ID and the exact time of the failing {p} call.",
    "Open the audit log, filter by the user, and look for {p} events around that time.",
    "If the {p} error persists, clear the cache and retry the operation once.",
    "Rotate the credentials used by the {p} integration and update the stored secret.",
    "Confirm the customer's plan includes {p}; otherwise the request is refused by design.",
    "Collect the browser console output and a HAR file while reproducing the {p} problem.",
    "Escalate to engineering with the correlation ID if the {p} failure affects many users.",
    "Verify the clock of the identity provider: a drift of minutes breaks {p} signatures.",
    "Increase the timeout for {p} requests only after checking the server-side latency.",
    "Remove the stale {p} configuration and let the sync job recreate it.",
    "Tell the customer that {p} changes can take up to fifteen minutes to apply.",
]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=100_000, help="articles to search (default 100000)")
    parser.add_argument("--reuse", action="store_true", help="keep the database; only add missing articles")
    parser.add_argument("--requests", type=int, default=30, help="timed runs per query (default 30)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs first (default 3)")
    parser.add_argument("--seed", type=int, default=7)
    return parser.parse_args(argv)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(share * (len(ordered) - 1))))
    return ordered[index]


def _jargon(rng: random.Random, size: int = 4000) -> list[str]:
    """Made-up identifiers (error codes, hostnames, settings) so the index has a realistic vocabulary."""
    syllables = ["ka", "lo", "mi", "ten", "rax", "vel", "dor", "qui", "sen", "tor", "bel", "nix", "pra", "zu"]
    words = set()
    while len(words) < size:
        words.add("".join(rng.choice(syllables) for _ in range(rng.randint(2, 4))) + str(rng.randint(0, 99)))
    return sorted(words)


def generate_rows(start: int, count: int, *, seed: int, owner_id: int, now):
    """Rows for COPY into knowledge_article: realistic titles and Markdown bodies of 150-400 words."""
    import datetime as dt

    rng = random.Random(seed * 1_000_003 + start)
    jargon = _jargon(random.Random(seed))
    statuses = ["published"] * 14 + ["draft"] * 3 + ["in_review"] * 2 + ["retired"]
    for n in range(start, start + count):
        area, topics = rng.choice(PRODUCTS)
        topic = rng.choice(topics)
        title = f"{topic[0].upper()}{topic[1:]} {rng.choice(SYMPTOMS)} {rng.choice(CAUSES)}"
        kind = "runbook" if rng.random() < 0.4 else "article"
        paragraphs = [f"## Symptoms\n\nThe {topic} {rng.choice(SYMPTOMS)} {rng.choice(CAUSES)}."]
        steps = [rng.choice(STEPS).format(p=rng.choice(topics)) for _ in range(rng.randint(4, 9))]
        paragraphs.append("## Steps\n\n" + "\n".join(f"{i}. {s}" for i, s in enumerate(steps, 1)))
        notes = " ".join(
            f"Seen with `{rng.choice(jargon)}` on {rng.choice(jargon)}." for _ in range(rng.randint(3, 10))
        )
        paragraphs.append(f"## Notes\n\n{notes}")
        body = "\n\n".join(paragraphs)
        status = rng.choice(statuses)
        updated = now - dt.timedelta(minutes=rng.randint(0, 60 * 24 * 720))
        published = updated if status in ("published", "retired") else None
        yield [
            kind,
            title,
            f"bench-{n}",
            body,
            area,
            owner_id,
            status,
            1,
            updated.isoformat(),
            updated.isoformat(),
            published.isoformat() if published else "",
            180,
            (published + dt.timedelta(days=180)).isoformat() if published else "",
            1 if published else 0,
        ]


COLUMNS = [
    "kind",
    "title",
    "slug",
    "body_markdown",
    "product_area",
    "owner_id",
    "status",
    "current_revision",
    "created_at",
    "updated_at",
    "published_at",
    "review_interval_days",
    "review_due_at",
    "review_cycle",
]


def load(count: int, *, seed: int) -> None:
    from django.db import connection, transaction
    from django.utils import timezone

    from knowledge.models import Article
    from knowledge.selectors import search_vector_expression
    from tests import factories

    existing = Article.objects.count()
    if existing >= count:
        print(f"{existing:,} articles already loaded")
        return
    owner = factories.AgentFactory(username="bench-author")
    now = timezone.now()
    started = time.perf_counter()
    batch = 20_000
    with transaction.atomic():
        for start in range(existing, count, batch):
            size = min(batch, count - start)
            buffer = io.StringIO()
            writer = csv.writer(buffer)
            writer.writerows(generate_rows(start, size, seed=seed, owner_id=owner.pk, now=now))
            buffer.seek(0)
            with connection.cursor() as cursor:
                cursor.copy_expert(
                    f"COPY knowledge_article ({', '.join(COLUMNS)}) FROM STDIN WITH (FORMAT csv)",  # noqa: S608
                    buffer,
                )
        loaded = time.perf_counter() - started
        # One UPDATE with the same weighted expression the app keeps up to date on every save.
        Article.objects.filter(search_vector__isnull=True).update(search_vector=search_vector_expression())
    vectors = time.perf_counter() - started - loaded
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE knowledge_article")
    print(f"loaded {count - existing:,} articles in {loaded:.1f} s; search vectors in {vectors:.1f} s")


def timed(fn, *, warmup: int, runs: int) -> list[float]:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    url = os.environ.setdefault("DATABASE_URL", DEFAULT_URL)
    os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-not-for-production-0123456789")
    os.environ.setdefault("ALLOWED_HOSTS", "testserver")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "supportdesk.settings")
    ensure_database(url, recreate=not args.reuse, script="bench_knowledge.py")

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext, override_settings
    from django.urls import clear_url_caches

    from cases.models import Case, Contact
    from knowledge import selectors
    from knowledge.pagination import CappedCountPaginator
    from tests import factories

    call_command("migrate", verbosity=0)
    load(args.count, seed=args.seed)

    def search_page(q: str) -> None:
        """What the search page does: the (capped) count and the first 20 ranked rows with snippets."""
        page = CappedCountPaginator(selectors.search_articles(q), 20).get_page(1)
        for article in page.object_list:
            selectors.snippet_html(article, q)

    client = Client()
    agent = factories.AgentFactory(username="bench-reader")
    client.force_login(agent)

    rows = []
    all_page, all_api = [], []
    with override_settings(DEBUG=False):
        clear_url_caches()
        for q in QUERIES:
            matches = selectors.search_articles(q).count()
            page = timed(lambda q=q: search_page(q), warmup=args.warmup, runs=args.requests)

            def api_call(q=q):
                response = client.get("/api/knowledge/articles/", {"q": q})
                assert response.status_code == 200, response.content[:300]

            api = timed(api_call, warmup=args.warmup, runs=args.requests)
            with CaptureQueriesContext(connection) as captured:
                api_call()
            all_page += page
            all_api += api
            rows.append((q, matches, page, api, len(captured.captured_queries)))
    clear_url_caches()

    def ms(samples: list[float]) -> str:
        return f"{statistics.median(samples):8.1f} {percentile(samples, 0.95):7.1f}"

    version = connection.pg_version // 10000
    print(f"\nPostgreSQL {version}, {args.count:,} articles, {args.requests} runs per query; times in ms")
    print(f"{'query':<28} {'matches':>8} {'page p50':>8} {'p95':>7} {'API p50':>8} {'p95':>7} {'queries':>7}")
    for q, matches, page, api, queries in rows:
        print(f"{q:<28} {matches:>8,} {ms(page)} {ms(api)} {queries:>7}")
    print(f"{'ALL QUERIES':<28} {'':>8} {ms(all_page)} {ms(all_api)}")

    print("\nCase-page suggestions (suggest_for_case, 5 results)")
    organisation = factories.OrganisationFactory(name="Bench Org")
    contact, _ = Contact.objects.get_or_create(
        organisation=organisation, email="bench@customer.example", defaults={"name": "Bench Contact"}
    )
    everything: list[float] = []
    for title, description in CASES:
        case = Case(title=title, description=description, organisation=organisation, requester=contact, pk=0)
        samples = timed(
            lambda case=case: selectors.suggest_for_case(case), warmup=args.warmup, runs=args.requests
        )
        everything += samples
        print(f"  {title[:55]:<55} {ms(samples)}")
    print(f"  {'ALL':<55} {ms(everything)}")


if __name__ == "__main__":
    main()
