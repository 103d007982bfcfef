"""A received mail read into what the product needs: addresses, threading headers, the readable text
(from HTML when that is all there is; the quoted history and signature stripped), attachments, and
whether it is an auto-reply or a bounce.

The standard library's modern ``email`` API (``policy.default``) does the MIME work; inscriptis turns
HTML into text and mail-parser-reply finds where a reply's quoted history and signature begin.
"""

from __future__ import annotations

import email
import hashlib
import logging
import re
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage, Message
from email.utils import getaddresses, parseaddr

from inscriptis import get_text
from mailparser_reply import EmailReplyParser

logger = logging.getLogger(__name__)

MESSAGE_ID_RE = re.compile(r"<[^<>\s]+>")
# Languages whose reply headers ("On ... wrote:", "Am ... schrieb:") the quote finder knows.
REPLY_LANGUAGES = ["en", "de", "fr", "es", "it", "nl", "pl", "sv", "da", "fi", "pt"]
BODY_LIMIT = 200_000  # characters kept on the timeline; the full mail stays in the .eml


@dataclass(frozen=True)
class Attachment:
    name: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class Bounce:
    """A delivery status notification: which of our mails it is about, and why."""

    message_ids: tuple[str, ...]
    reason: str


@dataclass
class ParsedMail:
    message_id: str
    subject: str
    from_name: str
    from_address: str
    to: list[str]
    cc: list[str]
    recipients: list[str]  # To, Cc, Delivered-To, X-Original-To, Envelope-To: where it was sent
    in_reply_to: list[str]
    references: list[str]
    text: str  # the whole readable body
    visible_text: str  # without the quoted history and signature
    html_only: bool = False
    attachments: list[Attachment] = field(default_factory=list)
    auto_reason: str = ""  # non-empty: an auto-reply / bulk mail, and why we think so
    bounce: Bounce | None = None


def key_for(raw: bytes, message_id: str) -> str:
    """The mail's key in a mailbox: its Message-ID, or a digest of its bytes when it has none."""
    return message_id or f"<sha256-{hashlib.sha256(raw).hexdigest()}@supportdesk.invalid>"


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def message_from_bytes(raw: bytes) -> EmailMessage:
    return email.message_from_bytes(raw, policy=policy.default)  # type: ignore[return-value]


def header(msg: Message, name: str) -> str:
    """A header's decoded text, or "" when it is missing or cannot be decoded."""
    try:
        value = msg.get(name)
    except Exception:  # a malformed header the policy cannot parse
        value = None
    if value is None:
        return ""
    return " ".join(str(value).split())


def message_ids(value: str) -> list[str]:
    return MESSAGE_ID_RE.findall(value or "")


def first_message_id(msg: Message) -> str:
    ids = message_ids(header(msg, "Message-ID"))
    return ids[0][:255] if ids else ""


def _addresses(msg: Message, *names: str) -> list[str]:
    values = []
    for name in names:
        try:
            values.extend(str(v) for v in msg.get_all(name, []))
        except Exception:  # a header the policy cannot parse: the address is read as absent
            logger.info("Unreadable %s header in a received mail", name)
    result: list[str] = []
    for _, address in getaddresses(values):
        address = address.strip().lower()
        if "@" in address and address not in result:
            result.append(address)
    return result


def decoded_text(part: Message) -> str:
    """A text part's content, decoded by its declared charset; an unknown or wrong charset falls back
    to UTF-8 then Windows-1252 (what Outlook means by "us-ascii" more often than not)."""
    try:
        return part.get_content()  # type: ignore[attr-defined]
    except (LookupError, UnicodeError, KeyError, AssertionError):
        pass
    payload = part.get_payload(decode=True) or b""
    for charset in ("utf-8", "cp1252"):
        try:
            return payload.decode(charset)
        except UnicodeDecodeError:
            continue
    return payload.decode("latin-1")


def html_to_text(html: str) -> str:
    return get_text(html).strip()


