#!/usr/bin/env python
"""Latency of the metrics API (/api/metrics/...) at volume, next to hand-written SQL (a script, not a test).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_metrics DEBUG=false SECRET_KEY=bench \\
        ALLOWED_HOSTS=testserver .venv/bin/python bench/bench_metrics.py --count 1000000 [--reuse]

Creates the database if it is missing, migrates it, loads ``--count`` cases with their timelines
through ``manage.py generate_cases`` (without ``--reuse`` the benchmark database is dropped and
loaded afresh; with it, existing cases are kept and only missing ones are added), then writes what
the generator leaves out, one set-based ``INSERT ... SELECT`` each: the SLA clocks of every case
(first response, triage, resolution with a second run after a reopen, update-cadence runs of P1/P2
cases), escalations for a few % of the triaged cases, knowledge-article links for some resolved
cases and CSAT surveys for the resolved ones (about a quarter answered). Those rows are written when
their table is empty; ``--redo-extras`` rewrites them.

Then, as a logged-in manager through Django's test client, it requests each dashboard endpoint
(summary for a 90-day, a 7-day and a two-year period, with a team and a severity filter; 12-week trends;
backlog; the drill-down of a few figures), and prints median and p95 latency and the query count.
For comparison it times, the same way, one hand-written SQL query per figure and prints both side
by side, checks that both give the same numbers, and prints ``EXPLAIN (ANALYZE, BUFFERS)`` of the
slowest query of the slowest endpoint (and of every endpoint slower than ``--explain-over`` ms).
See bench/README.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import ensure_database  # noqa: E402 - after the path is set

MANAGER = "bench-manager"
ENGINEERING_TEAMS = ("Payments Engineering", "Platform Engineering", "Mobile Engineering", "Data Engineering")
ARTICLES = 40


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1_000_000, help="cases to benchmark against")
    parser.add_argument("--reuse", action="store_true", help="keep the database; only add missing rows")
    parser.add_argument(
        "--redo-extras", action="store_true", help="rewrite clocks, escalations, links, surveys"
    )
    parser.add_argument("--batch", type=int, default=50_000, help="generate_cases batch size")
    parser.add_argument("--seed", type=int, default=1, help="generate_cases seed")
    parser.add_argument("--requests", type=int, default=10, help="timed requests per row (default 10)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed requests first (default 2)")
    parser.add_argument(
        "--explain-over",
        type=float,
        default=300.0,
        help="also EXPLAIN every row slower than this (ms median)",
    )
    parser.add_argument("--rebuild-rollup", action="store_true", help="rebuild the metrics rollup")
    parser.add_argument("--only", default="", help="measure only rows whose label contains this text")
    return parser.parse_args(argv)


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile (p95 of 10 samples is the largest)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(share * len(ordered))))
    return ordered[rank - 1]


# --- the rows the generator does not write ---------------------------------------------------------


def pick(column: str, salt: int) -> str:
    """A reproducible pseudo-random per-mille (0-999) of an id, different for every ``salt``."""
    return f"mod(abs(hashint8({column} * 7919 + {salt})::bigint), 1000)"


CLOCK_COLUMNS = """case_id, target, run, state, policy_id, target_minutes, business_time, warning_ratio,
    started_at, due_at, warn_at, paused_at, remaining_at_pause, pauses, paused_total, consumed,
    warned_at, met_at, breached_at, cancelled_at"""

# From the inner query's started, due, done (met at), ended (obligation ended unmet), state: the row.
CLOCK_VALUES = """case_id, target, run, state, policy_id, minutes, business_time, warning_ratio,
    started, due, warn,
    CASE WHEN state = 'paused' THEN updated_at END,
    CASE WHEN state = 'paused' THEN greatest(due - updated_at, interval '0') END,
    '[]'::jsonb, interval '0', consumed,
    CASE WHEN warn < coalesce(done, ended, now()) THEN warn END,
    done,
    CASE WHEN state = 'breached' THEN due END,
    CASE WHEN state = 'cancelled' THEN ended END"""

# Met on time, met late (breached, met_at kept), missed while still open or before the obligation
# ended, ended unmet (cancelled), paused while waiting on the customer, else running.
CLOCK_STATE = """CASE
        WHEN x.done IS NOT NULL THEN CASE WHEN x.done <= x.due THEN 'met' ELSE 'breached' END
        WHEN x.due < coalesce(x.ended, now()) THEN 'breached'
        WHEN x.ended IS NOT NULL THEN 'cancelled'
        WHEN c.status = 'waiting_on_customer' THEN 'paused'
        ELSE 'running'
    END"""

# Business-time targets stretch over opening hours: about three calendar minutes per business minute.
STRETCH = "CASE WHEN p.business_time THEN 3 ELSE 1 END"
POLICY_JOIN = """JOIN cases_organisation o ON o.id = c.organisation_id
    JOIN sla_slapolicy p ON p.tier = o.tier AND p.severity = c.severity"""


def clock_sql(target: str) -> str:
    """One INSERT ... SELECT per target: the clocks of every case, consistent with its timestamps.
    ``resolution_rerun`` is run 2 of the resolution target, for reopened cases."""
    name = "resolution" if target == "resolution_rerun" else target
    minutes = f"p.{name}_minutes"
    inner_common = f"""c.id AS case_id, '{name}' AS target, c.updated_at, p.id AS policy_id,
        {minutes} AS minutes, p.business_time, p.warning_ratio"""
    if target in ("first_response", "triage", "resolution"):
        done = {
            "first_response": "c.first_response_at",
            "triage": "c.triaged_at",
            "resolution": "c.first_resolved_at",
        }[target]
        # A first response or triage that never happened ends (unmet) with the first resolution.
        ended = "NULL::timestamptz" if target == "resolution" else "c.first_resolved_at"
        return f"""
        INSERT INTO sla_slaclock ({CLOCK_COLUMNS})
        SELECT {CLOCK_VALUES} FROM (
            SELECT {inner_common}, 1 AS run, c.created_at AS started, x.due, x.done, x.ended,
                x.due - (1 - p.warning_ratio) * (x.due - c.created_at) AS warn,
                interval '0' AS consumed, {CLOCK_STATE} AS state
            FROM cases_case c {POLICY_JOIN}
            CROSS JOIN LATERAL (
                SELECT c.created_at + {minutes} * {STRETCH} * interval '1 minute' AS due,
                    {done} AS done, {ended} AS ended
            ) x
            WHERE {minutes} IS NOT NULL
        ) s"""
    if target == "resolution_rerun":
        # A reopened case's resolution starts run 2 at the (first) reopen, with the time used so far.
        return f"""
        INSERT INTO sla_slaclock ({CLOCK_COLUMNS})
        SELECT {CLOCK_VALUES} FROM (
            SELECT {inner_common}, 2 AS run, r.reopened AS started, x.due, x.done, x.ended,
                x.due - (1 - p.warning_ratio) * (x.due - r.reopened) AS warn,
                c.first_resolved_at - c.created_at AS consumed, {CLOCK_STATE} AS state
            FROM cases_case c {POLICY_JOIN}
            CROSS JOIN LATERAL (
                SELECT e.created_at AS reopened FROM cases_caseevent e
                WHERE e.case_id = c.id AND e.kind = 'reopened' ORDER BY e.created_at, e.id LIMIT 1
            ) r
            CROSS JOIN LATERAL (
                SELECT r.reopened + greatest(
                    {minutes} * {STRETCH} * interval '1 minute' - (c.first_resolved_at - c.created_at),
                    interval '0') AS due,
                    CASE WHEN c.last_resolved_at > r.reopened THEN c.last_resolved_at END AS done,
                    NULL::timestamptz AS ended
            ) x
            WHERE c.reopen_count > 0 AND {minutes} IS NOT NULL
        ) s"""
    assert target == "update_cadence", target
    # P1/P2: every public staff reply starts a run, met by the next reply; a run still going when
    # the case is resolved ends there (cancelled), unless it was already overdue.
    return f"""
        INSERT INTO sla_slaclock ({CLOCK_COLUMNS})
        SELECT {CLOCK_VALUES} FROM (
            SELECT {inner_common}, r.run, r.started, x.due, y.done, x.ended,
                x.due - (1 - p.warning_ratio) * (x.due - r.started) AS warn,
                interval '0' AS consumed, {CLOCK_STATE.replace("x.done", "y.done")} AS state
            FROM (
                SELECT e.case_id, e.created_at AS started,
                    row_number() OVER w AS run, lead(e.created_at) OVER w AS next_reply
                FROM cases_caseevent e JOIN cases_case c ON c.id = e.case_id
                WHERE e.kind = 'public_reply' AND c.severity IN ('P1', 'P2')
                WINDOW w AS (PARTITION BY e.case_id ORDER BY e.created_at, e.id)
            ) r
            JOIN cases_case c ON c.id = r.case_id {POLICY_JOIN}
            CROSS JOIN LATERAL (
                SELECT r.started + {minutes} * {STRETCH} * interval '1 minute' AS due,
                    CASE WHEN c.first_resolved_at >= r.started THEN c.first_resolved_at
                         WHEN c.last_resolved_at >= r.started THEN c.last_resolved_at END AS ended
            ) x
            CROSS JOIN LATERAL (
                SELECT CASE WHEN r.next_reply <= coalesce(x.ended, 'infinity') THEN r.next_reply END AS done
            ) y
            WHERE {minutes} IS NOT NULL
        ) s"""


ESCALATION_SQL = f"""
    INSERT INTO escalations_escalation (case_id, team_id, component, state, summary,
        steps_to_reproduce, expected_behaviour, actual_behaviour, product_version, region, tenant,
        request_ids, log_excerpts, tier, workaround, hypotheses, severity, severity_rationale,
        quality_score, quality_missing, override_reason, external_key, external_url, fix_version,
        resolution, decline_reason, withdraw_reason, bounce_count, created_by_id,
        created_at, updated_at, submitted_at, acknowledged_at, finished_at, environment)
    SELECT case_id, team_id, '', state, summary, 'Steps in the case.', 'It works.', 'It fails.', '', '', '',
        '', '', tier, '', '', severity, '', 4, '[]'::jsonb, '', '', '', '',
        CASE WHEN state = 'resolved' THEN 'Fixed.' ELSE '' END,
        CASE WHEN state = 'declined' THEN 'Works as designed.' ELSE '' END,
        CASE WHEN state = 'withdrawn' THEN 'Solved in support.' ELSE '' END,
        CASE WHEN state = 'needs_info' THEN greatest(bounces, 1) WHEN state = 'draft' THEN 0 ELSE bounces END,
        created_by_id, created_at,
        coalesce(finished_at, submitted_at, created_at),
        submitted_at,
        CASE WHEN state NOT IN ('draft', 'submitted') THEN least(submitted_at + interval '1 hour', now()) END,
        finished_at, ''
    FROM (
        SELECT c.id AS case_id, (%(teams)s::bigint[])[1 + mod(c.id, %(team_count)s)] AS team_id,
            left('Engineering: ' || c.title, 300) AS summary, o.tier, c.severity,
            c.assignee_id AS created_by_id, x.created_at,
            CASE WHEN x.draft THEN NULL
                ELSE least(x.created_at + interval '15 minutes', now()) END AS submitted_at,
            CASE WHEN {pick("c.id", 13)} < 150 THEN 1
                WHEN {pick("c.id", 13)} < 200 THEN 2 ELSE 0 END AS bounces,
            x.state,
            CASE WHEN x.state IN ('resolved', 'declined', 'withdrawn')
                THEN greatest(least(c.first_resolved_at, now()), x.created_at) END AS finished_at
        FROM cases_case c JOIN cases_organisation o ON o.id = c.organisation_id
        CROSS JOIN LATERAL (
            SELECT least(c.triaged_at + {pick("c.id", 14)} * interval '15 seconds', now()) AS created_at,
                {pick("c.id", 12)} < 30 AS draft
        ) y
        CROSS JOIN LATERAL (
            SELECT y.created_at, y.draft,
                CASE
                    WHEN y.draft THEN 'draft'
                    WHEN c.first_resolved_at IS NOT NULL THEN CASE
                        WHEN {pick("c.id", 15)} < 850 THEN 'resolved'
                        WHEN {pick("c.id", 15)} < 930 THEN 'declined' ELSE 'withdrawn' END
                    ELSE CASE
                        WHEN {pick("c.id", 15)} < 100 THEN 'needs_info'
                        WHEN {pick("c.id", 15)} < 300 THEN 'submitted'
                        WHEN {pick("c.id", 15)} < 500 THEN 'acknowledged' ELSE 'in_progress' END
                END AS state
        ) x
        WHERE c.triaged_at IS NOT NULL
          AND {pick("c.id", 11)} < CASE c.severity WHEN 'P1' THEN 300 WHEN 'P2' THEN 120
                                                   WHEN 'P3' THEN 30 ELSE 10 END
    ) s
