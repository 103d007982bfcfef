"""Reads of the configuration audit trail: the newest changes first, each with what it changed.

The trail is the history tables of ``audit.TRACKED`` (one per tracked model). A page of changes
costs a fixed number of queries whatever its size: one ``UNION ALL`` of the history tables for
the page (and one for its count), then per kind on the page its rows with the id of each one's
previous row, those previous rows and their many-to-many sets, then per related model the names
it shows (live rows, else the last recorded state of a deleted one).
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model
from django.db import models
from django.db.models import CharField, OuterRef, Subquery, Value
from simple_history.utils import get_history_manager_for_model

from .audit import BASELINE_REASON, RECORDS, TRACKED, AuditedHistory

ACTIONS = {"+": "created", "~": "changed", "-": "deleted"}
#: The value of the "who" filter for changes nobody signed in made (commands, workers, expiry).
SYSTEM = "system"


@dataclass(frozen=True)
class Shown:
    """A value as the page shows it: text, or an instant the template renders in the viewer's zone."""

    text: str
    instant: dt.datetime | None = None

    def as_json(self) -> str:
        return self.instant.isoformat() if self.instant is not None else self.text


@dataclass(frozen=True)
class FieldChange:
    field: str
    label: str
    before: Shown | None
    after: Shown | None


@dataclass
class ConfigChange:
    id: str
    kind: str
    kind_label: str
    action: str
    at: dt.datetime
    user_id: int | None
    actor: str
    reason: str
    object_id: int
    object_label: str
    changes: list[FieldChange] = field(default_factory=list)
    note: str = ""


def kinds() -> list[tuple[str, str]]:
    """(kind, label) of every tracked model, by label."""
    return sorted(((key, _records(m).kind_label) for key, m in TRACKED.items()), key=lambda kv: kv[1])


def _history(model: type[models.Model]) -> Any:
    """The history model of ``model``: a class simple-history builds at run time (its fields,
    ``history_object`` and ``_history_m2m_fields`` are not known statically)."""
    return get_history_manager_for_model(model).model


def _records(model: type[models.Model]) -> AuditedHistory:
    return RECORDS[model]


def change_index(*, kind: str | None = None, user: str | None = None) -> models.QuerySet:
    """The changes, newest first, as rows of (history_date, history_id, kind): a queryset to
    paginate; ``describe`` turns a page of it into changes. ``user`` is a user id or ``SYSTEM``."""
    parts = []
    for key, model in TRACKED.items():
        if kind and key != kind:
            continue
        # A baseline is the "before" of the change after it, not a change of its own.
        rows = _history(model)._default_manager.exclude(history_change_reason=BASELINE_REASON)
        if user == SYSTEM:
            rows = rows.filter(history_user_id__isnull=True)
        elif user:
            rows = rows.filter(history_user_id=int(user))
        parts.append(
            rows.order_by().values("history_date", "history_id", kind=Value(key, output_field=CharField()))
        )
    if not parts:
        return _history(next(iter(TRACKED.values())))._default_manager.none().values("history_date")
    first, *rest = parts
    combined = first.union(*rest, all=True) if rest else first
    return combined.order_by("-history_date", "-history_id")


def actors() -> list[tuple[str, str]]:
    """(filter value, name) of everyone who changed something, and the system if it did."""
    parts = [
        _history(model)._default_manager.order_by().values("history_user_id").distinct()
        for model in TRACKED.values()
    ]
    first, *rest = parts
    ids = {row["history_user_id"] for row in first.union(*rest)}
    names = _Names()
    users = names.resolve(get_user_model(), ids - {None})
    choices = sorted(
        ((str(pk), _person(users.get(pk), pk)) for pk in ids - {None}), key=lambda c: c[1].lower()
    )
    if None in ids:
        choices.append((SYSTEM, "System"))
    return choices


# --- one page ------------------------------------------------------------------------------------


