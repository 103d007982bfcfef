"""Reads of the managers' dashboards, the metrics API and the CSV exports from a read replica.

With ``DATABASE_REPLICA_URL`` set, settings add a ``replica`` database alias. Nothing reads from it
by default: only code inside an explicit ``reads_from_replica()`` scope does (a context manager, or
a decorator on a view). A replica lags its primary by a moment, so the scope is for pages that
show aggregates of what is committed, never for a page that must show what its user just wrote
(a case page, a form's redirect). Writes always go to ``default``; migrations run on ``default``
only. Without the alias the scope changes nothing.

The scope lives in a context variable: it follows a request through its own thread, but a thread
pool does not carry it by itself; code that runs work in threads copies the context
(``contextvars.copy_context().run``), as the metrics figures do.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

from django.db import DEFAULT_DB_ALIAS, connections

REPLICA = "replica"

_scope: ContextVar[bool] = ContextVar("supportdesk_reads_from_replica", default=False)


def replica_configured() -> bool:
    return REPLICA in connections.settings


def read_alias() -> str:
    """The database alias that reads of this context go to."""
    return REPLICA if _scope.get() and replica_configured() else DEFAULT_DB_ALIAS


@contextlib.contextmanager
def reads_from_replica() -> Iterator[None]:
    """Inside: ORM reads go to the replica, if one is configured. Also a decorator:
    ``@reads_from_replica()``."""
    token = _scope.set(True)
    try:
        yield
    finally:
        _scope.reset(token)


class ReplicaRouter:
    """Reads to the replica inside ``reads_from_replica``; everything else to default."""

    def db_for_read(self, model, **hints) -> str | None:
        return REPLICA if _scope.get() and replica_configured() else None

    def db_for_write(self, model, **hints) -> str:
        # Explicit: left to Django, a row read from the replica would be saved back to it.
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1, obj2, **hints) -> bool | None:
        aliases = {DEFAULT_DB_ALIAS, REPLICA}
        if obj1._state.db in aliases and obj2._state.db in aliases:
            return True
        return None

    def allow_migrate(self, db: str, app_label: str, model_name: str | None = None, **hints) -> bool:
        return db == DEFAULT_DB_ALIAS