"""

ARTICLE_SQL = """
    INSERT INTO knowledge_article (kind, title, slug, body_markdown, product_area, status,
        current_revision, created_at, updated_at, published_at, review_interval_days, review_cycle)
    SELECT CASE WHEN mod(g, 4) = 0 THEN 'runbook' ELSE 'article' END, 'Bench article ' || g,
        'bench-article-' || g, 'How to fix problem ' || g || '.', '', 'published', 0,
        now() - interval '800 days', now() - interval '800 days', now() - interval '800 days', 180, 0
    FROM generate_series(1, %(articles)s) AS g
    ON CONFLICT (slug) DO NOTHING
"""

LINK_SQL = f"""
    INSERT INTO knowledge_articlecaselink (article_id, case_id, relation, created_by_id, created_at)
    SELECT (%(articles)s::bigint[])[1 + mod(c.id, %(article_count)s)], c.id, 'used_to_resolve',
        c.assignee_id, c.first_resolved_at
    FROM cases_case c
    WHERE c.first_resolved_at IS NOT NULL AND {pick("c.id", 21)} < 180
    UNION ALL
    SELECT (%(articles)s::bigint[])[1 + mod(c.id + 1, %(article_count)s)], c.id, 'created_from',
        c.assignee_id, c.last_resolved_at
    FROM cases_case c
    WHERE c.first_resolved_at IS NOT NULL AND {pick("c.id", 22)} < 5
