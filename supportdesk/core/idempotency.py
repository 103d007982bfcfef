"""Idempotent creation in the REST API: the ``Idempotency-Key`` request header.

A client that sends ``Idempotency-Key: <key>`` with a creating POST may send that request again
(same key, same body) for ``IDEMPOTENCY_TTL`` (24 h) and gets the first answer back, marked
``Idempotent-Replayed: true``, while nothing more is created. The same key with another body is a
422. A key belongs to one user and one endpoint (method and path): one person's key never replays
another person's answer, and a key used on two endpoints is two keys. Without the header a request
behaves as it always did.

Why this holds with several web processes: a key's record is inserted at the start of the
transaction the view's own writes run in, and it is completed (the answer stored) in that same
transaction, so no other process ever sees a record half done. A second request with the same key
at the same moment waits on the record's unique constraint (PostgreSQL: the unique index; SQLite:
the write lock taken at BEGIN) until the first commits, then replays the first answer; if the first
failed and rolled back, the second runs as if it were the first. Only 2xx answers are kept: a
refused request (4xx) or an error leaves no record, so the client can fix the request and retry
with the same key.

Use ``@idempotent`` on a DRF view's handler method. For an ``@action`` put it directly below the
``@extend_schema`` and above ``@action`` (``@action`` replaces the function's ``kwargs``, where the
schema addition lives); for a plain method (``create``, ``post``) put it directly above ``def``.
The operation then documents the header and the 422 in the OpenAPI schema.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import inspect
import json
from collections.abc import Callable
from typing import Any

from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.encoding import escape_uri_path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import serializers, status
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.response import Response
from rest_framework.settings import api_settings

from .models import IdempotencyRecord

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
IDEMPOTENCY_TTL = dt.timedelta(hours=24)
MAX_KEY_LENGTH = 255
MAX_PATH_LENGTH = 1000  # IdempotencyRecord.path
# The answer's headers a replay carries again (the body, status and content type are rebuilt).
KEPT_HEADERS = ("Location", "ETag")

BAD_KEY = (
    f"{HEADER} must be 1 to {MAX_KEY_LENGTH} printable ASCII characters "
    "(letters, digits, punctuation, spaces), e.g. a UUID."
)


class _KeyError(APIException):
    """A refusal about the key, answered ``{"detail": ..., "code": ...}`` like the domain's errors."""

    def __init__(self) -> None:
        super().__init__({"detail": self.default_detail, "code": self.default_code})


class KeyReused(_KeyError):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_code = "idempotency_key_reused"
    default_detail = (
        f"This {HEADER} was already used with a different request body on this endpoint: "
        "send a new key for a new request."
    )


class KeyInProgress(_KeyError):
    status_code = status.HTTP_409_CONFLICT
    default_code = "idempotency_key_in_progress"
    default_detail = f"A request with this {HEADER} is in progress: retry in a moment."


# --- The key, the endpoint and the body ------------------------------------------------------------


def key_of(request) -> str | None:
    """The request's ``Idempotency-Key``, None without the header; a 400 for a malformed one."""
    raw = request.headers.get(HEADER)
    if raw is None:
        return None
    key = raw.strip()
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not all(" " <= char <= "~" for char in key):
        raise ValidationError({HEADER: [BAD_KEY]})
    return key


def _endpoint_path(request) -> str:
    path = escape_uri_path(request.path)  # ASCII, so the unique index entry stays small
    if len(path) > MAX_PATH_LENGTH:
        raise ValidationError({HEADER: [f"{HEADER} is not accepted on a path this long."]})
    return path


def request_fingerprint(request) -> str:
    """SHA-256 of the parsed body in a canonical form: JSON key order and spacing, and a multipart
    body's boundary, do not change it; a file counts by its name, type and content."""
    data = request.data
    if hasattr(data, "lists"):  # a form or multipart body (a QueryDict, files included)
        fields = sorted(
            [name, value]
            for name, values in data.lists()
            for value in values
            if not isinstance(value, UploadedFile)
        )
        files = sorted(
            [name, upload.name, upload.content_type, _file_digest(upload)]
            for name, uploads in request.FILES.lists()
            for upload in uploads
        )
        canonical: Any = {"form": fields, "files": files}
    else:
        canonical = {"json": data}
    blob = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def _file_digest(upload: UploadedFile) -> str:
    digest = hashlib.sha256()
    for chunk in upload.chunks():
        digest.update(chunk)
    upload.seek(0)  # the view reads it again
    return digest.hexdigest()


# --- Running a request once ------------------------------------------------------------------------


