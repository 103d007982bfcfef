"""Structured logs: every record of a request or task says which request, user, case and task."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from supportdesk.celery import app as celery_app
from supportdesk.core import logcontext
from tests import factories

ROOT = Path(__file__).resolve().parents[2]


@celery_app.task(name="tests.core.log_inside_task")
def log_inside_task() -> None:
    logging.getLogger("tests.task").info("working on it")


@pytest.fixture
def log_lines():
    """The lines the configured console handler would write (its formatter and filters), parsed."""
    console = next(h for h in logging.getLogger().handlers if h.get_name() == "console")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(console.formatter)
    for log_filter in console.filters:
        handler.addFilter(log_filter)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        root.removeHandler(handler)


def _access_line(lines: list[dict]) -> dict:
    (line,) = [line for line in lines if line["logger"] == "supportdesk.request"]
    return line


def test_json_is_the_format_without_debug(settings):
    assert settings.DEBUG is False
    assert settings.LOG_FORMAT == "json"


@pytest.mark.django_db
def test_a_case_page_request_logs_one_json_line_with_request_id_user_path_and_case(client, agent, log_lines):
    case = factories.CaseFactory()
    client.force_login(agent)

    response = client.get(f"/cases/{case.key}/")

    assert response.status_code == 200
    line = _access_line(log_lines())
    assert line["request_id"] == response["X-Request-ID"]
    assert len(response["X-Request-ID"]) == 32
    assert line == {
        **line,
        "level": "INFO",
        "user": "alice",
        "user_id": agent.pk,
        "path": f"/cases/{case.key}/",
        "method": "GET",
        "status": 200,
        "route": "cases:detail",
        "case_key": case.key,
    }
    assert line["duration_ms"] >= 0
    assert "timestamp" in line


@pytest.mark.django_db
def test_records_logged_inside_a_view_carry_the_request_context(client, agent, log_lines, monkeypatch):
    from cases import views

    case = factories.CaseFactory()
    original = views._render_case

    def render_and_log(request, case, *args, **kwargs):
        logging.getLogger("cases.views").warning("rendering")
        return original(request, case, *args, **kwargs)

    monkeypatch.setattr(views, "_render_case", render_and_log)
    client.force_login(agent)

    response = client.get(f"/cases/{case.key}/", headers={"X-Request-ID": "proxy-abc-123"})

    (line,) = [line for line in log_lines() if line["message"] == "rendering"]
    assert response["X-Request-ID"] == "proxy-abc-123"
    assert (line["request_id"], line["user"], line["case_key"]) == ("proxy-abc-123", "alice", case.key)


@pytest.mark.django_db
def test_an_api_request_with_a_token_logs_the_token_user_and_case(agent, log_lines):
    case = factories.CaseFactory()
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {factories.api_token_key(agent)}")

    response = api.get(f"/api/cases/{case.key}/")

    assert response.status_code == 200
    line = _access_line(log_lines())
    assert (line["user"], line["case_key"], line["route"]) == ("alice", case.key, "cases_api:case-detail")


@pytest.mark.django_db
def test_an_anonymous_request_logs_no_user(client, log_lines):
    response = client.get("/cases/")

    assert response.status_code == 302  # to the login page
    line = _access_line(log_lines())
    assert "user" not in line
    assert line["request_id"] == response["X-Request-ID"]


@pytest.mark.parametrize(
    "hostile",
    [
        "x" * 129,
        "has spaces in it",
        'a"}, {"level": "CRITICAL',
        "line\nbreak",
        "-starts-with-a-dash",
        "ünïcode",
    ],
)
@pytest.mark.django_db
def test_a_hostile_request_id_is_replaced(client, log_lines, hostile):
    response = client.get("/login/", headers={"X-Request-ID": hostile})

    assert response.status_code == 200
    assert response["X-Request-ID"] != hostile
    assert len(response["X-Request-ID"]) == 32
    assert _access_line(log_lines())["request_id"] == response["X-Request-ID"]


@pytest.mark.django_db
def test_a_survey_answer_link_is_logged_without_its_token(client, log_lines):
    client.get("/survey/secret-token-value/")

    line = _access_line(log_lines())
    assert "secret-token-value" not in json.dumps(line)
    assert line["path"] == "/survey/<str:token>/"


def test_nothing_is_left_bound_after_a_request(client, log_lines, db):
    client.get("/login/")
    logging.getLogger("tests").warning("after")

    (after,) = [line for line in log_lines() if line["message"] == "after"]
    assert "request_id" not in after


def test_a_task_logs_its_task_id_and_name_and_unbinds_them_after(log_lines):
    result = log_inside_task.apply()
    logging.getLogger("tests").info("after the task")

    lines = log_lines()
    (inside,) = [line for line in lines if line["message"] == "working on it"]
    (after,) = [line for line in lines if line["message"] == "after the task"]
    assert (inside["task_id"], inside["task_name"]) == (result.id, "tests.core.log_inside_task")
    assert "task_id" not in after


def test_a_task_run_inside_a_request_keeps_the_request_id(log_lines):
    with logcontext.scope(request_id="req-1"):
        result = log_inside_task.apply()

    (inside,) = [line for line in log_lines() if line["message"] == "working on it"]
    assert (inside["request_id"], inside["task_id"]) == ("req-1", result.id)


def test_text_format_shows_the_context_as_name_value_pairs():
    formatter = logcontext.TextFormatter("%(levelname)s %(name)s: %(message)s")
    record = logging.makeLogRecord({"name": "cases", "levelname": "INFO", "msg": "hello"})
    with logcontext.scope(request_id="r1", case_key="CASE-7"):
        logcontext.ContextFilter().filter(record)

    assert formatter.format(record) == "INFO cases: hello [request_id=r1 case_key=CASE-7]"


def _python(code: str, **env: str) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "LOG_FORMAT", "SENTRY_DSN"}}
    # A single-machine production install (the guards otherwise refuse DEBUG=false without a
    # database and a broker named explicitly).
    single_machine = {
        "SUPPORTDESK_ALLOW_SQLITE": "true",
        "SUPPORTDESK_ALLOW_FILESYSTEM_BROKER": "true",
        "CELERY_BROKER_URL": "filesystem://",
    }
    full_env.update({"DJANGO_SETTINGS_MODULE": "supportdesk.settings", **single_machine, **env})
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=120
    )


def test_celery_workers_keep_the_json_format():
    """A worker sets up its logging through Celery's setup_logging signal, not Celery's own format."""
    code = (
        "import logging, django; django.setup()\n"
        "from supportdesk.celery import app\n"
        "app.log.setup(loglevel='INFO')\n"
        "logging.getLogger('celery.worker').info('worker ready')\n"
    )
    done = _python(code, SECRET_KEY="k" * 50, DEBUG="false", CELERY_BROKER_URL="filesystem://")

    assert done.returncode == 0, done.stderr
    (line,) = [json.loads(x) for x in done.stderr.splitlines() if "worker ready" in x]
    assert (line["logger"], line["level"]) == ("celery.worker", "INFO")


@pytest.mark.parametrize(("debug", "expected"), [("true", "text"), ("false", "json")])
def test_log_format_follows_debug_unless_set(debug, expected):
    done = _python(
        "import django; django.setup(); from django.conf import settings; print(settings.LOG_FORMAT)",
        SECRET_KEY="k" * 50,
        DEBUG=debug,
    )
    assert done.stdout.strip() == expected, done.stderr


def test_an_unknown_log_format_stops_the_start_with_a_clear_message():
    done = _python("import django; django.setup()", DEBUG="true", LOG_FORMAT="xml")

    assert done.returncode != 0
    assert "LOG_FORMAT must be json or text" in done.stderr