"""

# One survey per resolved case, sent at the last resolution; about a quarter answered, mostly happily.
SURVEY_SQL = f"""
    INSERT INTO metrics_surveyresponse (case_id, token, sent_to, sent_at, rating, comment, answered_at)
    SELECT c.id, md5('bench-survey-' || c.id), r.email, c.last_resolved_at,
        CASE WHEN x.answered THEN CASE
            WHEN {pick("c.id", 33)} < 450 THEN 5 WHEN {pick("c.id", 33)} < 750 THEN 4
            WHEN {pick("c.id", 33)} < 870 THEN 3 WHEN {pick("c.id", 33)} < 940 THEN 2 ELSE 1 END END,
        CASE WHEN x.answered AND {pick("c.id", 35)} < 200 THEN 'Thanks for the help.' ELSE '' END,
        CASE WHEN x.answered THEN
            least(c.last_resolved_at + {pick("c.id", 34)} * interval '4 minutes', now()) END
    FROM cases_case c JOIN cases_contact r ON r.id = c.requester_id
    CROSS JOIN LATERAL (SELECT {pick("c.id", 32)} < 250 AS answered) x
    WHERE c.last_resolved_at IS NOT NULL
"""


def write_extras(*, redo: bool) -> None:
    """Clocks, escalations, knowledge links and surveys for the generated cases (set-based SQL)."""
    from django.db import connection, transaction

    from escalations.models import EngineeringTeam

    def timed(label: str, sql: str, params: dict[str, Any] | None = None) -> None:
        started = time.monotonic()
        with connection.cursor() as cursor:
            cursor.execute(sql, params or {})
            rows = cursor.rowcount
        print(f"  {label}: {rows:,} rows in {time.monotonic() - started:.1f} s")

    def empty(table: str) -> bool:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT NOT EXISTS (SELECT 1 FROM {table})")
            return cursor.fetchone()[0]

    with transaction.atomic():
        if redo:
            with connection.cursor() as cursor:
                cursor.execute(
                    "TRUNCATE sla_slaclock, knowledge_articlecaselink, metrics_surveyresponse, "
                    "escalations_escalation CASCADE"
                )
        if empty("sla_slaclock"):
            print("Writing SLA clocks ...")
            for target in ("first_response", "triage", "resolution", "resolution_rerun", "update_cadence"):
                timed(f"clocks {target}", clock_sql(target))
        if empty("escalations_escalation"):
            teams = [
                EngineeringTeam.objects.get_or_create(
                    name=name, defaults={"slug": name.lower().replace(" ", "-")}
                )[0].pk
                for name in ENGINEERING_TEAMS
            ]
            timed("escalations", ESCALATION_SQL, {"teams": teams, "team_count": len(teams)})
        if empty("knowledge_articlecaselink"):
            timed("articles", ARTICLE_SQL, {"articles": ARTICLES})
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT id FROM knowledge_article WHERE slug LIKE 'bench-article-%%' ORDER BY id"
                )
                articles = [row[0] for row in cursor.fetchall()]
            timed("article links", LINK_SQL, {"articles": articles, "article_count": len(articles)})
        if empty("metrics_surveyresponse"):
            timed("surveys", SURVEY_SQL)

    # As autovacuum would have by then: statistics and the visibility map (index-only scans).
    started = time.monotonic()
    with connection.cursor() as cursor:
        for table in (
            "cases_case",
            "cases_caseevent",
            "sla_slaclock",
            "escalations_escalation",
            "knowledge_articlecaselink",
            "metrics_surveyresponse",
        ):
            cursor.execute(f"VACUUM ANALYZE {table}")
    print(f"  VACUUM ANALYZE: {time.monotonic() - started:.1f} s")


# --- hand-written SQL: one query per figure ---------------------------------------------------------

RESOLVED_EVENT = "e.kind = 'status_changed' AND e.field = 'status' AND e.new_value = '\"resolved\"'::jsonb"


@dataclass
class Hand:
    """A figure computed by one hand-written query; ``join`` is added when a case filter is set."""

    name: str
    sql: str
    join: str = ""
    params: dict[str, Any] = field(default_factory=dict)


def case_filter_sql(filters: dict[str, Any]) -> str:
    parts = []
    if "team" in filters:
        parts.append("AND c.team_id = %(team)s")
    if "severity" in filters:
        parts.append("AND c.severity = %(severity)s")
    return " ".join(parts)


def durations_sql(column: str, *, by_week: bool = False, closed_only: bool = False) -> str:
    """Count, median, p90 and mean of ``column - created_at``: overall and per severity in one
    query (grouping sets; the overall row has severity NULL), or per local week. ``closed_only``:
    only cases that are not open now (the time to final resolution)."""
    d = f"date_part('epoch', c.{column} - c.created_at)"
    if closed_only:
        from cases.models import OPEN_STATUSES

        statuses = ", ".join(f"'{s.value}'" for s in OPEN_STATUSES)
        column_filter = f" AND c.status NOT IN ({statuses})"
    else:
        column_filter = ""
    week = f"date_trunc('week', c.{column} AT TIME ZONE %(tz)s)"
    key, group = (week, "1") if by_week else ("c.severity", "GROUPING SETS ((), (c.severity))")
    return f"""
        SELECT {key}, count(*), percentile_cont(0.5) WITHIN GROUP (ORDER BY {d}),
            percentile_cont(0.9) WITHIN GROUP (ORDER BY {d}), avg({d})
        FROM cases_case c WHERE c.{column} >= %(start)s AND c.{column} < %(end)s{column_filter} {{f}}
        GROUP BY {group}"""


# When a clock's outcome was decided, written as sla_clock_completed_idx is built (an OR of two
# ranges instead reads the whole table).
COMPLETED = """(CASE WHEN k.state = 'met' THEN k.met_at WHEN k.state = 'breached' THEN k.breached_at
    ELSE NULL END)"""
COMPLETED_CLOCK = f"{COMPLETED} >= %(start)s AND {COMPLETED} < %(end)s"
CLOCK_JOIN = "JOIN cases_case c ON c.id = k.case_id"
EVENT_JOIN = "JOIN cases_case c ON c.id = e.case_id"


def period_hands() -> list[Hand]:
    """The summary's figures for one period."""
    return [
        Hand("FRT median/p90/mean (+ per severity)", durations_sql("first_response_at")),
        Hand("TTT median/p90/mean (+ per severity)", durations_sql("triaged_at")),
        Hand("MTTR median/p90/mean (+ per severity)", durations_sql("first_resolved_at")),
        Hand(
            "final resolution median/p90/mean (+ per severity)",
            durations_sql("last_resolved_at", closed_only=True),
        ),
        Hand(
            "SLA compliance per target and severity",
            f"""SELECT k.target, c.severity, count(*) FILTER (WHERE k.state = 'met'), count(*)
                FROM sla_slaclock k {CLOCK_JOIN} WHERE {COMPLETED_CLOCK} {{f}} GROUP BY 1, 2""",
        ),
        Hand(
            "reopen rate",
            f"""SELECT
                (SELECT count(DISTINCT e.case_id) FROM cases_caseevent e {{j}}
                 WHERE e.kind = 'reopened' AND e.created_at >= %(start)s AND e.created_at < %(end)s {{f}}),
                (SELECT count(DISTINCT e.case_id) FROM cases_caseevent e {{j}}
                 WHERE {RESOLVED_EVENT} AND e.created_at >= %(start)s AND e.created_at < %(end)s {{f}})""",
            join=EVENT_JOIN,
        ),
        Hand(
            "escalation rate",
            """SELECT count(*) FILTER (WHERE c.id IN (SELECT x.case_id FROM escalations_escalation x
                    WHERE x.submitted_at IS NOT NULL)), count(*)
                FROM cases_case c WHERE c.created_at >= %(start)s AND c.created_at < %(end)s {f}""",
        ),
        Hand(
            "engineering bounce rate",
            """SELECT count(*) FILTER (WHERE x.bounce_count > 0 OR x.state = 'needs_info'), count(*)
                FROM escalations_escalation x {j}
                WHERE x.submitted_at >= %(start)s AND x.submitted_at < %(end)s {f}""",
            join="JOIN cases_case c ON c.id = x.case_id",
        ),
        Hand(
            "update cadence adherence",
            f"""SELECT count(*) FILTER (WHERE k.state = 'met'), count(*)
                FROM sla_slaclock k {CLOCK_JOIN}
                WHERE k.target = 'update_cadence' AND c.severity IN ('P1', 'P2')
                  AND {COMPLETED_CLOCK} {{f}}""",
        ),
        Hand(
            "knowledge reuse",
            f"""SELECT count(*) FILTER (WHERE r.case_id IN (
                    SELECT l.case_id FROM knowledge_articlecaselink l)), count(*)
                FROM (SELECT DISTINCT e.case_id FROM cases_caseevent e {{j}}
                      WHERE {RESOLVED_EVENT} AND e.created_at >= %(start)s
                        AND e.created_at < %(end)s {{f}}) r""",
            join=EVENT_JOIN,
        ),
        Hand(
            "CSAT",
            """SELECT count(*), avg(v.rating) FROM metrics_surveyresponse v {j}
                WHERE v.answered_at >= %(start)s AND v.answered_at < %(end)s {f}""",
            join="JOIN cases_case c ON c.id = v.case_id",
        ),
    ]