def respond_once(request, run: Callable[[], Response], *, now: dt.datetime) -> Response:
    """``run()``'s answer, or with a known key and body the first answer to it (nothing run)."""
    key = key_of(request)
    if key is None:
        return run()
    scope = {"user": request.user, "key": key, "method": request.method, "path": _endpoint_path(request)}
    fingerprint = request_fingerprint(request)

    found = _live_record(scope, now=now)
    if found is not None:
        return _replay(found, fingerprint=fingerprint)

    with transaction.atomic():
        # An expired record of this key would block the new one; removing it here (not only in the
        # periodic purge) is what makes the key usable again after IDEMPOTENCY_TTL.
        IdempotencyRecord.objects.filter(**scope, expires_at__lte=now).delete()
        try:
            with transaction.atomic():
                record = IdempotencyRecord.objects.create(
                    **scope,
                    request_fingerprint=fingerprint,
                    created_at=now,
                    expires_at=now + IDEMPOTENCY_TTL,
                )
        except IntegrityError:
            record = None  # another request with this key committed first (we waited for it)
        if record is not None:
            response = run()
            if status.is_success(response.status_code) and hasattr(response, "data"):
                record.response_status = response.status_code
                record.response_body = response.data
                record.response_headers = {name: response[name] for name in KEPT_HEADERS if name in response}
                record.save(update_fields=["response_status", "response_body", "response_headers"])
            else:
                record.delete()  # nothing to replay: the client may fix the request and retry
            return response

    found = _live_record(scope, now=now)
    if found is None:
        raise KeyInProgress()
    return _replay(found, fingerprint=fingerprint)


def _live_record(scope: dict, *, now: dt.datetime) -> IdempotencyRecord | None:
    return IdempotencyRecord.objects.filter(
        **scope, expires_at__gt=now, response_status__isnull=False
    ).first()


def _replay(record: IdempotencyRecord, *, fingerprint: str) -> Response:
    if record.request_fingerprint != fingerprint:
        raise KeyReused()
    headers = {**record.response_headers, REPLAYED_HEADER: "true"}
    return Response(record.response_body, status=record.response_status, headers=headers)


def purge_expired(*, now: dt.datetime, batch: int = 5000) -> int:
    """Delete records past their expiry, in batches; safe to run on several workers at once."""
    deleted = 0
    while True:
        ids = list(IdempotencyRecord.objects.filter(expires_at__lte=now).values_list("pk", flat=True)[:batch])
        if not ids:
            return deleted
        deleted += IdempotencyRecord.objects.filter(pk__in=ids, expires_at__lte=now).delete()[0]


# --- The decorator and its schema ------------------------------------------------------------------


class IdempotencyErrorSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="What went wrong with the key.")
    code = serializers.CharField(
        help_text=f"`{KeyReused.default_code}` (422) or `{KeyInProgress.default_code}` (409)."
    )


KEY_PARAMETER = OpenApiParameter(
    HEADER,
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=False,
    description=(
        f"A key of your choosing (1-{MAX_KEY_LENGTH} printable ASCII characters, e.g. a UUID) that makes "
        "a retry safe: the same key and body within 24 h returns the first answer (with "
        f"`{REPLAYED_HEADER}: true`) and creates nothing more; the same key with another body is a 422. "
        "Keys are per user and per endpoint."
    ),
)
EXTRA_RESPONSES = {
    "422": OpenApiResponse(
        IdempotencyErrorSerializer, description=f"The {HEADER} was already used with another body."
    ),
    "409": OpenApiResponse(
        IdempotencyErrorSerializer,
        description=f"A request with this {HEADER} is still in progress (rare: retry in a moment).",
    ),
}


def _schema_with_key(base: type) -> type:
    """``base`` (the view's schema class) plus the header parameter and the key's error answers;
    an ``@extend_schema`` applied on top subclasses this, so its own responses keep these."""

    class IdempotentSchema(base):
        def get_override_parameters(self):
            return [*super().get_override_parameters(), KEY_PARAMETER]

        def _get_response_bodies(self, direction="response"):
            bodies = super()._get_response_bodies(direction)
            if direction == "response":
                for code, answer in EXTRA_RESPONSES.items():
                    if code not in bodies:
                        bodies[code] = self._get_response_for_code(answer, code, direction=direction)
            return bodies

    return IdempotentSchema


def idempotent(handler: Callable) -> Callable:
    """Make a DRF handler method (``self, request, ...``) honour ``Idempotency-Key``."""

    @functools.wraps(handler)
    def wrapper(view, request, *args, **kwargs):
        return respond_once(request, lambda: handler(view, request, *args, **kwargs), now=timezone.now())

    # The schema the handler has so far (an @extend_schema below this one, or the default).
    schema_kwargs = dict(getattr(handler, "kwargs", {}))
    base = schema_kwargs.get("schema") or api_settings.DEFAULT_SCHEMA_CLASS
    schema_kwargs["schema"] = _schema_with_key(base if inspect.isclass(base) else type(base))
    # Function attributes: drf-spectacular reads ``kwargs``; ``idempotent`` marks the handler.
    wrapper.__dict__.update(kwargs=schema_kwargs, idempotent=True)
    return wrapper
