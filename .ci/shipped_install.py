"""CI: the install the Dockerfile ships (runtime dependencies only) runs against PostgreSQL and Redis.

A fresh virtualenv gets ``pip install .`` of the files the Dockerfile copies, nothing else (no dev
extra: pytest and friends bring packages that would hide a missing runtime dependency). From that
virtualenv it migrates a database of its own, then starts every web, worker and beat command of
docker-compose.yml and checks what an operator would: the readiness endpoint answers 200, a task
sent through the broker is executed by a worker, and beat's SLA sweep records a breach that is due.

Run by the development virtualenv (it reads the compose file with PyYAML); every product process
runs from the runtime virtualenv. Usage: ``.venv/bin/python .ci/shipped_install.py``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.error
import urllib.request
from pathlib import Path

import redis
import yaml

ROOT = Path(__file__).resolve().parent.parent
PG_HOST = os.environ.get("CI_POSTGRES_HOST", "127.0.0.1")
PG_USER = os.environ.get("CI_POSTGRES_USER", "postgres")
DB_NAME = "supportdesk_shipped"
REDIS_URL = os.environ.get("CI_SHIPPED_REDIS_URL", "redis://127.0.0.1:6379/7")
# What the Dockerfile copies before `pip install .` (the rest is copied after, as source).
DOCKERFILE_INSTALL_COPIES = ["pyproject.toml", "README.md"]


def say(text: str) -> None:
    print(f"shipped install: {text}", flush=True)


def fail(text: str, logs: Path | None = None) -> None:
    if logs is not None:
        for log in sorted(logs.glob("*.log")):
            print(f"----- {log.name} (last 60 lines) -----")
            print("\n".join(log.read_text(errors="replace").splitlines()[-60:]))
    sys.exit(f"shipped install: FAILED: {text}")


def dockerfile_packages() -> list[str]:
    """The folders the Dockerfile copies before installing (``COPY <dir> ./<dir>``)."""
    found = []
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "COPY" and parts[1] not in (".",) and (ROOT / parts[1]).is_dir():
            found.append(parts[1])
    return found


def check_every_app_is_installed() -> None:
    """Each app folder (one with an ``apps.py``) is copied before ``pip install .`` and is one of
    the packages pyproject.toml installs: the image runs from /app today, but an app missing here
    would be missing from any install that is not run from the source tree."""
    apps = sorted(p.parent.name for p in ROOT.glob("*/apps.py"))
    copied = set(dockerfile_packages())
    with open(ROOT / "pyproject.toml", "rb") as f:
        included = tomllib.load(f)["tool"]["setuptools"]["packages"]["find"]["include"]
    for app in apps:
        if app not in copied:
            fail(f"the Dockerfile does not copy {app}/ before `pip install .`")
        if f"{app}*" not in included:
            fail(f"pyproject.toml's [tool.setuptools.packages.find] does not include {app}")
    say(f"every app is installed ({', '.join(apps)})")


def build_runtime_venv(where: Path) -> Path:
    check_every_app_is_installed()
    source = where / "source"
    source.mkdir()
    for name in DOCKERFILE_INSTALL_COPIES:
        shutil.copy2(ROOT / name, source / name)
    for package in dockerfile_packages():
        shutil.copytree(ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    venv = where / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "install", str(source)], check=True)
    frozen = subprocess.run([*pip, "freeze"], check=True, capture_output=True, text=True).stdout
    for dev_only in ("pytest", "factory-boy", "time-machine", "hypothesis", "playwright", "ruff"):
        if any(line.lower().startswith(dev_only + "==") for line in frozen.splitlines()):
            fail(f"{dev_only} is installed by the runtime install (it belongs to the dev extra)")
    say(f"runtime virtualenv with {len(frozen.splitlines())} packages")
    return venv


def psql(sql: str) -> None:
    subprocess.run(
        ["psql", "-h", PG_HOST, "-U", PG_USER, "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-qc", sql],
        check=True,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def compose_commands() -> dict[str, list[str]]:
    """Every service of docker-compose.yml that runs the product, by name."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    commands = {}
    for name, service in compose["services"].items():
        command = service.get("command")
        if not command or service.get("image", "").split(":")[0] not in ("", "supportdesk"):
            continue
        command = list(command) if isinstance(command, list) else command.split()
        commands[name] = command
    return commands