def trend_hands() -> list[Hand]:
    """The 12-week series (%(start)s..%(end)s is the 12 local weeks)."""
    return [
        Hand("weekly FRT", durations_sql("first_response_at", by_week=True)),
        Hand("weekly MTTR", durations_sql("first_resolved_at", by_week=True)),
        Hand(
            "weekly SLA compliance",
            f"""SELECT date_trunc('week', {COMPLETED} AT TIME ZONE %(tz)s),
                    count(*) FILTER (WHERE k.state = 'met'), count(*)
                FROM sla_slaclock k {{j}} WHERE {COMPLETED_CLOCK} {{f}} GROUP BY 1""",
            join=CLOCK_JOIN,
        ),
        Hand(
            "weekly reopen rate",
            f"""SELECT date_trunc('week', e.created_at AT TIME ZONE %(tz)s),
                    count(DISTINCT e.case_id) FILTER (WHERE e.kind = 'reopened'),
                    count(DISTINCT e.case_id) FILTER (WHERE e.kind = 'status_changed')
                FROM cases_caseevent e {{j}}
                WHERE (e.kind = 'reopened' OR ({RESOLVED_EVENT}))
                  AND e.created_at >= %(start)s AND e.created_at < %(end)s {{f}} GROUP BY 1""",
            join=EVENT_JOIN,
        ),
        Hand(
            "weekly volume created/resolved",
            """SELECT w, sum(created), sum(resolved) FROM (
                    SELECT date_trunc('week', c.created_at AT TIME ZONE %(tz)s) AS w,
                        1 AS created, 0 AS resolved
                    FROM cases_case c WHERE c.created_at >= %(start)s AND c.created_at < %(end)s {f}
                    UNION ALL
                    SELECT date_trunc('week', c.first_resolved_at AT TIME ZONE %(tz)s), 0, 1
                    FROM cases_case c
                    WHERE c.first_resolved_at >= %(start)s AND c.first_resolved_at < %(end)s {f}
                ) s GROUP BY w ORDER BY w""",
        ),
    ]