class _Names:
    """Related objects by model and id, fetched once per model: live rows, else (deleted) the
    last recorded state of the row, else a bare instance."""

    def __init__(self) -> None:
        self.deleted: set[tuple[type[models.Model], object]] = set()

    def resolve(self, model: type[models.Model], ids: Iterable) -> dict:
        ids = {i for i in ids if i is not None}
        if not ids:
            return {}
        found = dict(model._default_manager.in_bulk(ids))
        missing = ids - found.keys()
        if missing and getattr(model._meta, "simple_history_manager_attribute", None):
            pk = model._meta.pk.attname
            for row in (
                _history(model)
                ._default_manager.filter(**{f"{pk}__in": missing})
                .order_by(pk, "-history_date", "-history_id")
            ):
                key = getattr(row, pk)
                if key not in found:
                    found[key] = row.history_object
                    self.deleted.add((model, key))
        for key in ids - found.keys():
            found[key] = model(pk=key)
            self.deleted.add((model, key))
        return found

    def text(self, model: type[models.Model], obj) -> str:
        try:
            shown = str(obj) or f"{model._meta.verbose_name} #{obj.pk}"
        except models.ObjectDoesNotExist:
            shown = f"{model._meta.verbose_name} #{obj.pk}"
        return f"{shown} (deleted)" if (model, obj.pk) in self.deleted else shown


def _person(user, pk) -> str:
    if user is None:
        return f"user #{pk}"
    return user.get_full_name() or user.get_username()


def _shown_fields(model: type[models.Model]) -> list[models.Field]:
    return [f for f in _records(model).fields_included(model) if f.editable and not f.primary_key]


def describe(rows: Sequence[dict]) -> list[ConfigChange]:
    """The changes of a page of ``change_index`` rows, in the same order."""
    by_kind: dict[str, list[int]] = defaultdict(list)
    for row in rows:
        by_kind[row["kind"]].append(row["history_id"])
    names = _Names()
    loaded: dict[str, dict] = {}
    wanted: dict[type[models.Model], set] = defaultdict(set)  # related model -> ids to name
    user_model = get_user_model()
    for key, ids in by_kind.items():
        model = TRACKED[key]
        history = _history(model)
        pk = model._meta.pk.attname
        previous = (
            history._default_manager.filter(**{pk: OuterRef(pk)}, history_id__lt=OuterRef("history_id"))
            .order_by("-history_id")
            .values("history_id")[:1]
        )
        records = {
            r.history_id: r
            for r in history._default_manager.filter(history_id__in=ids).annotate(
                previous_id=Subquery(previous)
            )
        }
        prev_ids = [r.previous_id for r in records.values() if r.history_type == "~" and r.previous_id]
        prevs = history._default_manager.in_bulk(prev_ids)
        m2m = {}
        all_ids = [*records, *prevs]
        for m2m_field in history._history_m2m_fields:
            through = AuditedHistory.m2m_models[m2m_field]
            target = m2m_field.m2m_reverse_field_name()
            sets: dict[int, set] = defaultdict(set)
            for history_id, target_id in through._default_manager.filter(history_id__in=all_ids).values_list(
                "history_id", f"{target}_id"
            ):
                sets[history_id].add(target_id)
            m2m[m2m_field] = sets
            for values in sets.values():
                wanted[m2m_field.related_model] |= values
        for record in [*records.values(), *prevs.values()]:
            for f in _records(model).fields_included(model):
                if f.is_relation:
                    wanted[f.related_model].add(getattr(record, f.attname))
            wanted[user_model].add(record.history_user_id)
        loaded[key] = {"records": records, "prevs": prevs, "m2m": m2m}
    related = {model: names.resolve(model, ids) for model, ids in wanted.items()}

    changes = []
    for row in rows:
        model = TRACKED[row["kind"]]
        data = loaded[row["kind"]]
        record = data["records"][row["history_id"]]
        prev = data["prevs"].get(record.previous_id) if record.history_type == "~" else None
        changes.append(_change(model, row["kind"], record, prev, data["m2m"], related, names))
    return changes


