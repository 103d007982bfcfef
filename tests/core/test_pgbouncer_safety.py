"""Nothing the product runs on PostgreSQL needs a session of its own, so it works behind PgBouncer
in transaction pooling mode (DATABASE_PGBOUNCER=true), where each transaction may get another server
connection: no session-level advisory locks, no plain SET, no LISTEN/NOTIFY, no temporary tables,
no named prepared statements. (Transaction-level forms are fine: pg_advisory_xact_lock, SET LOCAL,
set_config(..., true).) Server-side cursors are turned off by the setting. SQL keywords are matched
in capitals, as this code base writes them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ["cases", "sla", "escalations", "knowledge", "metrics", "imports", "supportdesk"]

UNSAFE = {
    "a session-level advisory lock (use pg_advisory_xact_lock)": re.compile(
        r"pg_(try_)?advisory_lock(_shared)?\s*\(", re.IGNORECASE
    ),
    "a session-level SET (use SET LOCAL)": re.compile(
        r"""["']\s*SET\s+(?!LOCAL\b|CONSTRAINTS\b|TRANSACTION\b)(SESSION\s+)?\w+\s*(TO\b|=)"""
    ),
    "set_config for the session (third argument true: the transaction)": re.compile(
        r"set_config\s*\([^)]*,\s*false\s*\)", re.IGNORECASE
    ),
    "LISTEN/NOTIFY": re.compile(r"""["']\s*(LISTEN|UNLISTEN|NOTIFY)\s+\w+|pg_notify\s*\("""),
    "a temporary table": re.compile(r"CREATE\s+(GLOBAL\s+|LOCAL\s+)?(TEMP|TEMPORARY)\s+TABLE"),
    "a named prepared statement": re.compile(r"""["']\s*PREPARE\s+\w+"""),
}


def _sources() -> list[Path]:
    return sorted(path for folder in SOURCES for path in (ROOT / folder).rglob("*.py"))


def test_no_sql_needs_a_session_of_its_own():
    found = []
    for path in _sources():
        text = path.read_text(encoding="utf-8")
        for what, pattern in UNSAFE.items():
            for match in pattern.finditer(text):
                line = text.count("\n", 0, match.start()) + 1
                found.append(f"{path.relative_to(ROOT)}:{line}: {what}: {match.group(0)!r}")
    assert len(_sources()) > 50
    assert found == []


@pytest.mark.parametrize(
    ("sql", "what"),
    [
        ('cursor.execute("SELECT pg_advisory_lock(%s)", [key])', "advisory"),
        ('cursor.execute("SELECT pg_try_advisory_lock(1)")', "advisory"),
        ("cursor.execute(\"SET work_mem TO '64MB'\")", "SET"),
        ("cursor.execute(\"SELECT set_config('work_mem', '64MB', false)\")", "set_config"),
        ('cursor.execute("LISTEN case_events")', "LISTEN"),
        ('cursor.execute("CREATE TEMP TABLE t (id int)")', "temporary"),
    ],
)
def test_the_scan_sees_each_unsafe_form(sql, what):
    assert any(what in name and pattern.search(sql) for name, pattern in UNSAFE.items())


@pytest.mark.parametrize(
    "sql",
    [
        'cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])',
        'cursor.execute("SET LOCAL synchronous_commit TO off")',
        "cursor.execute(\"SELECT set_config('work_mem', '64MB', true)\")",
        "cursor.execute(\"UPDATE sla_slaclock SET state = 'running'\")",
    ],
)
def test_the_transaction_level_forms_pass(sql):
    assert not any(pattern.search(sql) for pattern in UNSAFE.values())