def get_json(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - a local server
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        try:
            return error.code, json.loads(error.read())
        except ValueError:
            return error.code, {}
    except (OSError, ValueError):
        return 0, {}


def wait_for(condition, *, timeout: float, what: str, logs: Path):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(0.5)
    fail(f"timed out after {timeout:.0f}s waiting for {what}", logs)
    return None


# Run by the runtime virtualenv's `manage.py shell`: prints one JSON line.
SEND_PING = """
import json, uuid
from django.utils import timezone
from supportdesk.core.models import WorkerPing
from supportdesk.core.tasks import ping
nonce = uuid.uuid4().hex
WorkerPing.objects.create(nonce=nonce, sent_at=timezone.now())
ping.delay(nonce)
print(json.dumps({"nonce": nonce}))
"""

PING_DONE = """
import json
from supportdesk.core.models import WorkerPing
done = WorkerPing.objects.filter(nonce=%r, executed_at__isnull=False)
print(json.dumps(list(done.values_list("worker", flat=True))))
"""

OVERDUE_CASE = """
import datetime as dt, json
from django.contrib.auth import get_user_model
from django.utils import timezone
from cases import services
from cases.models import Contact, Organisation
from sla.models import SlaClock, Target
now = timezone.now()
org = Organisation.objects.create(name="Shipped install check", tier="enterprise")
contact = Contact.objects.create(organisation=org, name="Ops", email="ops@example.com")
case = services.create_case(title="Sweep check", organisation=org, requester=contact, severity="P1",
                            actor=None, now=now)
# The clock is due now instead of in 15 minutes: beat's next sweep must record the breach.
SlaClock.objects.filter(case=case, target=Target.FIRST_RESPONSE).update(
    warn_at=now - dt.timedelta(seconds=2), due_at=now - dt.timedelta(seconds=1))
print(json.dumps({"case": case.pk}))
"""

BREACHED = """
import json
from cases.models import CaseEvent
print(json.dumps(CaseEvent.objects.filter(case_id=%d, kind="sla_breached").count()))
"""


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="shipped-install-"))
    logs = work / "logs"
    logs.mkdir()
    venv = build_runtime_venv(work)
    python = str(venv / "bin" / "python")
    port = free_port()
    env = {
        "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": str(work),
        "LANG": "C.UTF-8",
        "DEBUG": "false",
        "SECRET_KEY": "shipped-install-check-" + "x" * 40,
        "DATABASE_URL": f"postgres://{PG_USER}@{PG_HOST}:5432/{DB_NAME}",
        "CELERY_BROKER_URL": REDIS_URL,
        "REDIS_URL": REDIS_URL,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_COOKIES": "false",
        "SUPPORTDESK_VAR_DIR": str(work / "var"),
        "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
        "PORT": str(port),
        "SLA_SWEEP_SECONDS": "2",
        "HEARTBEAT_SECONDS": "2",
        "PYTHONUNBUFFERED": "1",
    }
    psql(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
    psql(f"CREATE DATABASE {DB_NAME}")
    redis.Redis.from_url(REDIS_URL).flushdb()

    def manage(*args: str, check: bool = True) -> str:
        done = subprocess.run(
            [python, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
        )
        if check and done.returncode != 0:
            fail(f"manage.py {' '.join(args)[:60]} exited {done.returncode}:\n{done.stderr[-3000:]}")
        return done.stdout

    commands = compose_commands()
    if "migrate" in commands:  # the compose file's one-shot migration, run as it runs it
        migrate = commands.pop("migrate")
        done = subprocess.run(migrate, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            fail(f"{' '.join(migrate)} exited {done.returncode}:\n{done.stderr[-3000:]}")
    manage("collectstatic", "--noinput")  # the Dockerfile's build step
    say(f"migrated {DB_NAME}; starting {', '.join(commands)}")

    procs: list[subprocess.Popen] = []
    try:
        for name, command in commands.items():
            log = open(logs / f"{name}.log", "wb")  # noqa: SIM115 - closed when the process ends
            procs.append(
                subprocess.Popen(
                    command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
                )
            )

        def ready():
            for proc in procs:
                if proc.poll() is not None:
                    fail(f"{proc.args[0]} exited with {proc.returncode} at start", logs)
            status, body = get_json(f"http://127.0.0.1:{port}/healthz/ready")
            return body if status == 200 else None

        body = wait_for(ready, timeout=120, what="/healthz/ready to answer 200", logs=logs)
        say(f"/healthz/ready: {body}")
        status, body = get_json(f"http://127.0.0.1:{port}/healthz/live")
        if status != 200:
            fail(f"/healthz/live answered {status}", logs)

        nonce = json.loads(manage("shell", "-c", SEND_PING).strip().splitlines()[-1])["nonce"]
        workers = wait_for(
            lambda: json.loads(manage("shell", "-c", PING_DONE % nonce).strip().splitlines()[-1]),
            timeout=90,
            what="a worker to execute the ping task",
            logs=logs,
        )
        say(f"task round trip: executed by {workers[0]}")

        case = json.loads(manage("shell", "-c", OVERDUE_CASE).strip().splitlines()[-1])["case"]
        wait_for(
            lambda: json.loads(manage("shell", "-c", BREACHED % case).strip().splitlines()[-1]) == 1,
            timeout=90,
            what="beat's SLA sweep to record the due breach",
            logs=logs,
        )
        say("SLA sweep: the due breach was recorded by beat's sweep on a worker")
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        for proc in procs:
            if proc.returncode not in (0, -signal.SIGTERM, -signal.SIGKILL):
                say(f"note: {proc.args[0]} ended with {proc.returncode}")
    psql(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
    shutil.rmtree(work, ignore_errors=True)
    say("passed")


if __name__ == "__main__":
    main()
