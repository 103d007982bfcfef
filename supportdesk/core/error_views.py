"""The pages people see when a request fails: styled, with the navigation and the server's reason.

API requests (under ``/api/``, or asking for JSON only) get JSON bodies in DRF's shape
(``{"detail": ...}``) instead, including 404s of addresses no API view matched. Errors raised in
DRF views never reach these handlers: DRF's exception handler (``supportdesk.core.api``) answers them.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.template import loader
from django.urls import Resolver404
from django.views.decorators.csrf import requires_csrf_token

logger = logging.getLogger(__name__)

NOT_FOUND = "There is no page at this address."
FORBIDDEN = "You do not have permission to see this page."


def wants_json(request: HttpRequest) -> bool:
    if request.path.startswith("/api/") and not request.path.startswith("/api/docs/"):
        return True
    accept = request.headers.get("Accept", "")
    return accept.startswith("application/json") and "text/html" not in accept


def _reason(exception: Exception | None, default: str) -> str:
    """The message the code gave (``PermissionDenied("Managers only.")``), else ``default``.
    A URL resolver's 404 carries a dict of tried patterns, not a sentence: never shown."""
    if exception is None or isinstance(exception, Resolver404):
        return default
    message = exception.args[0] if exception.args else ""
    return message if isinstance(message, str) and message.strip() else default


def _page(request: HttpRequest, template: str, status: int, **context) -> HttpResponse:
    return HttpResponse(
        loader.render_to_string(template, {"request_path": request.path, **context}, request), status=status
    )


@requires_csrf_token
def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    reason = _reason(exception, FORBIDDEN)
    if wants_json(request):
        return JsonResponse({"detail": reason}, status=403)
    return _page(request, "403.html", 403, reason=reason)


@requires_csrf_token
def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    reason = _reason(exception, NOT_FOUND) if isinstance(exception, Http404) else NOT_FOUND
    if wants_json(request):
        return JsonResponse({"detail": "Not found." if reason == NOT_FOUND else reason}, status=404)
    return _page(request, "404.html", 404, reason=reason)


@requires_csrf_token
def server_error(request: HttpRequest) -> HttpResponse:
    """No context processors and no database: whatever broke may break them too."""
    request_id = getattr(request, "request_id", "")
    if wants_json(request):
        body = {"detail": "Internal server error.", "request_id": request_id}
        return JsonResponse(body, status=500)
    try:
        # The stylesheet by its plain name: the static manifest may be what is missing.
        html = loader.get_template("500.html").render(
            {"request_id": request_id, "stylesheet": f"{settings.STATIC_URL}supportdesk/app.css"}
        )
    except Exception:  # the error page must never fail in turn
        logger.exception("The 500 page could not be rendered")
        html = "<!doctype html><title>Server error</title><h1>Server error</h1><p><a href='/'>Home</a></p>"
    return HttpResponse(html, status=500)
