from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from supportdesk.core.models import WorkerPing
from supportdesk.core.roles import Role, roles_of
from supportdesk.core.tasks import ping

ROOT = Path(__file__).resolve().parents[2]

PRODUCTION_ENV = {
    "SECRET_KEY": "a-long-random-production-secret-key-with-enough-entropy-1234567890",
    "DEBUG": "false",
    "ALLOWED_HOSTS": "support.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://support.example.com",
    "SECURE_SSL_REDIRECT": "true",
    "SECURE_HSTS_SECONDS": "31536000",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": "true",
    "SECURE_HSTS_PRELOAD": "true",
    "DATABASE_URL": "postgres://supportdesk:secret@db.invalid:5432/supportdesk",
    "CELERY_BROKER_URL": "redis://redis.invalid:6379/0",
}


def _manage(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    # Browser tests allow Django's sync ORM inside Playwright's loop; a deploy check must not inherit that.
    ignored = {*PRODUCTION_ENV, "DJANGO_ALLOW_ASYNC_UNSAFE"}
    full_env = {k: v for k, v in os.environ.items() if k not in ignored}
    full_env.update(env or {"DEBUG": "true"})
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.django_db
def test_roles_exist_as_groups_after_migrate():
    assert set(Group.objects.values_list("name", flat=True)) >= {r.value for r in Role}


@pytest.mark.django_db
def test_login_page_renders_and_anonymous_is_sent_there(client):
    assert client.get(reverse("login")).status_code == 200
    response = client.get(reverse("home"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_superuser_holds_every_staff_role(admin_user):
    assert roles_of(admin_user) >= {Role.ADMIN, Role.MANAGER, Role.AGENT}


def test_engineer_is_not_an_agent(engineer):
    assert roles_of(engineer) == {Role.ENGINEER}


@pytest.mark.django_db
def test_system_status_is_for_managers_only(client, agent, manager):
    client.force_login(agent)
    assert client.get(reverse("core:status")).status_code == 403
    client.force_login(manager)
    page = client.get(reverse("core:status"))
    assert page.status_code == 200
    assert b"Worker round trip" in page.content


@pytest.mark.django_db
def test_test_task_is_sent_after_commit_and_marked_by_the_worker(
    client, manager, django_capture_on_commit_callbacks
):
    client.force_login(manager)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(reverse("core:ping"), HTTP_ACCEPT="application/json")
    assert response.status_code == 202
    assert len(callbacks) == 1  # dispatched only once the request's transaction commits
    nonce = response.json()["nonce"]
    assert client.get(reverse("core:ping-detail", args=[nonce])).json()["executed_at"] is None

    ping(nonce)  # what the worker runs

    detail = client.get(reverse("core:ping-detail", args=[nonce])).json()
    assert detail["executed_at"] is not None
    assert WorkerPing.objects.get(nonce=nonce).executed_at is not None


def test_no_migration_is_missing():
    result = _manage("makemigrations", "--check", "--dry-run")
    assert result.returncode == 0, result.stdout + result.stderr


def test_production_refuses_to_start_without_a_secret_key():
    env = dict(PRODUCTION_ENV)
    env.pop("SECRET_KEY")
    result = _manage("check", env=env)
    assert result.returncode == 2
    assert "SECRET_KEY must be set" in result.stderr
    # Said in a sentence, with the way to run a command in development; no traceback.
    assert "Traceback" not in result.stderr
    assert 'make manage CMD="' in result.stderr


def test_make_manage_runs_a_command_with_the_development_settings(tmp_path):
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {*PRODUCTION_ENV, "DEBUG", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    }
    env["SUPPORTDESK_VAR_DIR"] = str(tmp_path)
    venv = Path(sys.executable).parent.parent
    # The suite's own environment; -o: never reinstall it from here.
    make = ["make", "--no-print-directory", f"VENV={venv}", "-o", f"{venv}/.installed-stamp"]
    result = subprocess.run(
        [*make, "manage", "CMD=import_history --help"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "--mapping" in result.stdout