def backlog_hand(open_statuses: list[str]) -> Hand:
    statuses = ", ".join(f"'{s}'" for s in open_statuses)
    return Hand(
        "backlog by age bucket and severity",
        f"""SELECT CASE WHEN age < interval '1 day' THEN '0-1d' WHEN age < interval '3 days' THEN '1-3d'
                    WHEN age < interval '7 days' THEN '3-7d' WHEN age < interval '21 days' THEN '7-21d'
                    ELSE '>21d' END, severity, count(*)
            FROM (SELECT now() - c.created_at AS age, c.severity FROM cases_case c
                  WHERE c.status IN ({statuses}) {{f}}) s
            GROUP BY 1, 2""",
    )


def drilldown_hand(name: str, condition: str) -> Hand:
    """A drill-down page: the first 50 cases (newest first) and the total, in one query."""
    return Hand(
        name,
        f"""SELECT c.id, c.title, c.severity, c.status, o.name, u.username, c.created_at,
                c.first_response_at, c.first_resolved_at,
                (SELECT count(*) FROM cases_case c WHERE {condition} {{f}})
            FROM cases_case c JOIN cases_organisation o ON o.id = c.organisation_id
            LEFT JOIN auth_user u ON u.id = c.assignee_id
            WHERE {condition} {{f}}
            ORDER BY c.created_at DESC, c.id DESC LIMIT 50""",
    )


def render(hand: Hand, filters: dict[str, Any]) -> str:
    return hand.sql.replace("{j}", hand.join if filters else "").replace("{f}", case_filter_sql(filters))


# --- measuring --------------------------------------------------------------------------------------


@dataclass
class Row:
    label: str
    median: float
    p95: float
    queries: int
    db: float
    sql: list[dict[str, Any]]
    hand: float | None = None
    hand_count: int = 0


def measure(fn: Callable[[], Any], *, warmup: int, requests: int) -> tuple[float, float, Any]:
    for _ in range(warmup):
        fn()
    timings, result = [], None
    for _ in range(requests):
        started = time.perf_counter()
        result = fn()
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings), percentile(timings, 0.95), result


