"""Where a period's figures come from: the daily rollup for its clean rolled-up UTC days, the
source for the rest (``metrics.rollup``: ``split``, ``sums``)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from .. import rollup
from .base import Periods


def split(periods: Periods, **filters: Any) -> tuple[list, list] | None:
    """``rollup.split`` of the periods (two queries), or None when the filters need the source."""
    return rollup.split(periods.bounds) if rollup.usable(**filters) else None


@dataclass(frozen=True)
class Plan:
    """Where each period's count metrics come from: rollup sums for its clean rolled-up days
    (``days``, ``split``'s runs), the source for its ``edges`` (Periods of the remaining ranges,
    ``owner`` mapping each to its period)."""

    days: list[tuple[int, dt.date, dt.date]]
    sums: dict[tuple[int, str], dict[str, int]]
    edges: Periods | None
    owner: dict[tuple[dt.datetime, dt.datetime], int]

    @classmethod
    def make(cls, periods: Periods, split: tuple[list, list] | None, **filters: Any) -> Plan | None:
        if split is None:
            return None
        days, edges = split
        return cls(
            days=days,
            sums=rollup.sums(days, **filters),
            edges=Periods([(start, end) for _, start, end in edges]) if edges else None,
            owner={(start, end): i for i, start, end in edges},
        )

    def edge_owners(self) -> list[int]:
        return [self.owner[bound] for bound in self.edges.bounds] if self.edges else []
