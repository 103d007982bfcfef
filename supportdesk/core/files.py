"""Files people and customers send: one check for every attachment in the product (escalation
packages, case replies and notes, files of inbound mail).

The size is bounded (``ATTACHMENT_MAX_BYTES``, default 10 MB), the declared type is not trusted (the
content must match it) and only formats support and engineering exchange are accepted.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.db.models.fields.files import FieldFile
from django.http import FileResponse, Http404
from django.utils.text import get_valid_filename

logger = logging.getLogger(__name__)

DEFAULT_MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024

# Binary formats are recognised by their first bytes; text formats by decoding them.
MAGIC_NUMBERS: dict[str, tuple[bytes, ...]] = {
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "application/pdf": (b"%PDF-",),
    "application/zip": (b"PK\x03\x04", b"PK\x05\x06"),
    "application/gzip": (b"\x1f\x8b",),
}
TEXT_TYPES = ("text/plain", "application/json")
ALLOWED_CONTENT_TYPES = (*TEXT_TYPES, *MAGIC_NUMBERS)
# What browsers and tools send for the same formats; treated as the canonical type.
ALIASES = {
    "image/jpg": "image/jpeg",
    "image/pjpeg": "image/jpeg",
    "application/x-zip-compressed": "application/zip",
    "application/x-gzip": "application/gzip",
    "text/x-log": "text/plain",
    "text/json": "application/json",
}
UNSPECIFIC = ("", "application/octet-stream", "binary/octet-stream")


def max_attachment_bytes() -> int:
    return int(getattr(settings, "ATTACHMENT_MAX_BYTES", DEFAULT_MAX_ATTACHMENT_BYTES))


def human_size(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f} MB"
    if size >= 1024:
        return f"{size / 1024:.0f} KB"
    return f"{size} bytes"


def _sniff_binary(head: bytes) -> str | None:
    for content_type, magics in MAGIC_NUMBERS.items():
        if any(head.startswith(m) for m in magics):
            return content_type
    return None


def _text_kind(data: bytes) -> str | None:
    """``application/json`` or ``text/plain`` when ``data`` is UTF-8 text, else None."""
    if b"\x00" in data:
        return None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    try:
        json.loads(text)
    except ValueError:
        return "text/plain"
    return "application/json"


@dataclass(frozen=True)
class CheckedFile:
    content_type: str
    size: int


def check_attachment(file: IO[bytes], *, declared_type: str | None, size: int | None) -> CheckedFile:
    """The verified content type of an upload, or ValidationError (too big, empty, or not allowed).

    The declared type (the browser's or client's header) is not trusted: the content must match it.
    Without a specific declared type, a recognised binary format is accepted for what it is.
    """
    limit = max_attachment_bytes()
    if size is None:
        file.seek(0, 2)
        size = file.tell()
    if size > limit:
        raise ValidationError(
            f"The file is {human_size(size)}; attachments may be at most {human_size(limit)}.", code="too_big"
        )
    if size == 0:
        raise ValidationError("The file is empty.", code="empty")
    declared = (declared_type or "").split(";")[0].strip().lower()
    declared = ALIASES.get(declared, declared)
    allowed = ", ".join(ALLOWED_CONTENT_TYPES)
    if declared not in ALLOWED_CONTENT_TYPES and declared not in UNSPECIFIC:
        raise ValidationError(
            f"Files of type “{declared}” are not accepted (allowed: {allowed}).", code="type"
        )
    file.seek(0)
    head = file.read(16)
    sniffed = _sniff_binary(head)
    if declared in MAGIC_NUMBERS:
        if sniffed != declared:
            raise ValidationError(
                f"The file's content is not {declared} as its type claims.", code="content_mismatch"
            )
        return CheckedFile(declared, size)
    if sniffed is not None and declared in UNSPECIFIC:
        return CheckedFile(sniffed, size)
    file.seek(0)
    kind = _text_kind(file.read(limit + 1))
    file.seek(0)
    if kind is None:
        raise ValidationError(
            f"The file's content is not one of the accepted types ({allowed}); text must be UTF-8.",
            code="content_mismatch",
        )
    if declared == "application/json" and kind != "application/json":
        raise ValidationError("The file is not valid JSON as its type claims.", code="content_mismatch")
    # A JSON file sent as text/plain (or untyped) keeps the declared, more cautious type.
    return CheckedFile(declared if declared in TEXT_TYPES else kind, size)


def safe_name(name: str | None, *, default: str = "attachment") -> str:
    """A file name that is safe on any storage: no path, no odd characters, at most 150 characters."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    try:
        cleaned = get_valid_filename(base)
    except Exception:  # Django refuses names that clean to nothing (".", "..")
        cleaned = ""
    return cleaned[-150:] or default


@dataclass(frozen=True)
class CheckedUpload:
    """An upload that passed ``check_attachment``: its safe name and verified type and size."""

    file: IO[bytes]
    name: str
    content_type: str
    size: int


def check_upload(upload, *, default_name: str = "attachment") -> CheckedUpload:
    """``check_attachment`` for an uploaded file (Django's ``UploadedFile``): ValidationError when it
    is refused, else its safe name and verified type, rewound for storing."""
    checked = check_attachment(upload, declared_type=getattr(upload, "content_type", None), size=upload.size)
    upload.seek(0)
    return CheckedUpload(
        upload, safe_name(upload.name, default=default_name), checked.content_type, checked.size
    )


@contextmanager
def removed_on_error() -> Iterator[list[str]]:
    """Collects the names of files written to the default storage in the block; when the block
    raises (its transaction rolled back, so no row refers to them) the files are deleted again.

    The storage is not transactional: a file written inside a transaction that fails would be left
    behind, unreachable, for ever.
    """
    stored: list[str] = []
    try:
        yield stored
    except BaseException:
        for name in stored:
            try:
                default_storage.delete(name)
            except Exception:  # the original error matters more; the orphan is logged
                logger.exception("Could not delete the stored file %s after a failed write", name)
        raise


def download_response(file: FieldFile, *, name: str, content_type: str) -> FileResponse:
    """A stored attachment as a download: never shown inline, with the verified type, which the
    browser must not second-guess (``nosniff``), and kept out of shared caches."""
    try:
        handle = file.open("rb")
    except FileNotFoundError as exc:
        raise Http404("The file is no longer stored.") from exc
    response = FileResponse(handle, as_attachment=True, filename=name, content_type=content_type)
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-cache"
    return response
