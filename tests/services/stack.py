"""Start the production commands of docker-compose.yml as local processes against real services."""

from __future__ import annotations

import http.cookiejar
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path

import yaml
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
# The services' secret key. A test whose own process signs what a worker checks (the per-case reply
# address of inbound mail) uses it too, as web and worker machines share one in production.
SECRET_KEY = "service-suite-secret-key-not-for-production-0123456789"


def compose_services() -> dict[str, dict]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]


def compose_command(service: str) -> list[str]:
    command = compose_services()[service].get("command") or []
    return list(command) if isinstance(command, list) else command.split()


def worker_services() -> list[str]:
    """The compose services that run a Celery worker (one per lane of queues), in file order."""
    return [
        name
        for name in compose_services()
        if compose_command(name)[:1] == ["celery"] and "worker" in compose_command(name)
    ]


def product_queues() -> list[str]:
    """Every queue the product routes tasks to (CELERY_TASK_QUEUES)."""
    return [queue.name for queue in settings.CELERY_TASK_QUEUES]


def purge_product_queues() -> None:
    """Drop messages a previous test left in any product queue (they would run in this one), and
    those a killed worker held unacknowledged (Redis would hand them out again later)."""
    from supportdesk.celery import app as celery_app

    with celery_app.connection_for_write() as conn:
        channel = conn.default_channel
        for name in product_queues():
            channel.queue_purge(name)
        if hasattr(channel, "unacked_key"):  # the Redis transport
            channel.client.delete(channel.unacked_key, channel.unacked_index_key)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def service_env(var_dir: Path, **extra: str) -> dict[str, str]:
    """The environment the compose services get, pointed at the test database and broker."""
    db = connection.settings_dict
    database_url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "SECRET_KEY": SECRET_KEY,
        "DEBUG": "false",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_COOKIES": "false",
        "SUPPORTDESK_VAR_DIR": str(var_dir),
        "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env.update(extra)
    return env


class Processes:
    """Subprocesses that are always stopped, with their output kept for failure messages."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, name: str, command: list[str], env: dict[str, str]) -> subprocess.Popen:
        log = open(self.log_dir / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.procs[name] = proc
        return proc

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        proc = self.procs[name]
        if proc.poll() is None:
            os.killpg(proc.pid, sig)
            proc.wait(timeout=30)

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def logs(self) -> str:
        parts = []
        for name in self.procs:
            text = (self.log_dir / f"{name}.log").read_text(errors="replace")
            parts.append(f"----- {name} -----\n{text[-4000:]}")
        return "\n".join(parts)


def wait_for(
    condition: Callable[[], object], *, timeout: float, what: str, processes: Processes | None = None
):
    """Poll ``condition`` until it returns something truthy (bounded; no fixed sleeps)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.2)
    detail = processes.logs() if processes else ""
    raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{detail}")


class Browser:
    """A tiny HTTP client with cookies and Django's CSRF handling, for a real server."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def _csrf(self) -> str:
        return next((c.value for c in self.jar if c.name == "csrftoken"), "")

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with self.opener.open(self.base_url + path, timeout=10) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()
        except OSError:
            return 0, b""

    def post(self, path: str, data: dict[str, str] | None = None, *, accept_json: bool = False):
        body = urllib.parse.urlencode({**(data or {}), "csrfmiddlewaretoken": self._csrf()}).encode()
        request = urllib.request.Request(self.base_url + path, data=body, method="POST")  # noqa: S310 - local test server
        request.add_header("Referer", self.base_url + path)
        request.add_header("X-CSRFToken", self._csrf())
        if accept_json:
            request.add_header("Accept", "application/json")
        try:
            with self.opener.open(request, timeout=10) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def login(self, username: str, password: str) -> None:
        self.get("/login/")
        status, _ = self.post("/login/", {"username": username, "password": password})
        assert status in (200, 302), status

    def json(self, path: str) -> dict:
        status, body = self.get(path)
        assert status == 200, (status, body[:500])
        return json.loads(body)
