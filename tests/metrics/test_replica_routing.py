"""Dashboards, the metrics API and the CSV exports read from the replica; a case page does not.

``replica`` is configured as settings configure ``DATABASE_REPLICA_URL`` under test: an alias
mirroring the test database (``TEST: {"MIRROR": "default"}``), so the rows written through default
are there to read (the tests commit: ``transaction=True``). Queries are captured per connection to
tell which one answered. Without the alias: tests/core/test_db_router.py.
"""

from __future__ import annotations

import copy
import datetime as dt
import threading
from contextlib import contextmanager

import pytest
from django.db import connections, router
from django.test.utils import CaptureQueriesContext

from cases.models import Case
from metrics import selectors
from metrics.figures import base
from supportdesk.core.db_router import REPLICA, reads_from_replica

WEEK = {"start": "2025-03-03", "end": "2025-03-09", "tz": "Europe/Berlin"}
FIGURE_TABLES = ("cases_case", "sla_slaclock", "cases_caseevent")

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", REPLICA])


@pytest.fixture(scope="module", autouse=True)
def replica(django_db_setup, django_db_blocker):
    """A ``replica`` alias that mirrors the test database, for this module's tests only.

    Module-scoped so that it exists before each test's database setup, which must allow the alias
    (``databases`` above) for its connections to open, the figure threads' included."""
    conf = copy.deepcopy(connections["default"].settings_dict)
    conf["TEST"] = {**conf.get("TEST", {}), "MIRROR": "default"}
    connections.settings[REPLICA] = conf
    yield REPLICA
    with django_db_blocker.unblock():
        connections[REPLICA].close()
        if hasattr(connections[REPLICA], "close_pool"):  # PostgreSQL
            connections[REPLICA].close_pool()
    del connections[REPLICA]
    del connections.settings[REPLICA]


@pytest.fixture(autouse=True)
def _figures_in_the_request_thread(settings):
    """The figures in the request's thread, where its connections' queries are captured (on
    PostgreSQL they would run in threads of their own: the last test follows them there)."""
    settings.METRICS_QUERY_THREADS = 1


@pytest.fixture
def manager_client(client, manager):
    client.force_login(manager)
    return client


@contextmanager
def captured():
    """(default's queries, replica's queries) of this thread, as lists of SQL."""
    with (
        CaptureQueriesContext(connections["default"]) as on_default,
        CaptureQueriesContext(connections[REPLICA]) as on_replica,
    ):
        result: tuple[list[str], list[str]] = ([], [])
        yield result
    result[0].extend(q["sql"] for q in on_default.captured_queries)
    result[1].extend(q["sql"] for q in on_replica.captured_queries)


def _figures(queries: list[str]) -> list[str]:
    return [sql for sql in queries if any(f'"{table}"' in sql for table in FIGURE_TABLES)]


def test_the_dashboard_reads_its_figures_from_the_replica(dataset, manager_client):
    with captured() as (on_default, on_replica):
        response = manager_client.get("/metrics/", WEEK)
    assert response.status_code == 200
    assert _figures(on_replica)
    assert _figures(on_default) == []  # default only answers for the session and the user


@pytest.mark.parametrize(
    ("url", "params"),
    [
        ("/api/metrics/summary/", WEEK),
        ("/api/metrics/backlog/", {}),
        ("/api/metrics/trends/", {"end": "2025-03-09", "tz": "Europe/Berlin", "weeks": 2}),
        ("/api/metrics/cases/", {**WEEK, "metric": "first_response_time"}),
        ("/metrics/cases/", {**WEEK, "metric": "first_response_time"}),
    ],
)
def test_the_metrics_api_and_drilldown_read_from_the_replica(dataset, manager_client, url, params):
    with captured() as (on_default, on_replica):
        response = manager_client.get(url, params)
    assert response.status_code == 200, response.content
    assert _figures(on_replica)
    assert _figures(on_default) == []


def test_a_streamed_export_reads_its_rows_from_the_replica_after_the_view_returned(dataset, manager_client):
    response = manager_client.get("/metrics/export/cases.csv", {**WEEK, "metric": "volume_created"})
    assert response.status_code == 200
    with captured() as (on_default, on_replica):  # the rows are read while the body streams
        body = b"".join(response.streaming_content).decode()
    assert body.splitlines()[1].startswith(f"{dataset.a.key},A,")
    assert _figures(on_replica)
    assert _figures(on_default) == []


def test_a_case_page_reads_its_own_writes_from_default(dataset, agent, client):
    client.force_login(agent)
    with captured() as (on_default, on_replica):
        response = client.get(dataset.a.get_absolute_url())
    assert response.status_code == 200
    assert _figures(on_default)
    assert on_replica == []


def test_writes_in_the_scope_go_to_default_and_migrations_only_there(dataset):
    with reads_from_replica():
        case = Case.objects.get(pk=dataset.a.pk)
        assert case._state.db == REPLICA
        assert router.db_for_write(Case, instance=case) == "default"
        assert router.allow_relation(case, Case.objects.using("default").get(pk=dataset.b.pk))
    assert Case.objects.get(pk=dataset.a.pk)._state.db == "default"
    assert router.allow_migrate("default", "cases")
    assert not router.allow_migrate(REPLICA, "cases")


@pytest.mark.services
def test_the_figure_threads_carry_the_scope_to_the_replica(dataset, settings, monkeypatch):
    """On PostgreSQL the figures run on METRICS_QUERY_THREADS threads, each with connections of its
    own: they must read from the replica too, not fall back to default."""
    settings.METRICS_QUERY_THREADS = 3
    seen = []
    original = base.sorting_in_memory

    @contextmanager
    def recording(using="default"):
        on_replica, on_default = connections[REPLICA], connections["default"]
        on_replica.force_debug_cursor = on_default.force_debug_cursor = True
        before = (len(on_default.queries_log), len(on_replica.queries_log))
        with original(using):
            yield
        seen.append(
            (
                threading.current_thread().name,
                using,
                len(on_default.queries_log) - before[0],
                len(on_replica.queries_log) - before[1],
            )
        )

    monkeypatch.setattr(base, "sorting_in_memory", recording)
    period = selectors.local_period(dt.date(2025, 3, 3), dt.date(2025, 3, 9), "Europe/Berlin")
    with reads_from_replica():
        threaded = selectors.period_metrics(**period)
    in_threads = [entry for entry in seen if entry[0].startswith("metrics")]
    assert len(in_threads) > 1, seen
    assert all(
        using == REPLICA and on_default == 0 and on_replica > 0
        for _, using, on_default, on_replica in in_threads
    ), in_threads
    assert threaded == selectors.period_metrics(**period)  # the same figures as from default
