"""CI: schemathesis against the running app, as an agent, a manager and an engineer.

A throwaway PostgreSQL database (``fuzz_ci``) is migrated and given a small demo data set, so that
object lookups (``/api/cases/{key}/``, ...) reach real rows; each role gets a fresh API token from
``create_api_token``. The app runs under gunicorn on a free local port with ``DEBUG=false``, as in
production, except that the API throttles are raised (``API_THROTTLE_USER``/``API_THROTTLE_ANON``,
the documented settings): the fuzzer sends thousands of requests a minute as one user and would
otherwise test nothing but the 429. Every other feature (idempotency, CSP, the bounds) stays on.

Then schemathesis (``.venv/bin/schemathesis``) runs once per role, bounded by ``--max-time`` and a
number of examples per operation, with these checks (a failure of any fails CI):

- ``not_a_server_error``: no 5xx, whatever the input.
- ``response_schema_conformance``: every documented response body matches the schema.
- ``status_code_conformance``: every status code the app answers is documented for the operation.
- ``content_type_conformance``, ``response_headers_conformance``: the documented media types and
  headers are what the app sends.

Left off, and why: ``negative_data_rejection`` and ``positive_data_acceptance`` judge business rules
the schema cannot say (a 400 for a valid-looking but refused transition is correct, and a free-text
field accepts what a stricter reading would call invalid); ``use_after_free`` and
``ensure_resource_availability`` expect a REST shape (create -> read -> delete) that our state
machines do not have; ``ignored_auth`` is covered by the permission tests.

Besides, any ERROR line in the server's log fails the run: a 5xx outside the schema's operations
(schemathesis probes unknown paths too) is a bug as well. Phases: examples, coverage (boundary and
invalid values for every parameter) and fuzzing; the stateful phase is off (it needs the time of
all three). ``--seed`` (``FUZZ_SEED``) makes a failure reproducible with the same data.

Mutating operations run too (the database is thrown away). Nothing is excluded: the API has no
operation that can revoke the fuzzer's own token or deactivate its user.

Usage: ``.venv/bin/python .ci/fuzz_api.py`` (``FUZZ_MAX_TIME`` seconds per role, default 70;
``FUZZ_MAX_EXAMPLES`` per operation, default 30).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
PG_HOST = os.environ.get("CI_POSTGRES_HOST", "127.0.0.1")
PG_USER = os.environ.get("CI_POSTGRES_USER", "postgres")
DB_NAME = os.environ.get("FUZZ_DB_NAME", "fuzz_ci")
# The broker's Redis database; the app's cache (and so the throttle counters) takes the next one.
REDIS_URL = os.environ.get("FUZZ_REDIS_URL", "redis://127.0.0.1:6379/12")
MAX_TIME = int(os.environ.get("FUZZ_MAX_TIME", "70"))
MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "30"))
ROLES = ("agent", "manager", "engineer")
CHECKS = ",".join(
    [
        "not_a_server_error",
        "response_schema_conformance",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
    ]
)


def say(text: str) -> None:
    print(f"fuzz: {text}", flush=True)


def psql(sql: str) -> None:
    subprocess.run(
        ["psql", "-h", PG_HOST, "-U", PG_USER, "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-qc", sql],
        check=True,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fetch(url: str, token: str) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Authorization": f"Token {token}"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - a local server
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except OSError:
        return 0, b""


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="fuzz-api-"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": str(work),
        "LANG": "C.UTF-8",
        "DEBUG": "false",
        "SECRET_KEY": "fuzz-api-check-" + "x" * 40,
        "DATABASE_URL": f"postgres://{PG_USER}@{PG_HOST}:5432/{DB_NAME}",
        "CELERY_BROKER_URL": REDIS_URL,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SITE_URL": base,
        "SECURE_COOKIES": "false",
        "SUPPORTDESK_VAR_DIR": str(work / "var"),
        "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
        "API_THROTTLE_USER": "1000000/min",
        "API_THROTTLE_ANON": "1000000/min",
        "PYTHONUNBUFFERED": "1",
    }
    python = str(VENV_BIN / "python")

    def manage(*args: str) -> str:
        done = subprocess.run(
            [python, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
        )
        if done.returncode != 0:
            sys.exit(f"fuzz: manage.py {' '.join(args)} exited {done.returncode}:\n{done.stderr[-3000:]}")
        return done.stdout

    started = time.monotonic()
    psql(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
    psql(f"CREATE DATABASE {DB_NAME}")
    manage("migrate", "--noinput")
    manage("collectstatic", "--noinput")  # the Dockerfile's build step: the error pages need the manifest
    # A small data set: enough rows of every kind for the lookups, fast to load.
    manage("load_demo_data", "--cases", "120")
    for command in (
        "load_demo_escalations",
        "load_demo_knowledge",
        "load_demo_csat",
        "load_demo_workspace",
        "load_demo_incidents",
    ):
        manage(command)
    tokens = {
        role: manage("create_api_token", role, "--name", "fuzz").strip().splitlines()[-1] for role in ROLES
    }
    say(f"database {DB_NAME} ready in {time.monotonic() - started:.0f}s; starting the app on {base}")

    log_path = work / "gunicorn.log"
    log = open(log_path, "wb")  # noqa: SIM115 - closed when the server stops
    server = subprocess.Popen(
        [
            str(VENV_BIN / "gunicorn"),
            "supportdesk.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
            "--timeout",
            "60",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    failed: list[str] = []
    try:
        deadline = time.monotonic() + 60
        schema_file = work / "schema.json"
        while True:
            if server.poll() is not None:
                print(log_path.read_text(errors="replace")[-3000:])
                sys.exit(f"fuzz: gunicorn exited with {server.returncode} at start")
            status, body = fetch(f"{base}/api/schema/?format=json", tokens["manager"])
            if status == 200:
                schema_file.write_bytes(body)
                break
            if time.monotonic() > deadline:
                sys.exit(f"fuzz: the schema did not answer 200 (last {status})")
            time.sleep(0.5)

        for role in ROLES:
            say(f"schemathesis as the {role} (at most {MAX_TIME}s)")
            role_started = time.monotonic()
            done = subprocess.run(
                [
                    str(VENV_BIN / "schemathesis"),
                    "run",
                    str(schema_file),
                    "--url",
                    base,
                    "--header",
                    f"Authorization: Token {tokens[role]}",
                    "--checks",
                    CHECKS,
                    "--max-examples",
                    str(MAX_EXAMPLES),
                    "--max-time",
                    str(MAX_TIME),
                    "--phases",
                    "examples,coverage,fuzzing",
                    # One worker: hypothesis' lambda-source cache is not thread-safe (two workers
                    # crash schemathesis' own generation now and then with a SystemError).
                    "--workers",
                    "1",
                    "--request-timeout",
                    "30",
                    "--seed",
                    os.environ.get("FUZZ_SEED", "16"),
                    "--generation-database",
                    "none",
                    "--suppress-health-check",
                    "all",
                    "--no-color",
                    "--output-sanitize",
                    "true",
                ],
                cwd=work,
                env=env,
                check=False,
            )
            say(f"{role}: exit {done.returncode} after {time.monotonic() - role_started:.0f}s")
            if done.returncode != 0:
                failed.append(role)
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
        log.close()
        # Every 5xx the server answered, also outside the schema's operations (schemathesis' own
        # probes of unknown paths): the ERROR lines of the JSON log, with their tracebacks.
        errors = [
            line
            for line in log_path.read_text(errors="replace").splitlines()
            if line.startswith(('{"level": "ERROR"', '{"level": "CRITICAL"'))
        ]
        if errors:
            say(f"the server logged {len(errors)} error(s):")
            for line in errors[:20]:
                print(line[:4000])
            failed.append("the server's error log")
    psql(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
    if failed:
        say(f"FAILED for {', '.join(failed)} (total {time.monotonic() - started:.0f}s)")
        return 1
    shutil.rmtree(work, ignore_errors=True)
    say(f"passed for {', '.join(ROLES)} in {time.monotonic() - started:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
