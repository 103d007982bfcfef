"""Keyset ("cursor") pagination over a composite ordering.

Deep pages cost the same as the first: the next page starts with a row-value comparison on an
index (``(severity, created_at, id) > (...)``), never an OFFSET. Used by the queue page and the API.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db import connection
from django.db.models import Q, QuerySet
from django.utils.dateparse import parse_datetime


class InvalidCursor(ValueError):
    pass


def _encode(values: list[Any], *, backwards: bool) -> str:
    plain = [v.isoformat() if isinstance(v, dt.datetime) else v for v in values]
    raw = json.dumps({"v": plain, "b": backwards}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(cursor: str, fields: list[str], datetime_fields: set[str]) -> tuple[list[Any], bool]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
        values = data["v"]
        backwards = bool(data.get("b", False))
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidCursor("That page link is not valid any more; start from the first page.") from exc
    if not isinstance(values, list) or len(values) != len(fields):
        raise InvalidCursor("That page link does not match this sort order; start from the first page.")
    decoded = []
    for name, value in zip(fields, values, strict=True):
        if name in datetime_fields and value is not None:
            parsed = parse_datetime(value) if isinstance(value, str) else None
            if parsed is None:
                raise InvalidCursor("That page link is not valid any more; start from the first page.")
            value = parsed
        decoded.append(value)
    return decoded, backwards


@dataclass
class Page:
    items: list
    next_cursor: str | None
    previous_cursor: str | None


def _after(ordering: list[str], values: list[Any], *, backwards: bool) -> Q:
    """Rows strictly after ``values`` in ``ordering`` (or before, when paging backwards)."""
    q = Q()
    for i, spec in enumerate(ordering):
        name = spec.lstrip("-")
        descending = spec.startswith("-") != backwards
        lookup = "lt" if descending else "gt"
        clause = Q(**{f"{name}__{lookup}": values[i]})
        for prev_spec, prev_value in zip(ordering[:i], values[:i], strict=True):
            clause &= Q(**{prev_spec.lstrip("-"): prev_value})
        q |= clause
    return q


def _prepare(model, fields: list[str], values: list[Any], *, nullable: str | None = None) -> list[Any]:
    """Check each cursor value against its field's type, so a tampered cursor is a clear error."""
    prepared = []
    for name, value in zip(fields, values, strict=True):
        try:
            field = model._meta.get_field(name)
        except FieldDoesNotExist:
            # An annotation: _decode already typed it.
            prepared.append(value)
            continue
        if value is None:
            if name == nullable:
                prepared.append(None)
                continue
            raise InvalidCursor("That page link is not valid any more; start from the first page.")
        try:
            prepared.append(field.to_python(value))
        except (ValidationError, TypeError, ValueError) as exc:
            raise InvalidCursor("That page link is not valid any more; start from the first page.") from exc
    return prepared


def _filter_after(queryset: QuerySet, ordering: list[str], values: list[Any], *, backwards: bool) -> QuerySet:
    """Rows after the cursor. When every field sorts the same way this is one row-value comparison
    (``(a, b, id) > (%s, %s, %s)``), which PostgreSQL answers with a single index range scan; the
    equivalent OR-expansion is kept for mixed directions."""
    directions = {spec.startswith("-") for spec in ordering}
    concrete = {f.name for f in queryset.model._meta.concrete_fields}
    if len(directions) != 1 or any(spec.lstrip("-") not in concrete for spec in ordering):
        return queryset.filter(_after(ordering, values, backwards=backwards))
    descending = directions.pop() != backwards
    model = queryset.model
    table = connection.ops.quote_name(model._meta.db_table)
    columns, params = [], []
    for spec, value in zip(ordering, values, strict=True):
        field = model._meta.get_field(spec.lstrip("-"))
        columns.append(f"{table}.{connection.ops.quote_name(field.column)}")
        params.append(field.get_db_prep_value(value, connection, prepared=False))
    placeholders = ", ".join(["%s"] * len(params))
    operator = "<" if descending else ">"
    where = f"({', '.join(columns)}) {operator} ({placeholders})"
    return queryset.extra(where=[where], params=params)  # noqa: S610 - only column names and placeholders


def _nullable_lead(model, ordering: list[str]) -> str | None:
    """The ordering's first field when it may be NULL and sorts ascending (NULLs last), else None."""
    name = ordering[0]
    if name.startswith("-") or len(ordering) < 2:
        return None
    try:
        field = model._meta.get_field(name)
    except FieldDoesNotExist:
        return None
    return name if field.null else None


def _reverse(ordering: list[str]) -> list[str]:
    return [s[1:] if s.startswith("-") else f"-{s}" for s in ordering]


