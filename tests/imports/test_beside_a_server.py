"""An import in a process whose other threads hold database connections (a threaded web server, a
worker's threads, the suite's live server): the import's preparing process shares none of them, so
they keep working while and after it runs. On PostgreSQL this is a service test (the pipeline runs
there); on SQLite the same import runs without a preparing process, beside the same server."""

from __future__ import annotations

import http.client
import json
import queue
import threading
from urllib.parse import urlparse

import pytest
from django.db import connection, connections

from cases.models import Case
from imports.models import JobStatus
from tests.imports.conftest import DATA, run

pytestmark = [pytest.mark.django_db(transaction=True)]
if connection.vendor == "postgresql":
    pytestmark.append(pytest.mark.services)


class HeldConnection:
    """A thread of a threaded host: it opens its database connection and keeps it between queries."""

    def __init__(self) -> None:
        self._asked: queue.Queue = queue.Queue()
        self._answers: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._serve, name="held-connection", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        try:
            while (sql := self._asked.get()) is not None:
                try:
                    with connection.cursor() as cursor:
                        cursor.execute(sql)
                        self._answers.put(cursor.fetchone()[0])
                except Exception as exc:  # noqa: BLE001 - handed to the test, which raises it
                    self._answers.put(exc)
        finally:
            connections.close_all()

    def query(self, sql: str):
        self._asked.put(sql)
        answer = self._answers.get(timeout=60)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def close(self) -> None:
        self._asked.put(None)
        self._thread.join(timeout=60)


def _ready(server: http.client.HTTPConnection) -> dict:
    server.request("GET", "/healthz/ready")  # the same kept-alive connection: the same server thread
    response = server.getresponse()
    return json.loads(response.read())


class Visitor:
    """Asks the live server for its readiness (which reads the database) over and over, on one
    kept-alive connection, until stopped: a server busy with requests while the import runs."""

    def __init__(self, host: str, port: int) -> None:
        self.server = http.client.HTTPConnection(host, port, timeout=60)
        self.answers: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._visit, name="visitor", daemon=True)
        self._thread.start()

    def _visit(self) -> None:
        while not self._stop.is_set():
            try:
                self.answers.append(_ready(self.server)["database"])
            except Exception as exc:  # noqa: BLE001 - recorded: the test asserts every answer
                self.answers.append(f"{type(exc).__name__}: {exc}")
                return

    def stop(self) -> list[str]:
        self._stop.set()
        self._thread.join(timeout=60)
        self.server.close()
        return self.answers


def test_an_import_leaves_the_connections_of_the_other_threads_working(live_server):
    address = urlparse(live_server.url)
    server = http.client.HTTPConnection(address.hostname, address.port, timeout=60)
    held = HeldConnection()
    try:
        assert _ready(server)["database"] == "ok"
        identity = "SELECT pg_backend_pid()" if connection.vendor == "postgresql" else "SELECT 1"
        before = held.query(identity)
        assert held.query("SELECT count(*) FROM cases_case") == 0

        visitor = Visitor(address.hostname, address.port)
        try:
            job = run(DATA / "servicenow.csv", batch_rows=5)  # several batches
        finally:
            answers = visitor.stop()

        assert job.status == JobStatus.SUCCEEDED, job.error
        assert (job.cases_created, job.events_created) == (5, 34)
        # The server answered from its database all the while.
        assert answers
        assert set(answers) == {"ok"}, answers[-1]
        # The thread's connection is the one it had, and it sees what the import wrote.
        assert held.query(identity) == before
        assert held.query("SELECT count(*) FROM cases_case") == Case.objects.count() == 5
        # The live server still answers from its database, on its kept connection and a new one.
        assert _ready(server)["database"] == "ok"
        fresh = http.client.HTTPConnection(address.hostname, address.port, timeout=60)
        try:
            assert _ready(fresh)["database"] == "ok"
        finally:
            fresh.close()
    finally:
        held.close()
        server.close()