def build_rollup(*, force: bool) -> None:
    """The daily rollup of the count metrics: the data above was written behind the services' back,
    so it is built from scratch (what the refresh task does after a fresh deployment)."""
    from metrics import rollup
    from metrics.models import RollupState

    if not force and RollupState.objects.exclude(through=None).exists():
        print("Reusing the metrics rollup.")
        return
    from django.db import connection

    started = time.monotonic()
    days = rollup.rebuild()
    print(f"  metrics rollup: {days:,} days in {time.monotonic() - started:.1f} s")
    # What autovacuum does a while after a bulk write: statistics, and the visibility map that lets
    # the duration values be read by index-only scans.
    started = time.monotonic()
    with connection.cursor() as cursor:
        for table in ("metrics_dailyrollup", "metrics_durationbucket", "metrics_durationvalue"):
            cursor.execute(f"VACUUM ANALYZE {table}")
    print(f"  VACUUM ANALYZE of the rollup: {time.monotonic() - started:.1f} s")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    url = os.environ.get("DATABASE_URL", "")
    if not url:
        sys.exit("Set DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_metrics")
    os.environ.setdefault("SECRET_KEY", "bench-secret-key-not-for-production")
    os.environ.setdefault("ALLOWED_HOSTS", "testserver")
    ensure_database(url, recreate=not args.reuse, script="bench_metrics.py")

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "supportdesk.settings")
    import django

    django.setup()

    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.core.management import call_command
    from django.db import connection
    from django.db.models import Count
    from django.test import Client
    from django.test.utils import CaptureQueriesContext, override_settings
    from django.utils import timezone

    from cases.models import OPEN_Q, OPEN_STATUSES, Case, CaseEvent
    from metrics import selectors
    from metrics.selectors import local_period, previous_period
    from supportdesk.core.roles import Role

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
    write_extras(redo=args.redo_extras)
    build_rollup(force=args.redo_extras or args.rebuild_rollup)

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        version = cursor.fetchone()[0]
        counts = {}
        for table in (
            "sla_slaclock",
            "escalations_escalation",
            "knowledge_articlecaselink",
            "metrics_surveyresponse",
        ):
            cursor.execute(f"SELECT count(*) FROM {table}")
            counts[table] = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM metrics_surveyresponse WHERE answered_at IS NOT NULL")
        answered = cursor.fetchone()[0]
    print(
        f"\nPostgreSQL {version}: {Case.objects.count():,} cases "
        f"({Case.objects.filter(OPEN_Q).count():,} open), "
        f"{CaseEvent.objects.count():,} events, {counts['sla_slaclock']:,} SLA clocks, "
        f"{counts['escalations_escalation']:,} escalations, {counts['knowledge_articlecaselink']:,} article "
        f"links, {counts['metrics_surveyresponse']:,} surveys ({answered:,} answered)."
    )

    manager, _ = get_user_model().objects.get_or_create(
        username=MANAGER, defaults={"email": "m@bench.example"}
    )
    manager.groups.add(Group.objects.get_or_create(name=Role.MANAGER.value)[0])
    client = Client()
    client.force_login(manager)

    team = (
        Case.objects.filter(team__isnull=False)
        .values("team_id")
        .annotate(n=Count("id"))
        .order_by("-n")
        .first()
    )
    team_id = team["team_id"]

    today = timezone.now().date()
    day90 = {"start": (today - dt.timedelta(days=89)).isoformat(), "end": today.isoformat(), "tz": "UTC"}
    day7 = {"start": (today - dt.timedelta(days=6)).isoformat(), "end": today.isoformat(), "tz": "UTC"}
    day730 = {"start": (today - dt.timedelta(days=729)).isoformat(), "end": today.isoformat(), "tz": "UTC"}
    by_team = {"team": team_id}
    p1 = {"severity": "P1"}

    # (label, path, params, hand-written figures, their period, filters)
    p90 = local_period(today - dt.timedelta(days=89), today, "UTC")
    prev90 = previous_period(today - dt.timedelta(days=89), today, "UTC")
    p730 = local_period(today - dt.timedelta(days=729), today, "UTC")
    prev730 = previous_period(today - dt.timedelta(days=729), today, "UTC")
    p7 = local_period(today - dt.timedelta(days=6), today, "UTC")
    prev7 = previous_period(today - dt.timedelta(days=6), today, "UTC")
    weeks = selectors.week_starts(end=dt.datetime.combine(today, dt.time(12), tzinfo=dt.UTC), tz="UTC")
    trend_period = {"start": weeks[0], "end": weeks[-1] + dt.timedelta(weeks=1), "tz": "UTC"}
    open_statuses = [s.value for s in OPEN_STATUSES]
    summary_hands = [(h, p) for p in (p90, prev90) for h in period_hands()]
    summary7_hands = [(h, p) for p in (p7, prev7) for h in period_hands()]
    summary730_hands = [(h, p) for p in (p730, prev730) for h in period_hands()]
    frt_cond = "c.first_response_at >= %(start)s AND c.first_response_at < %(end)s"
    breached_cond = f"""c.id IN (SELECT k.case_id FROM sla_slaclock k WHERE k.state = 'breached'
        AND {COMPLETED_CLOCK})"""
    resolved_cond = f"""c.id IN (SELECT e.case_id FROM cases_caseevent e WHERE {RESOLVED_EVENT}
        AND e.created_at >= %(start)s AND e.created_at < %(end)s)"""
    old_cond = (
        f"c.status IN ({', '.join(repr(s) for s in open_statuses)})"
        " AND c.created_at <= now() - interval '21 days'"
    )

    plan = [
        ("summary 90d", "/api/metrics/summary/", day90, {}, summary_hands),
        ("summary 7d", "/api/metrics/summary/", day7, {}, summary7_hands),
        ("summary 2y", "/api/metrics/summary/", day730, {}, summary730_hands),
        ("summary 90d team", "/api/metrics/summary/", day90, by_team, summary_hands),
        ("summary 2y team", "/api/metrics/summary/", day730, by_team, summary730_hands),
        ("summary 90d severity=P1", "/api/metrics/summary/", day90, p1, summary_hands),
        ("trends 12 weeks", "/api/metrics/trends/", {"end": today.isoformat()}, {}, None),
        ("trends 12 weeks team", "/api/metrics/trends/", {"end": today.isoformat()}, by_team, None),
        ("trends 12 weeks severity=P1", "/api/metrics/trends/", {"end": today.isoformat()}, p1, None),
        ("backlog", "/api/metrics/backlog/", {}, {}, [(backlog_hand(open_statuses), {})]),
        ("backlog team", "/api/metrics/backlog/", {}, by_team, [(backlog_hand(open_statuses), {})]),
        (
            "cases FRT 90d",
            "/api/metrics/cases/",
            {**day90, "metric": "first_response_time"},
            {},
            [(drilldown_hand("FRT drill-down page", frt_cond), p90)],
        ),
        (
            "cases SLA breached 90d",
            "/api/metrics/cases/",
            {**day90, "metric": "sla_compliance", "part": "breached"},
            {},
            [(drilldown_hand("breached drill-down page", breached_cond), p90)],
        ),
        (
            "cases resolved 90d team",
            "/api/metrics/cases/",
            {**day90, "metric": "reopen_rate", "part": "resolved"},
            by_team,
            [(drilldown_hand("resolved drill-down page", resolved_cond), p90)],
        ),
        (
            "cases backlog >21d",
            "/api/metrics/cases/",
            {"metric": "backlog", "bucket": ">21d"},
            {},
            [(drilldown_hand("backlog >21d drill-down page", old_cond), {})],
        ),
    ]
    plan = [
        (
            label,
            path,
            params,
            filters,
            hands if hands is not None else [(h, trend_period) for h in trend_hands()],
        )
        for label, path, params, filters, hands in plan
        if args.only in label
    ]

    def get(path: str):
        response = client.get(path, HTTP_ACCEPT="application/json")
        if response.status_code != 200:
            raise SystemExit(f"GET {path} -> {response.status_code}: {response.content[:500]!r}")
        return response

    def run_hand(sql: str, params: dict[str, Any]) -> list[tuple]:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()

    rows: list[Row] = []
    hand_rows: list[tuple[str, str, float, float]] = []
    hand_cache: dict[tuple, tuple[float, float, list]] = {}
    responses: dict[str, Any] = {}
    plain_static = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    with override_settings(STORAGES=plain_static):
        for label, path, params, filters, hands in plan:
            url_ = f"{path}?{urlencode({**params, **filters})}" if params or filters else path
            median, p95, response = measure(lambda u=url_: get(u), warmup=args.warmup, requests=args.requests)
            responses[label] = response.json()
            with CaptureQueriesContext(connection) as captured:
                get(url_)
            row = Row(
                label=label,
                median=median,
                p95=p95,
                queries=len(captured.captured_queries),
                db=sum(float(q.get("time") or 0) for q in captured.captured_queries) * 1000,
                sql=list(captured.captured_queries),
            )
            hand_total = 0.0
            for hand, period in hands:
                values = {**period, **filters}
                sql = render(hand, filters)
                key = (sql, tuple(sorted((k, str(v)) for k, v in values.items())))
                if key not in hand_cache:
                    hand_cache[key] = measure(
                        lambda s=sql, v=values: run_hand(s, v), warmup=args.warmup, requests=args.requests
                    )
                h_median, h_p95, result = hand_cache[key]
                hand_total += h_median
                if not filters:
                    previous = " (previous)" if period in (prev90, prev7, prev730) else ""
                    hand_rows.append((label, hand.name + previous, h_median, h_p95))
                if label == "summary 90d" and period is p90:
                    responses[f"hand {hand.name}"] = result
                if label == "summary 2y" and period is p730:
                    responses[f"hand 2y {hand.name}"] = result
                if label == "summary 90d team" and period is p90:
                    responses[f"hand 90d team {hand.name}"] = result
                if label == "summary 2y team" and period is p730:
                    responses[f"hand 2y team {hand.name}"] = result
                if label == "trends 12 weeks":
                    responses[f"hand {hand.name}"] = result
                if label == "backlog":
                    responses[f"hand {hand.name}"] = result
            row.hand, row.hand_count = hand_total, len(hands)
            rows.append(row)
            print(f"  measured {label}: {median:.1f} ms", file=sys.stderr)

    print(f"\nFilters: team = {team_id} (the busiest support team); periods end {today} (UTC).")
    print(
        f"\n{'endpoint':<30} {'median ms':>10} {'p95 ms':>9} {'queries':>8} {'db ms':>8}"
        f" {'hand SQL ms':>12} {'hand queries':>13}"
    )
    print("-" * 96)
    for row in rows:
        print(
            f"{row.label:<30} {row.median:>10.1f} {row.p95:>9.1f} {row.queries:>8} {row.db:>8.1f}"
            f" {row.hand:>12.1f} {row.hand_count:>13}"
        )
    print(
        "\n'hand SQL ms' adds up the medians of one hand-written query per figure the endpoint returns"
        "\n(the summary: ten figures for the period and ten for the previous one)."
    )

    print(f"\n{'hand-written query (no filter)':<56} {'for':<24} {'median ms':>10} {'p95 ms':>9}")
    print("-" * 102)
    for label, name, h_median, h_p95 in hand_rows:
        print(f"{name:<56} {label:<24} {h_median:>10.1f} {h_p95:>9.1f}")

    check(responses)

    slowest = max(rows, key=lambda r: r.median)
    to_explain = [slowest] + [r for r in rows if r.median > args.explain_over and r is not slowest]
    for row in to_explain:
        query = max(row.sql, key=lambda q: float(q.get("time") or 0))
        title = "Slowest" if row is slowest else f"Over {args.explain_over:.0f} ms"
        print(f"\n{title}: {row.label} (median {row.median:.1f} ms); its slowest query ({query['time']} s):")
        print(f"{query['sql']}\n")
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + query["sql"])
            for (line,) in cursor.fetchall():
                print(line)


