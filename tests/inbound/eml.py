"""The .eml fixtures, with the headers a test needs put in (its own Message-ID, the In-Reply-To of a
mail its outbox sent, a subject with its case's key), and every other byte left as it is."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"
_ids = itertools.count(1)
# The fixtures' stand-ins for Message-IDs of mails SupportDesk sent (see fixtures/README.md).
SENT_ID = re.compile(rb"<\d{12}\.\d{4}\.\d{10}@help\.acme\.example>")


def fixture_names() -> list[str]:
    return sorted(p.name for p in FIXTURES.glob("*.eml"))


def new_message_id(label: str = "test") -> str:
    return f"<{label}.{next(_ids)}@customer-mail.example>"


def _field_name(keyword: str) -> str:
    return keyword.rstrip("_").replace("_", "-").lower()


def _bytes(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("utf-8")


def with_headers(raw: bytes, **headers: str | bytes | None) -> bytes:
    """``raw`` with each header (``message_id=`` is Message-ID, ``from_=`` is From) replaced, added
    when missing, or removed with None; a ``bytes`` value goes in as it is (raw 8-bit headers). The
    header block keeps its line endings; the body is not touched."""
    newline = b"\r\n" if b"\r\n" in raw[: raw.find(b"\n") + 1] else b"\n"
    end = raw.find(newline + newline)
    head, body = (raw, b"") if end < 0 else (raw[:end], raw[end:])
    fields: list[list[bytes]] = []
    for line in head.split(newline):
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1].append(line)  # a folded continuation of the previous field
        else:
            fields.append([line])
    wanted = {_field_name(k): v for k, v in headers.items()}
    kept: list[list[bytes]] = []
    replaced: set[str] = set()
    for field in fields:
        name = field[0].split(b":", 1)[0].decode("ascii", errors="replace").strip().lower()
        if name not in wanted:
            kept.append(field)
            continue
        value = wanted[name]
        if value is not None and name not in replaced:
            kept.append([field[0].split(b":", 1)[0] + b": " + _bytes(value)])
        replaced.add(name)
    for name, value in wanted.items():
        if name not in replaced and value is not None:
            display = "-".join(part.capitalize() for part in name.split("-")).replace("Id", "ID")
            kept.append([display.encode() + b": " + _bytes(value)])
    return newline.join(newline.join(field) for field in kept) + body


def eml(name: str, *, ours: str | None = None, **headers: str | bytes | None) -> bytes:
    """The fixture ``name`` (``gmail_reply.eml``), with ``headers`` as in ``with_headers``; ``ours``:
    the Message-ID of a mail the test's outbox sent, in place of the fixture's stand-ins wherever
    they are (In-Reply-To, References, the headers a bounce returns)."""
    raw = (FIXTURES / name).read_bytes()
    if ours is not None:
        raw = SENT_ID.sub(ours.encode("ascii"), raw)
    return with_headers(raw, **headers) if headers else raw
