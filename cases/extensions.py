"""How other apps add to the case pages without the core importing them.

Each app registers in its ``AppConfig.ready()``: panels for the case page (an include template that
gets ``case`` and ``request``), extra columns for the queue (a cell template plus a function that
loads what the page's rows need in one query), badges on the queue's lines (read by the page's own
query), filters for the queue and the case list API, bulk actions for the queue's bar and the bulk
API, and readable labels for its timeline event kinds.
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


@dataclass(frozen=True)
class QueueBadge:
    """A mark before a queue line's title (e.g. the case's major incident). ``annotate`` adds what
    it reads to the page's own query (a correlated subquery: no query of its own, none per row);
    ``render`` turns one case of the page into safe HTML, or "" for none."""

    name: str
    annotate: Callable[[Any], Any]
    render: Callable[[Any], str]


_panels: list[CasePanel] = []
_orderings: dict[str, QueueOrdering] = {}
_columns: list[QueueColumn] = []
_badges: dict[str, QueueBadge] = {}
_filters: dict[str, Any] = {}
_bulk_actions: dict[str, Any] = {}
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


def register_queue_badge(name: str, *, annotate: Callable[[Any], Any], render: Callable[[Any], str]) -> None:
    _badges[name] = QueueBadge(name, annotate, render)


def queue_badges() -> list[QueueBadge]:
    return list(_badges.values())


def annotate_queue(queryset: Any) -> Any:
    """The queue page's queryset with what every registered badge reads."""
    for badge in _badges.values():
        queryset = badge.annotate(queryset)
    return queryset


def register_queue_filter(name: str, filter_: Any) -> None:
    """A filter of another app (a ``django_filters.Filter``) on the queue, its saved views and
    ``/api/cases/``, under the query parameter ``name``; the queue shows it under "More filters"."""
    from .filters import CaseFilter

    _filters[name] = filter_
    CaseFilter.base_filters[name] = filter_
    # The filter set builds its form class once (CaseFilter.get_form_class): build it again.
    if "_form_class" in CaseFilter.__dict__:
        del CaseFilter._form_class


def queue_filters() -> list[str]:
    """The names of the registered filters, in the order they were registered."""
    return list(_filters)


def register_bulk_action(name: str, action: Any) -> None:
    """A bulk action of another app (a ``cases.bulk.Action``), offered in the queue's bulk bar and
    taken by ``/api/cases/bulk/``; each case goes through ``action.apply`` as the core ones do."""
    _bulk_actions[name] = action


def bulk_actions() -> dict[str, Any]:
    return dict(_bulk_actions)
