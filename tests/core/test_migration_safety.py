"""Index changes on the large tables never block writes while they build.

A plain ``CREATE INDEX`` (AddIndex, an indexed AddField, a unique constraint) locks out inserts and
updates of its table until the index is built. Every migration after an app's first must change the
indexes of the large tables through ``supportdesk.core.migration_ops`` (CONCURRENTLY on PostgreSQL)
in a migration with ``atomic = False``, and raw SQL must say CONCURRENTLY too.
"""

from __future__ import annotations

import inspect
import re

from django.db.migrations import (
    AddConstraint,
    AddField,
    AddIndex,
    AlterField,
    Migration,
    RemoveIndex,
    RunPython,
    RunSQL,
    SeparateDatabaseAndState,
)
from django.db.migrations.loader import MigrationLoader
from django.db.models import Index, UniqueConstraint

from supportdesk.core import migration_ops

#: Tables that grow with the cases (one or more rows per case, or per event).
LARGE_MODELS = {
    ("cases", "case"),
    ("cases", "caseevent"),
    ("sla", "slaclock"),
    ("escalations", "escalation"),
    ("escalations", "webhookdelivery"),
    ("metrics", "surveyresponse"),
    ("imports", "importedcase"),
    ("inbound", "inboundmessage"),
}
PROJECT_APPS = {"core", "cases", "sla", "escalations", "knowledge", "metrics", "imports", "inbound"}
CONCURRENT = (
    migration_ops.AddIndexConcurrently,
    migration_ops.RemoveIndexConcurrently,
    migration_ops.DropFieldIndexConcurrently,
)
_INDEX_SQL = re.compile(
    r"\b(?:CREATE\s+(?:UNIQUE\s+)?INDEX|DROP\s+INDEX|REINDEX)\b(?!\s+CONCURRENTLY)(?P<rest>[^;]*)",
    re.IGNORECASE,
)


def _flat(operations):
    for op in operations:
        if isinstance(op, SeparateDatabaseAndState):
            yield from _flat(op.database_operations)
        else:
            yield op


def _sql_texts(op) -> list[str]:
    if isinstance(op, RunSQL):
        texts = []
        for part in (op.sql, op.reverse_sql):
            for item in [part] if isinstance(part, str) else part or []:
                texts.append(item if isinstance(item, str) else str(item[0]))
        return texts
    if isinstance(op, RunPython):
        return [inspect.getsource(code) for code in (op.code, op.reverse_code) if callable(code)]
    return []


def _large_names(state) -> tuple[set[str], set[str]]:
    """(db tables, index names) of the large models in ``state``."""
    tables, indexes = set(), set()
    for key in LARGE_MODELS:
        model_state = state.models.get(key)
        if model_state is None:
            continue
        tables.add(model_state.options.get("db_table") or f"{key[0]}_{key[1]}")
        indexes.update(index.name for index in model_state.options.get("indexes", []))
    return tables, indexes


def _field_indexed(field) -> bool:
    return bool(field.db_index or field.unique) and not field.primary_key


def problems_of(migration: Migration, state) -> list[str]:
    """What in ``migration`` would build or drop an index of a large table while blocking writes;
    ``state`` is the project state just before it."""
    found = []
    where = f"{migration.app_label}.{migration.name}"
    tables, index_names = _large_names(state)
    for op in _flat(migration.operations):
        key = (migration.app_label, getattr(op, "model_name_lower", getattr(op, "model_name", "")).lower())
        large = key in LARGE_MODELS
        if isinstance(op, CONCURRENT):
            if migration.atomic:
                found.append(f"{where}: {op.describe()} needs `atomic = False` on the migration")
            continue
        if large and isinstance(op, (AddIndex, RemoveIndex)):
            found.append(f"{where}: {op.describe()} must use migration_ops.{type(op).__name__}Concurrently")
        elif large and isinstance(op, AddField) and _field_indexed(op.field):
            found.append(f"{where}: {op.describe()} builds an index (add it unindexed, index concurrently)")
        elif large and isinstance(op, AlterField):
            old = state.models[key].fields.get(op.name)
            if old is not None and _field_indexed(old) != _field_indexed(op.field):
                found.append(f"{where}: {op.describe()} changes an index (DropFieldIndexConcurrently)")
        elif large and isinstance(op, AddConstraint) and isinstance(op.constraint, UniqueConstraint):
            found.append(f"{where}: {op.describe()} builds a unique index under lock")
        for text in _sql_texts(op):
            for match in _INDEX_SQL.finditer(text):
                rest = match.group("rest")
                if any(re.search(rf"\b{re.escape(name)}\b", rest) for name in tables | index_names) or any(
                    re.search(rf"\b{re.escape(table)}_\w+", rest) for table in tables
                ):
                    found.append(f"{where}: raw SQL {match.group(0)[:60]!r} must be CONCURRENTLY")
    return found


def _project_migrations():
    loader = MigrationLoader(None, ignore_no_migrations=True)
    for key in sorted(loader.disk_migrations):
        app_label, name = key
        if app_label in PROJECT_APPS and not name.startswith("0001"):
            yield loader.disk_migrations[key], loader.project_state(key, at_end=False)


def test_index_changes_on_large_tables_are_concurrent_in_non_atomic_migrations():
    checked = list(_project_migrations())
    assert len(checked) >= 8  # the scan sees the migrations (cases 0002-0006, sla 0002-0004, ...)
    problems = [problem for migration, state in checked for problem in problems_of(migration, state)]
    assert problems == []


def _last_state():
    loader = MigrationLoader(None, ignore_no_migrations=True)
    return loader.project_state()


def _migration(*operations, atomic: bool = True, app_label: str = "cases") -> Migration:
    migration = Migration("0099_new", app_label)
    migration.operations = list(operations)
    migration.atomic = atomic
    return migration


def test_the_scan_refuses_a_plain_index_change_on_a_large_table():
    state = _last_state()
    index = Index(fields=["title"], name="case_title_idx")
    plain = _migration(AddIndex(model_name="case", index=index))
    assert problems_of(plain, state) == [
        "cases.0099_new: Create index case_title_idx on field(s) title of model case "
        "must use migration_ops.AddIndexConcurrently"
    ]
    drop = _migration(RemoveIndex(model_name="caseevent", name="event_reopen_idx"))
    assert len(problems_of(drop, state)) == 1
    raw = _migration(RunSQL("CREATE INDEX case_title_idx ON cases_case (title)"))
    assert len(problems_of(raw, state)) == 1
    raw_drop = _migration(RunSQL("DROP INDEX IF EXISTS event_reopen_idx"))
    assert len(problems_of(raw_drop, state)) == 1


def test_the_scan_wants_the_concurrent_operation_outside_a_transaction():
    state = _last_state()
    index = Index(fields=["title"], name="case_title_idx")
    inside = _migration(migration_ops.AddIndexConcurrently(model_name="case", index=index), atomic=True)
    assert len(problems_of(inside, state)) == 1
    outside = _migration(migration_ops.AddIndexConcurrently(model_name="case", index=index), atomic=False)
    assert problems_of(outside, state) == []
    raw = _migration(RunSQL("CREATE INDEX CONCURRENTLY case_title_idx ON cases_case (title)"), atomic=False)
    assert problems_of(raw, state) == []
    small = _migration(AddIndex(model_name="team", index=Index(fields=["name"], name="team_name_idx")))
    assert problems_of(small, state) == []
