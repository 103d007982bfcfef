"""How other apps add to the case pages without the core importing them.

Each app registers in its ``AppConfig.ready()``: panels for the case page (an include template that
gets ``case`` and ``request``), extra columns for the queue (a cell template plus a function that
loads what the page's rows need in one query), and readable labels for its timeline event kinds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class CasePanel:
    template: str
    slot: str  # "head" (under the title), "side" (the details column) or "main" (above the composers)
    order: int = 100


@dataclass(frozen=True)
class QueueColumn:
    header: str
    template: str  # rendered per row with ``case`` and ``column_data`` (what ``load`` returned)
    load: Callable[[Sequence[Any]], Any] | None = None
    order: int = 100


@dataclass(frozen=True)
class QueueOrdering:
    name: str
    label: str
    ordering: list[str]  # keyset ordering; may name fields that ``annotate`` adds (never NULL)
    annotate: Callable[[Any], Any]
    datetime_fields: frozenset[str] = frozenset()


_panels: list[CasePanel] = []
_orderings: dict[str, QueueOrdering] = {}
_columns: list[QueueColumn] = []
_event_labels: dict[str, str] = {}


def register_case_panel(template: str, *, slot: str, order: int = 100) -> None:
    panel = CasePanel(template=template, slot=slot, order=order)
    if panel not in _panels:
        _panels.append(panel)


def register_queue_column(
    header: str, template: str, *, load: Callable[[Sequence[Any]], Any] | None = None, order: int = 100
) -> None:
    if all(c.template != template for c in _columns):
        _columns.append(QueueColumn(header=header, template=template, load=load, order=order))


def register_event_labels(labels: dict[str, str]) -> None:
    """Human labels for timeline kinds recorded by other apps (codes stay in the data)."""
    _event_labels.update(labels)


def register_queue_ordering(
    name: str,
    label: str,
    ordering: list[str],
    *,
    annotate: Callable[[Any], Any],
    datetime_fields: frozenset[str] = frozenset(),
) -> None:
    """A sort order for the queue computed by another app (e.g. the SLA's next due instant)."""
    _orderings[name] = QueueOrdering(name, label, list(ordering), annotate, frozenset(datetime_fields))


def queue_orderings() -> dict[str, QueueOrdering]:
    return dict(_orderings)


def case_panels(slot: str) -> list[str]:
    return [p.template for p in sorted(_panels, key=lambda p: p.order) if p.slot == slot]


def queue_columns() -> list[QueueColumn]:
    return sorted(_columns, key=lambda c: c.order)


def event_label(kind: str) -> str | None:
    return _event_labels.get(kind)
