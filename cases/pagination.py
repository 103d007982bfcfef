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


def _prepare(model, fields: list[str], values: list[Any]) -> list[Any]:
    """Check each cursor value against its field's type, so a tampered cursor is a clear error."""
    prepared = []
    for name, value in zip(fields, values, strict=True):
        try:
            field = model._meta.get_field(name)
        except FieldDoesNotExist:
            # An annotation (e.g. the SLA's next due instant): _decode already typed it.
            prepared.append(value)
            continue
        if value is None:
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


def paginate(
    queryset: QuerySet, *, ordering: list[str], cursor: str | None, page_size: int, datetime_fields: set[str]
) -> Page:
    """One page of ``queryset`` in ``ordering`` (which must end with a unique field, e.g. ``id``).

    Fields in ``ordering`` must not be NULL (they are compared with < and >).
    """
    fields = [spec.lstrip("-") for spec in ordering]
    backwards = False
    if cursor:
        values, backwards = _decode(cursor, fields, datetime_fields)
        values = _prepare(queryset.model, fields, values)
        queryset = _filter_after(queryset, ordering, values, backwards=backwards)
    order = ordering if not backwards else [s[1:] if s.startswith("-") else f"-{s}" for s in ordering]
    rows = list(queryset.order_by(*order)[: page_size + 1])
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
