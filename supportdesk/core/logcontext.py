"""What every log record says about where it came from: request id, user, case key, Celery task.

The context lives in ``contextvars``, so it follows one request (or one task) through threads and
``sync_to_async`` and never leaks into the next. ``ContextFilter``, attached to the log handlers in
settings.LOGGING, copies it onto each record; the JSON formatter then prints it as fields.

- ``RequestContextMiddleware`` (first in MIDDLEWARE) sets the request id, echoes it in the
  ``X-Request-ID`` response header, writes one access line per request and times it for Prometheus.
- Views bind what they learn: ``logcontext.bind(case_key=case.key)``.
- Celery's task_prerun/task_postrun signals bind ``task_id`` and ``task_name`` in workers.

This module imports no models: settings.LOGGING names its classes before the apps are loaded.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

from django.utils.functional import LazyObject, empty
from pythonjsonlogger import json as jsonlogger
from pythonjsonlogger.core import RESERVED_ATTRS

REQUEST_ID_HEADER = "X-Request-ID"
# What a proxy may hand us as a request id (nginx's $request_id, a UUID, a trace id); anything else
# (too long, spaces, quotes, control characters) is replaced by our own, so no client can forge log
# lines or inflate records through it.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:+=/-]{0,127}")

# The fields a record may carry, in the order the text format prints them.
CONTEXT_FIELDS = ("request_id", "user", "user_id", "case_key", "task_id", "task_name")

# Each value is a fresh dict (never changed in place), so a reset token restores exactly what was.
_fields: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "supportdesk_log_fields", default=None
)
# The request being served: its user is read from it when a record is made (once authentication
# has resolved it), because DRF's token authentication happens long after the middleware ran.
_request: contextvars.ContextVar[Any] = contextvars.ContextVar("supportdesk_log_request", default=None)

access_logger = logging.getLogger("supportdesk.request")


def _bound() -> dict[str, Any]:
    return _fields.get() or {}


def bind(**fields: Any) -> None:
    """Add ``fields`` to every later record of the current request or task (None removes one)."""
    merged = {**_bound(), **fields}
    _fields.set({name: value for name, value in merged.items() if value is not None})


@contextlib.contextmanager
def scope(**fields: Any) -> Iterator[None]:
    """Bind ``fields`` for the duration of a ``with`` block, then restore what was bound before."""
    token = _fields.set({**_bound(), **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _fields.reset(token)


def current() -> dict[str, Any]:
    """The bound fields, with the request's user if it is known by now."""
    fields = dict(_bound())
    user = _known_user(_request.get())
    if user is not None:
        fields.setdefault("user", user.get_username())
        fields.setdefault("user_id", user.pk)
    return fields


def _known_user(request) -> Any:
    """The request's authenticated user if something already resolved it, else None.

    Never resolves it here: that would query the session table from inside a logging call.
    """
    if request is None:
        return None
    user = request.__dict__.get("user")  # DRF sets the token's user on the Django request too
    if isinstance(user, LazyObject):
        user = user.__dict__.get("_wrapped", empty)  # where LazyObject keeps it, read without resolving
        if user is empty:
            return None
    return user if getattr(user, "is_authenticated", False) else None


class ContextFilter(logging.Filter):
    """Copy the current context onto each record (a record's own ``extra`` wins)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in current().items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True


class JsonFormatter(jsonlogger.JsonFormatter):
    """Production's format: one JSON object per line with ``timestamp``, ``level``, ``logger``,
    ``message``, the context fields and a record's ``extra`` fields (``exc_info`` on errors)."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("fmt", ["levelname", "name", "message"])
        kwargs.setdefault("rename_fields", {"levelname": "level", "name": "logger"})
        kwargs.setdefault("timestamp", True)
        # Django's request records carry the request object itself: the fields say enough.
        kwargs.setdefault("reserved_attrs", [*RESERVED_ATTRS, "request"])
        super().__init__(*args, **kwargs)


class TextFormatter(logging.Formatter):
    """Development's format: the usual line with the known context fields as ``name=value``."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        pairs = " ".join(
            f"{name}={getattr(record, name)}" for name in CONTEXT_FIELDS if getattr(record, name, None)
        )
        if not pairs:
            return line
        head, sep, tail = line.partition("\n")  # keep a traceback below the first line
        return f"{head} [{pairs}]{sep}{tail}"


def request_id_from(value: str | None) -> str:
    """The proxy's request id if it is a sane one, else a new one."""
    if value and _SANE_REQUEST_ID.fullmatch(value):
        return value
    return uuid.uuid4().hex


# --- Requests -----------------------------------------------------------------------------------

# Routes whose URL carries a secret (a survey's answer token): their access line shows the pattern.
_SECRET_KWARGS = frozenset({"token"})
# Probes and scrapes come every few seconds: their access lines are DEBUG, not INFO.
_QUIET_PREFIXES = ("/healthz", "/ops/metrics")


def _loggable_path(request) -> str:
    match = getattr(request, "resolver_match", None)
    if match is not None and _SECRET_KWARGS & set(match.kwargs):
        return "/" + match.route
    return request.path


class RequestContextMiddleware:
    """Give each request an id (``X-Request-ID``), bind it to the logs, write the access line."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        from . import prometheus

        request_id = request_id_from(request.headers.get(REQUEST_ID_HEADER))
        request.request_id = request_id
        _tag_error_reports(request_id)
        fields_token = _fields.set({"request_id": request_id})
        request_token = _request.set(request)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            elapsed = time.perf_counter() - started
            response[REQUEST_ID_HEADER] = request_id
            route = prometheus.observe_request(request, response, seconds=elapsed)
            quiet = request.path.startswith(_QUIET_PREFIXES) and response.status_code < 500
            access_logger.log(
                logging.DEBUG if quiet else logging.INFO,
                "%s %s %s",
                request.method,
                _loggable_path(request),
                response.status_code,
                extra={
                    "method": request.method,
                    "path": _loggable_path(request),
                    "route": route,
                    "status": response.status_code,
                    "duration_ms": round(elapsed * 1000, 1),
                },
            )
            return response
        finally:
            _request.reset(request_token)
            _fields.reset(fields_token)


def _tag_error_reports(request_id: str) -> None:
    """An error report of this request names its request id (a no-op without Sentry)."""
    try:
        import sentry_sdk
    except ImportError:  # pragma: no cover - sentry-sdk is a dependency
        return
    if sentry_sdk.get_client().is_active():
        sentry_sdk.get_isolation_scope().set_tag("request_id", request_id)


# --- Celery -------------------------------------------------------------------------------------

_task_tokens: dict[str, contextvars.Token] = {}


def _task_started(task_id: str | None = None, task=None, **kwargs) -> None:
    # Keeps a request id bound when a task runs eagerly inside a request.
    _task_tokens[task_id or ""] = _fields.set(
        {**_bound(), "task_id": task_id, "task_name": getattr(task, "name", None)}
    )


def _task_finished(task_id: str | None = None, **kwargs) -> None:
    token = _task_tokens.pop(task_id or "", None)
    if token is not None:
        with contextlib.suppress(ValueError):  # set in another context: nothing of ours to undo
            _fields.reset(token)


def connect_celery_signals() -> None:
    """Bind each task's id and name to the records it logs (called by supportdesk.celery)."""
    from celery.signals import task_postrun, task_prerun

    task_prerun.connect(_task_started, weak=False, dispatch_uid="supportdesk-log-task-started")
    task_postrun.connect(_task_finished, weak=False, dispatch_uid="supportdesk-log-task-finished")
