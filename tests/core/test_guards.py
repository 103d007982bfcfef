"""Production guards: with DEBUG=false the settings refuse the single-machine defaults unless opted in,
and `check --deploy` reports each guard."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from supportdesk.core import checks

ROOT = Path(__file__).resolve().parents[2]
POSTGRES = "postgres://supportdesk:secret@db.example.com:5432/supportdesk"
REDIS = "redis://redis.example.com:6379/0"
CONFIG = ("DATABASE_URL", "CELERY_BROKER_URL", "DEBUG", "SUPPORTDESK_ALLOW_SQLITE")
CONFIG += ("SUPPORTDESK_ALLOW_FILESYSTEM_BROKER", "DJANGO_SETTINGS_MODULE", "SUPPORTDESK_ALLOW_INSECURE_KEY")


def _start(tmp_path, **env: str) -> subprocess.CompletedProcess:
    """Load the settings as a production process does (no pytest in it), with ``env``."""
    full_env = {k: v for k, v in os.environ.items() if k not in CONFIG}
    full_env.update(
        SECRET_KEY="a-long-random-production-secret-key-with-enough-entropy-1234567890",
        DEBUG="false",
        SUPPORTDESK_VAR_DIR=str(tmp_path),
    )
    full_env.update(env)
    return subprocess.run(
        [sys.executable, "-c", "import supportdesk.settings"],
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CELERY_BROKER_URL": REDIS}, "DATABASE_URL is not set"),
        (
            {"DATABASE_URL": "sqlite:////srv/supportdesk.sqlite3", "CELERY_BROKER_URL": REDIS},
            "points at SQLite",
        ),
        ({"DATABASE_URL": POSTGRES}, "CELERY_BROKER_URL is not set"),
        ({"DATABASE_URL": POSTGRES, "CELERY_BROKER_URL": "filesystem://"}, "names the filesystem broker"),
        # The memory broker never reaches a worker: no opt-in allows it.
        (
            {
                "DATABASE_URL": POSTGRES,
                "CELERY_BROKER_URL": "memory://",
                "SUPPORTDESK_ALLOW_FILESYSTEM_BROKER": "true",
            },
            "memory:// keeps each task inside the process",
        ),
        # The opt-in for one default does not allow the other.
        ({"SUPPORTDESK_ALLOW_SQLITE": "true"}, "CELERY_BROKER_URL is not set"),
        ({"SUPPORTDESK_ALLOW_FILESYSTEM_BROKER": "true"}, "DATABASE_URL is not set"),
    ],
)
def test_production_refuses_to_start_on_a_default_it_was_not_allowed(tmp_path, env, message):
    result = _start(tmp_path, **env)
    assert result.returncode == 1
    assert "SupportDesk refuses to start in production (DEBUG=false)" in result.stderr
    assert message in result.stderr


def test_the_refusal_names_every_problem_and_the_way_out(tmp_path):
    result = _start(tmp_path)
    assert result.returncode == 1
    assert "DATABASE_URL is not set" in result.stderr
    assert "CELERY_BROKER_URL is not set" in result.stderr
    assert "SUPPORTDESK_ALLOW_SQLITE=true" in result.stderr
    assert "SUPPORTDESK_ALLOW_FILESYSTEM_BROKER=true" in result.stderr


@pytest.mark.parametrize(
    "env",
    [
        {"DATABASE_URL": POSTGRES, "CELERY_BROKER_URL": REDIS},
        # A single-machine install: both defaults, opted in to.
        {"SUPPORTDESK_ALLOW_SQLITE": "true", "SUPPORTDESK_ALLOW_FILESYSTEM_BROKER": "true"},
        {
            "DATABASE_URL": "sqlite:////srv/supportdesk.sqlite3",
            "CELERY_BROKER_URL": "filesystem://",
            "SUPPORTDESK_ALLOW_SQLITE": "true",
            "SUPPORTDESK_ALLOW_FILESYSTEM_BROKER": "true",
        },
        {"DATABASE_URL": POSTGRES, "SUPPORTDESK_ALLOW_FILESYSTEM_BROKER": "true"},
        {"SUPPORTDESK_ALLOW_SQLITE": "true", "CELERY_BROKER_URL": REDIS},
        # Development (make run) needs nothing.
        {"DEBUG": "true"},
    ],
)
def test_production_starts_when_configured_or_opted_in(tmp_path, env):
    result = _start(tmp_path, **env)
    assert result.returncode == 0, result.stderr


# --------------------------------------------------------------------------- system checks


@pytest.fixture
def production(settings, monkeypatch):
    """The check functions against a production configuration that is fine; tests break one thing."""
    settings.DEBUG = False
    settings.SECRET_KEY = "a-long-random-production-secret-key-with-enough-entropy-1234567890"
    settings.SUPPORTDESK_ALLOW_SQLITE = False
    settings.SUPPORTDESK_ALLOW_FILESYSTEM_BROKER = False
    monkeypatch.setenv("DATABASE_URL", POSTGRES)
    monkeypatch.setenv("CELERY_BROKER_URL", REDIS)
    return settings


def _ids() -> list[str]:
    found = [
        *checks.check_database(),
        *checks.check_broker(),
        *checks.check_debug(),
        *checks.check_secret_key(),
    ]
    return sorted(message.id for message in found)


def test_checks_are_silent_for_a_configured_production(production):
    assert _ids() == []


def test_sqlite_in_production_is_reported_unless_allowed(production, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "sqlite:////srv/supportdesk.sqlite3")
    assert _ids() == ["core.E001"]
    production.SUPPORTDESK_ALLOW_SQLITE = True
    assert _ids() == []


@pytest.mark.parametrize("url", ["filesystem://", "memory://"])
def test_a_local_broker_in_production_is_reported(production, monkeypatch, url):
    monkeypatch.setenv("CELERY_BROKER_URL", url)
    assert _ids() == ["core.E002"]


def test_the_filesystem_broker_is_silent_once_allowed_the_memory_broker_never(production, monkeypatch):
    production.SUPPORTDESK_ALLOW_FILESYSTEM_BROKER = True
    monkeypatch.setenv("CELERY_BROKER_URL", "filesystem://")
    assert _ids() == []
    monkeypatch.setenv("CELERY_BROKER_URL", "memory://")
    assert _ids() == ["core.E002"]


def test_settings_not_named_in_the_environment_are_reported_unless_opted_in(production, monkeypatch):
    monkeypatch.delenv("DATABASE_URL")
    monkeypatch.delenv("CELERY_BROKER_URL")
    assert _ids() == ["core.E005", "core.E005"]
    messages = " ".join(m.msg for m in [*checks.check_database(), *checks.check_broker()])
    assert "DATABASE_URL is not set" in messages
    assert "CELERY_BROKER_URL is not set" in messages
    production.SUPPORTDESK_ALLOW_SQLITE = True
    production.SUPPORTDESK_ALLOW_FILESYSTEM_BROKER = True
    assert _ids() == []


def test_debug_on_is_reported_and_the_production_guards_then_stay_silent(production, monkeypatch):
    production.DEBUG = True
    monkeypatch.delenv("DATABASE_URL")  # development runs on the defaults on purpose
    assert _ids() == ["core.W003"]


@pytest.mark.parametrize(
    "key",
    ["insecure-development-key-do-not-use-in-production", "collectstatic-only", "<50+ random characters>"],
)
def test_a_known_weak_secret_key_is_reported(production, key):
    production.SECRET_KEY = key
    assert _ids() == ["core.E004"]


def test_the_checks_run_with_check_deploy_only(production, monkeypatch):
    from django.core.checks import run_checks

    monkeypatch.setenv("DATABASE_URL", "sqlite:////srv/supportdesk.sqlite3")
    assert "core.E001" not in {m.id for m in run_checks()}
    assert "core.E001" in {m.id for m in run_checks(include_deployment_checks=True)}


# --------------------------------------------------------------------------- check --deploy


def _check_deploy(tmp_path, **env: str) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if k not in CONFIG and k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    full_env.update(SUPPORTDESK_VAR_DIR=str(tmp_path), **env)
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
    )


# The README's production variables ("Configuration"), with well-formed URLs nothing listens on:
# check --deploy reads the configuration, it does not connect.
README_PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": "k8Jq3vN0xR7tLw2ZpHc5YbUe9GsAa4MdKf6TnVr1QoXiEy-_zW",
    "ALLOWED_HOSTS": "support.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://support.example.com",
    "SECURE_SSL_REDIRECT": "true",
    "SECURE_HSTS_SECONDS": "31536000",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": "true",
    "SECURE_HSTS_PRELOAD": "true",
    "DATABASE_URL": "postgres://supportdesk:secret@db.invalid:5432/supportdesk",
    "CELERY_BROKER_URL": "redis://redis.invalid:6379/0",
}


def test_check_deploy_is_clean_with_the_readme_production_variables(tmp_path):
    result = _check_deploy(tmp_path, **README_PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_check_deploy_is_clean_for_a_single_machine_install_that_opted_in(tmp_path):
    env = {k: v for k, v in README_PRODUCTION.items() if k not in {"DATABASE_URL", "CELERY_BROKER_URL"}}
    env.update(SUPPORTDESK_ALLOW_SQLITE="true", SUPPORTDESK_ALLOW_FILESYSTEM_BROKER="true")
    result = _check_deploy(tmp_path, **env)
    assert result.returncode == 0, result.stdout + result.stderr


def test_check_deploy_fails_on_the_development_key(tmp_path):
    env = dict(README_PRODUCTION, SECRET_KEY="", SUPPORTDESK_ALLOW_INSECURE_KEY="true")
    result = _check_deploy(tmp_path, **env)
    assert result.returncode == 1
    assert "core.E004" in result.stderr