def check(responses: dict[str, Any]) -> None:
    """The API and the hand-written SQL must give the same numbers (90 days, no filter)."""
    problems: list[str] = []

    def same(what: str, api: Any, hand: Any) -> None:
        if isinstance(api, float) or isinstance(hand, float):
            ok = (
                api is not None
                and hand is not None
                and math.isclose(float(api), float(hand), rel_tol=1e-6, abs_tol=1e-3)
            )
        else:
            ok = api == hand
        if not ok:
            problems.append(f"{what}: API {api!r} != hand SQL {hand!r}")

    def exact(what: str, api: Any, hand: Any) -> None:
        # Durations to the microsecond (the API rounds there): the rollup's percentiles are exact.
        hand = None if hand is None else round(float(hand), 6) if isinstance(hand, float) else hand
        if api != hand:
            problems.append(f"{what}: API {api!r} != hand SQL {hand!r} (exact)")

    durations = (
        ("first_response_time", "FRT"),
        ("time_to_triage", "TTT"),
        ("time_to_resolve", "MTTR"),
        ("time_to_final_resolution", "final resolution"),
    )
    ratios = {
        "reopen_rate": "reopen rate",
        "escalation_rate": "escalation rate",
        "engineering_bounce_rate": "engineering bounce rate",
        "update_cadence_adherence": "update cadence adherence",
        "knowledge_reuse": "knowledge reuse",
    }
    # The two-year summary and the team-filtered ones: every duration exactly, and the ratios.
    for label, prefix in (
        ("summary 2y", "2y"),
        ("summary 90d team", "90d team"),
        ("summary 2y team", "2y team"),
    ):
        figures = responses.get(label)
        if not figures or f"hand {prefix} FRT median/p90/mean (+ per severity)" not in responses:
            continue
        for key, name in durations:
            if key not in figures:  # an API from before the figure existed
                continue
            for row in responses[f"hand {prefix} {name} median/p90/mean (+ per severity)"]:
                api = figures[key]["overall"] if row[0] is None else figures[key]["by_severity"][row[0]]
                for i, part in enumerate(("count", "median", "p90"), start=1):
                    exact(f"{prefix} {name} {row[0] or 'all'} {part}", api[part], row[i])
                # The API's mean is the exact sum of microseconds / count; the hand SQL averages
                # floats, which can differ in the last printed digit.
                same(f"{prefix} {name} {row[0] or 'all'} mean", api["mean"], row[4])
        for key, name in ratios.items():
            api = figures[key]
            (hand,) = responses[f"hand {prefix} {name}"]
            same(f"{prefix} {name}", (api["numerator"], api["denominator"]), tuple(hand))
    summary = responses.get("summary 90d")
    if summary and "hand FRT median/p90/mean (+ per severity)" in responses:
        for key, name in durations:
            if key not in summary:
                continue
            for row in responses[f"hand {name} median/p90/mean (+ per severity)"]:
                api = summary[key]["overall"] if row[0] is None else summary[key]["by_severity"][row[0]]
                for i, part in enumerate(("count", "median", "p90", "mean"), start=1):
                    exact(f"{name} {row[0] or 'all'} {part}", api[part], row[i])
        compliance: dict[str, list[int]] = {}
        for target, _severity, met, total in responses["hand SLA compliance per target and severity"]:
            compliance.setdefault(target, [0, 0])
            compliance[target][0] += met
            compliance[target][1] += total
        for target, (met, total) in compliance.items():
            api = summary["sla_compliance"][target]["all"]
            same(f"compliance {target}", (api["numerator"], api["denominator"]), (met, total))
        for key, name in ratios.items():
            api = summary[key]
            (hand,) = responses[f"hand {name}"]
            same(name, (api["numerator"], api["denominator"]), tuple(hand))
        (csat_count, csat_mean) = responses["hand CSAT"][0]
        same("CSAT count", summary["csat"]["count"], csat_count)
        same("CSAT mean", summary["csat"]["mean"], None if csat_mean is None else float(csat_mean))
    backlog = responses.get("backlog")
    if backlog and "hand backlog by age bucket and severity" in responses:
        hand: dict[str, dict[str, int]] = {}
        for bucket, severity, n in responses["hand backlog by age bucket and severity"]:
            hand.setdefault(bucket, {})[severity] = n
        for bucket, per in backlog["buckets"].items():
            for severity, n in per.items():
                same(f"backlog {bucket} {severity}", n, hand.get(bucket, {}).get(severity, 0))
    trends = responses.get("trends 12 weeks")
    if trends and "hand weekly volume created/resolved" in responses:
        hand_volume = {
            w.date().isoformat(): (int(c), int(r))
            for w, c, r in responses["hand weekly volume created/resolved"]
        }
        for point in trends["volume"]:
            same(
                f"volume {point['week'][:10]}",
                (point["created"], point["resolved"]),
                hand_volume.get(point["week"][:10], (0, 0)),
            )
        hand_frt = {w.date().isoformat(): row for w, *row in responses["hand weekly FRT"]}
        for week, stats in zip(trends["weeks"], trends["first_response_time"], strict=True):
            row = hand_frt.get(week[:10])
            same(f"weekly FRT median {week[:10]}", stats["median"], row[1] if row else None)
    if problems:
        print("\nThe API and the hand-written SQL disagree:\n  " + "\n  ".join(problems))
    else:
        print(
            "\nCheck: the API's figures (90 days and two years, with no filter and with the team) equal"
            " the hand-written SQL's."
        )


if __name__ == "__main__":
    main()
