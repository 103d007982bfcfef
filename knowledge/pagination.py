"""Page numbers over search results, with the count capped.

Ranking needs every match anyway, but an exact COUNT of a broad query ("timeout" in half of 100,000
articles) costs as much again; nobody pages past the best thousand, so counting stops there.
"""

from __future__ import annotations

from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.utils.functional import cached_property

COUNT_CAP = 1000


class CappedCountPaginator(Paginator):
    """A paginator whose ``count`` stops at ``COUNT_CAP`` (``count_capped`` says it did)."""

    cap = COUNT_CAP

    @cached_property
    def _capped_count(self) -> tuple[int, bool]:
        rows = self.object_list
        assert isinstance(rows, QuerySet)  # the paginated list endpoints page querysets
        counted = rows.order_by().values("pk")[: self.cap + 1].count()
        return min(counted, self.cap), counted > self.cap

    @cached_property
    def count(self) -> int:
        return self._capped_count[0]

    @property
    def count_capped(self) -> bool:
        return self._capped_count[1]