def _normalise(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\xa0", " ")
    lines = [line.rstrip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def visible_part(text: str) -> str:
    """The new words of a reply: without the quoted history ("On ... wrote:", "> ...") and the
    signature. When the finder leaves nothing, the whole text is kept (nothing said is dropped)."""
    try:
        parsed = EmailReplyParser(languages=REPLY_LANGUAGES).read(text)
        latest = parsed.replies[0].body if parsed.replies else ""
    except Exception:  # the parser is a heuristic; a text it chokes on is kept whole
        latest = ""
    latest = _normalise(latest)
    return latest or text


def auto_reply_reason(msg: Message) -> str:
    """Why this mail was sent by a machine (RFC 3834 and the headers mail systems really use), or ""."""
    auto_submitted = header(msg, "Auto-Submitted").lower()
    if auto_submitted and auto_submitted != "no":
        return f"Auto-Submitted: {auto_submitted}"
    for name in ("X-Autoreply", "X-Autorespond", "X-Auto-Response-Suppress"):
        if header(msg, name):
            return f"{name} header"
    precedence = header(msg, "Precedence").lower()
    if precedence in {"bulk", "junk", "list", "auto_reply"}:
        return f"Precedence: {precedence}"
    if header(msg, "List-Id") or header(msg, "List-Unsubscribe"):
        return "mailing list (List-Id / List-Unsubscribe)"
    return ""


def bounce_of(msg: EmailMessage) -> Bounce | None:
    """A delivery status notification (RFC 3464, multipart/report; report-type=delivery-status): the
    Message-IDs of the mails it returns and the diagnostic."""
    if msg.get_content_type() != "multipart/report":
        return None
    if msg.get_param("report-type", "").lower() != "delivery-status":
        return None
    ids: list[str] = []
    reasons: list[str] = []
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype == "message/delivery-status":
            for block in part.get_payload():
                status = header(block, "Status")
                diagnostic = header(block, "Diagnostic-Code")
                action = header(block, "Action").lower()
                if action and action not in {"failed"}:
                    continue
                text = " ".join(t for t in (status, diagnostic) if t)
                if text:
                    reasons.append(text)
        elif ctype in {"message/rfc822", "text/rfc822-headers", "message/rfc822-headers"}:
            original = part.get_payload()
            if isinstance(original, list) and original:
                ids.extend(message_ids(header(original[0], "Message-ID")))
            else:
                text = original if isinstance(original, str) else decoded_text(part)
                headers = email.message_from_string(text, policy=policy.default)
                ids.extend(message_ids(header(headers, "Message-ID")))
    return Bounce(message_ids=tuple(dict.fromkeys(ids)), reason="; ".join(reasons))


def _attachments(msg: EmailMessage) -> list[Attachment]:
    found = []
    for part in msg.iter_attachments():
        if part.is_multipart() or part.get_content_maintype() == "message":
            continue
        try:
            data = part.get_payload(decode=True) or b""
        except Exception:  # a broken transfer encoding: the file stays in the kept .eml
            logger.info("Unreadable attachment in a received mail", exc_info=True)
            continue
        name = part.get_filename() or ""
        found.append(Attachment(name=name, content_type=part.get_content_type(), data=data))
    return found


def body_text(msg: EmailMessage) -> tuple[str, bool]:
    """The readable text of a mail and whether it came from HTML (an HTML-only mail)."""
    part = msg.get_body(preferencelist=("plain", "html"))
    if part is None:
        return "", False
    text = decoded_text(part)
    if part.get_content_subtype() == "html":
        return html_to_text(text), True
    return text, False


def parse(raw: bytes) -> ParsedMail:
    msg = message_from_bytes(raw)
    _, from_address = parseaddr(header(msg, "From"))
    from_name = parseaddr(header(msg, "From"))[0]
    text, html_only = body_text(msg)
    text = _normalise(text)[:BODY_LIMIT]
    return ParsedMail(
        message_id=first_message_id(msg),
        subject=header(msg, "Subject")[:500],
        from_name=from_name[:200],
        from_address=from_address.strip().lower()[:320],
        to=_addresses(msg, "To"),
        cc=_addresses(msg, "Cc"),
        recipients=_addresses(msg, "To", "Cc", "Delivered-To", "X-Original-To", "Envelope-To"),
        in_reply_to=message_ids(header(msg, "In-Reply-To")),
        references=message_ids(header(msg, "References")),
        text=text,
        visible_text=visible_part(text) if text else "",
        html_only=html_only,
        attachments=_attachments(msg),
        auto_reason=auto_reply_reason(msg),
        bounce=bounce_of(msg),
    )