def _change(model, kind, record, prev, m2m, related, names: _Names) -> ConfigChange:
    user_model = get_user_model()
    users = related.get(user_model, {})
    user_id = record.history_user_id
    if user_id is None:
        actor = "System"
    else:
        actor = _person(users.get(user_id), user_id)
        if (user_model, user_id) in names.deleted:
            actor += " (deleted)"
    obj = record.history_object
    for f in _records(model).fields_included(model):
        if f.is_relation:
            target = related.get(f.related_model, {}).get(getattr(obj, f.attname))
            if target is not None:
                f.set_cached_value(obj, target)
    change = ConfigChange(
        id=f"{kind}:{record.history_id}",
        kind=kind,
        kind_label=_records(model).kind_label,
        action=ACTIONS[record.history_type],
        at=record.history_date,
        user_id=user_id,
        actor=actor,
        reason=record.history_change_reason or "",
        object_id=getattr(record, model._meta.pk.attname),
        object_label=_object_label(model, obj),
    )

    def shown(rec, f) -> Shown:
        return _shown(f, getattr(rec, f.attname), related, names)

    def shown_set(rec, m2m_field) -> Shown:
        targets = related.get(m2m_field.related_model, {})
        labels = sorted(
            names.text(m2m_field.related_model, targets[i]) for i in m2m[m2m_field].get(rec.history_id, ())
        )
        return Shown(", ".join(labels) or "—")

    m2m_fields = list(m2m)
    if record.history_type == "~" and prev is not None:
        for f in _shown_fields(model):
            before, after = shown(prev, f), shown(record, f)
            if before != after:  # not a change at the precision shown (an admin form's seconds)
                change.changes.append(FieldChange(f.name, _label(f), before, after))
        for m2m_field in m2m_fields:
            if m2m[m2m_field].get(prev.history_id, set()) != m2m[m2m_field].get(record.history_id, set()):
                change.changes.append(
                    FieldChange(
                        m2m_field.name,
                        _label(m2m_field),
                        shown_set(prev, m2m_field),
                        shown_set(record, m2m_field),
                    )
                )
        if not change.changes and not getattr(record, "secret_changed", False):
            change.note = "Saved without a visible change."
    else:
        if record.history_type == "~":
            change.note = "No earlier record is kept: the values after this change."
        deleted = record.history_type == "-"
        for f in _shown_fields(model):
            value = shown(record, f)
            if value.text != "—" or value.instant is not None:
                change.changes.append(
                    FieldChange(f.name, _label(f), value if deleted else None, None if deleted else value)
                )
        for m2m_field in m2m_fields:
            value = shown_set(record, m2m_field)
            if value.text != "—":
                change.changes.append(
                    FieldChange(
                        m2m_field.name,
                        _label(m2m_field),
                        value if deleted else None,
                        None if deleted else value,
                    )
                )
    if getattr(record, "secret_changed", False):
        change.changes.append(
            FieldChange("secret", "Signing secret", Shown("(not kept)"), Shown("changed (not kept)"))
        )
    return change


def _label(f) -> str:
    name = str(f.verbose_name)
    return name[:1].upper() + name[1:]


def _object_label(model, obj) -> str:
    describe = _records(model).describe or str
    try:
        return describe(obj) or f"{model._meta.verbose_name} #{obj.pk}"
    except models.ObjectDoesNotExist:
        return f"{model._meta.verbose_name} #{obj.pk}"


def _shown(f: models.Field, value, related, names: _Names) -> Shown:
    if value is None or value == "":
        return Shown("—")
    if f.is_relation:
        target_model = f.related_model
        assert isinstance(target_model, type)  # "self" is resolved to the class once apps are ready
        target = related.get(target_model, {}).get(value)
        return Shown(names.text(target_model, target) if target is not None else f"#{value}")
    if f.choices:
        return Shown(str(dict(f.flatchoices).get(value, value)))
    if isinstance(f, models.BooleanField):
        return Shown("yes" if value else "no")
    if isinstance(f, models.DateTimeField):
        value = value.replace(microsecond=0)
        return Shown(value.isoformat(), instant=value)
    if isinstance(f, models.TimeField):
        return Shown(f"{value:%H:%M}")
    if isinstance(f, models.DateField):
        return Shown(value.isoformat())
    if isinstance(f, models.JSONField):
        if isinstance(value, list):
            return Shown(", ".join(str(v) for v in value) or "—")
        return Shown(json.dumps(value, sort_keys=True))
    return Shown(str(value))