def _part(
    queryset: QuerySet,
    ordering: list[str],
    values: list[Any] | None,
    *,
    backwards: bool,
    limit: int,
    rows_from: QuerySet | None = None,
):
    """Up to ``limit`` rows after (before) ``values`` in ``ordering``, in the reading direction.

    The ids come from ``queryset``; the rows from ``rows_from`` (the same rows without the filters,
    which the ids have already applied), else from ``queryset`` again."""
    order = _reverse(ordering) if backwards else ordering
    ordered = queryset.order_by(*order)
    if values is not None:
        ordered = _filter_after(ordered, ordering, values, backwards=backwards)
    # The page's ids first (an index range scan, joined only where a filter needs it), then its
    # rows with their joins. In one query PostgreSQL estimates the open cases with a due instant
    # (or those after a row comparison) as a couple of hundred at most, and joined every one of
    # the thousands it found to their organisation, requester, assignee and team before sorting.
    ids = list(ordered.values_list("pk", flat=True)[:limit])
    if not ids:
        return []
    source = rows_from if rows_from is not None else queryset
    rows = {row.pk: row for row in source.filter(pk__in=ids).order_by()}
    return [rows[pk] for pk in ids if pk in rows]


def _rows(
    queryset: QuerySet,
    ordering: list[str],
    values: list[Any] | None,
    *,
    backwards: bool,
    limit: int,
    nullable,
    rows_from: QuerySet | None = None,
) -> list:
    """The rows of one page (plus one, to tell whether there are more), in the reading direction.

    With a nullable leading field (``next_due_at``: NULLs last) the order is two keyset ranges read
    one after the other, each an index range scan: the rows that have a value (``(f, ..., id) >
    (...)``), then those that have none (``f IS NULL AND (..., id) > (...)``).
    """
    if nullable is None:
        return _part(queryset, ordering, values, backwards=backwards, limit=limit, rows_from=rows_from)
    valued = queryset.filter(**{f"{nullable}__isnull": False})
    empty = queryset.filter(**{f"{nullable}__isnull": True})
    rest = ordering[1:]
    in_empty = values is not None and values[0] is None
    rest_values = values[1:] if values is not None else None
    if not backwards:
        if in_empty:
            return _part(empty, rest, rest_values, backwards=False, limit=limit, rows_from=rows_from)
        rows = _part(valued, ordering, values, backwards=False, limit=limit, rows_from=rows_from)
        if len(rows) < limit:
            rows += _part(empty, rest, None, backwards=False, limit=limit - len(rows), rows_from=rows_from)
        return rows
    if not in_empty:
        return _part(valued, ordering, values, backwards=True, limit=limit, rows_from=rows_from)
    rows = _part(empty, rest, rest_values, backwards=True, limit=limit, rows_from=rows_from)
    if len(rows) < limit:
        rows += _part(valued, ordering, None, backwards=True, limit=limit - len(rows), rows_from=rows_from)
    return rows


def paginate(
    queryset: QuerySet,
    *,
    ordering: list[str],
    cursor: str | None,
    page_size: int,
    datetime_fields: set[str],
    rows_from: QuerySet | None = None,
) -> Page:
    """One page of ``queryset`` in ``ordering`` (which must end with a unique field, e.g. ``id``).

    Fields in ``ordering`` must not be NULL (they are compared with < and >), except a first field
    that sorts ascending, whose NULLs come last (the queue's urgency: cases with nothing due).
    ``rows_from``: where the page's rows are read once their ids are known (see ``_part``).
    """
    fields = [spec.lstrip("-") for spec in ordering]
    nullable = _nullable_lead(queryset.model, ordering)
    backwards = False
    values = None
    if cursor:
        values, backwards = _decode(cursor, fields, datetime_fields)
        values = _prepare(queryset.model, fields, values, nullable=nullable)
    rows = _rows(
        queryset,
        ordering,
        values,
        backwards=backwards,
        limit=page_size + 1,
        nullable=nullable,
        rows_from=rows_from,
    )
    has_more = len(rows) > page_size
    rows = rows[:page_size]
    if backwards:
        rows.reverse()

    def key_of(row) -> list[Any]:
        return [getattr(row, f) for f in fields]

    next_cursor = previous_cursor = None
    if rows:
        if (not backwards and has_more) or (backwards and cursor):
            next_cursor = _encode(key_of(rows[-1]), backwards=False)
        if (backwards and has_more) or (not backwards and cursor):
            previous_cursor = _encode(key_of(rows[0]), backwards=True)
    return Page(items=rows, next_cursor=next_cursor, previous_cursor=previous_cursor)
