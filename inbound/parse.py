"""A received mail read into what the product needs: addresses, threading headers, the readable text
(from HTML when that is all there is; the quoted history and signature stripped), attachments, and
whether it is an auto-reply or a bounce.

The standard library's modern ``email`` API (``policy.default``) does the MIME work; inscriptis turns
HTML into text and mail-parser-reply finds where a reply's quoted history begins. What real clients
get wrong is repaired here: charset labels (Windows' supersets, "us-ascii" on 8-bit text, unknown
labels), raw 8-bit headers, format=flowed, the text Apple Mail splits around an inline image.
Everything read is bounded (body, HTML, addresses, references) and cleaned of control characters.
"""

from __future__ import annotations

import base64
import binascii
import email
import hashlib
import logging
import quopri
import re
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesHeaderParser
from email.utils import getaddresses

from inscriptis import get_text
from inscriptis.css_profiles import CSS_PROFILES
from inscriptis.model.config import ParserConfig
from mailparser_reply import EmailReplyParser

logger = logging.getLogger(__name__)

MESSAGE_ID_RE = re.compile(r"<[^<>\s]+>")
# Languages whose reply headers ("On ... wrote:", "Am ... schrieb:", "2026年3月2日(月) ... :") the
# quote finder knows. Only its reply headers are used (see ``visible_part``); Polish is left out
# because one line starting "Data:" or "Do:" counts as a Polish reply header there.
REPLY_LANGUAGES = ["en", "de", "fr", "es", "it", "nl", "sv", "da", "cs", "ja", "zh", "ko"]
BODY_LIMIT = 200_000  # characters kept on the timeline; the full mail stays in the .eml
HTML_LIMIT = 2_000_000  # characters of HTML turned into text (a mail may be 25 MB of markup)
ADDRESS_LIMIT = 254  # RFC 5321's longest address; longer ones are not addresses we can write to
ADDRESSES_PER_MAIL = 100  # To + Cc + the delivery headers read from one mail


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
    # The display names the mail gives its To and Cc addresses ("Dan Brooks" for dan@...).
    names: dict[str, str]
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


def _header_end(raw: bytes) -> int:
    ends = [i for i in (raw.find(b"\r\n\r\n"), raw.find(b"\n\n")) if i >= 0]
    return min(ends) if ends else len(raw)


def _readable_headers(raw: bytes) -> bytes:
    """The mail with its raw 8-bit header lines as UTF-8: lines that are not UTF-8 already (RFC 6532)
    are read as Windows-1252, what clients that write unencoded headers almost always mean. Without
    this every such character would become U+FFFD. Only the parsing copy changes; the kept .eml
    is the mail as received."""
    end = _header_end(raw)
    head = raw[:end]
    if max(head, default=0) < 0x80:
        return raw
    lines = []
    for line in head.split(b"\n"):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            line = line.decode("cp1252", errors="replace").encode("utf-8")
        lines.append(line)
    return b"\n".join(lines) + raw[end:]


def message_from_bytes(raw: bytes) -> EmailMessage:
    return email.message_from_bytes(_readable_headers(raw), policy=policy.default)


def headers_from_bytes(raw: bytes) -> EmailMessage:
    """Only the header block of a mail, parsed (the body is not read)."""
    return BytesHeaderParser(policy=policy.default).parsebytes(_readable_headers(raw))


_C1 = re.compile("[\x80-\x9f]")
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


_SURROGATES = re.compile("[\ud800-\udfff]")


def clean_text(text: str) -> str:
    """Text safe to store: the raw UTF-8 bytes the email package leaves as surrogates (RFC 6532
    headers: "From: Tomás <...>" unencoded) decoded, C1 control characters read as the
    Windows-1252 punctuation they almost always are (an ISO-8859-1 label on Outlook's curly
    quotes), other controls (NUL, ...) removed."""
    if _SURROGATES.search(text):
        try:
            text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        except UnicodeEncodeError:  # a surrogate that is no escaped byte: nothing to recover
            text = _SURROGATES.sub("\ufffd", text)
    text = _C1.sub(lambda m: bytes([ord(m.group())]).decode("cp1252", errors="ignore"), text)
    return _CONTROL.sub("", text)


_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")
_BETWEEN_WORDS = re.compile(r"(?<=\?=)\s+(?==\?[^?\s]+\?[bBqQ]\?)")


def _decode_word(match: re.Match) -> str:
    charset, encoding, payload = match.group(1).split("*")[0], match.group(2).lower(), match.group(3)
    try:
        if encoding == "b":
            data = base64.b64decode(payload + "=" * (-len(payload) % 4))
        else:
            data = quopri.decodestring(payload.encode("ascii", errors="replace"), header=True)
    except (ValueError, binascii.Error):
        return match.group(0)
    return decode_bytes(data, charset)


def decode_words(text: str) -> str:
    """RFC 2047 encoded words the email package left as they were because its codec for the label
    failed (Windows' ① in "ISO-2022-JP" or "Shift_JIS", an unknown label): decoded as body text is."""
    if "=?" not in text:
        return text
    return _ENCODED_WORD.sub(_decode_word, _BETWEEN_WORDS.sub("", text))


def _raw(msg: Message, name: str) -> str:
    """The header as received, encoded words and all (one line)."""
    raw = next((str(v) for k, v in msg.raw_items() if k.lower() == name.lower()), "")
    return _BETWEEN_WORDS.sub("", " ".join(raw.split()))


def _lost_bytes(text: str) -> bool:
    return bool(_SURROGATES.search(text)) or "\ufffd" in text


def header(msg: Message, name: str) -> str:
    """A header's decoded text on one line, or "" when it is missing or cannot be decoded. Where the
    email package's codec for an encoded word's label lost bytes (Windows' ① in "Shift_JIS"), the
    raw header's encoded words are decoded as body text is."""
    try:
        value = msg.get(name)
        text = "" if value is None else str(value)
    except Exception:  # a malformed header the policy cannot parse
        return ""
    if _lost_bytes(text) and _ENCODED_WORD.search(raw := _raw(msg, name)):
        text = decode_words(raw)
    return " ".join(clean_text(decode_words(text)).split())


def message_ids(value: str) -> list[str]:
    return MESSAGE_ID_RE.findall(value or "")


def first_message_id(msg: Message) -> str:
    ids = message_ids(header(msg, "Message-ID"))
    return ids[0][:255] if ids else ""


def _mailboxes(msg: Message, name: str) -> list[tuple[str, str]]:
    """(display name, address) of every address in the headers called ``name``."""
    found: list[tuple[str, str]] = []
    try:
        values = msg.get_all(name, [])
    except Exception:  # a header the policy cannot parse: the address is read as absent
        logger.info("Unreadable %s header in a received mail", name)
        return found
    for value in values:
        addresses = getattr(value, "addresses", None)
        if addresses is not None:  # an address header parsed by the policy (RFC 2047 names, groups)
            found.extend((a.display_name, a.addr_spec) for a in addresses)
        else:  # Delivered-To, X-Original-To, Envelope-To: unstructured headers
            found.extend(getaddresses([str(value)]))
    return found


def _addresses(msg: Message, *names: str) -> list[str]:
    result: list[str] = []
    for name in names:
        for _, address in _mailboxes(msg, name):
            address = clean_text(address).strip().strip("<>").lower()
            if "@" in address and len(address) <= ADDRESS_LIMIT and address not in result:
                result.append(address)
    return result[:ADDRESSES_PER_MAIL]


def _display_names(msg: Message, *names: str) -> dict[str, str]:
    result: dict[str, str] = {}
    for name in names:
        for display, address in _mailboxes(msg, name):
            address = clean_text(address).strip().strip("<>").lower()
            display = " ".join(clean_text(display or "").split())[:200]
            if display and address and address not in result and len(result) < ADDRESSES_PER_MAIL:
                result[address] = display
    return result


# Labels whose text is really in a superset: Windows writes cp932 as "Shift_JIS" (① and ～ are
# not in Shift_JIS), Windows-1252 as "ISO-8859-1" (curly quotes, €), GB18030 as "GB2312".
CHARSET_SUPERSETS = {
    "iso-8859-1": "cp1252",
    "iso8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "sjis": "cp932",
    "x-sjis": "cp932",
    "ms_kanji": "cp932",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "euc-kr": "cp949",
    "ks_c_5601-1987": "cp949",
}
ISO_2022_JP = {"iso-2022-jp", "csiso2022jp", "iso2022jp", "iso2022_jp"}
# Labels that say nothing about 8-bit bytes: the bytes decide (UTF-8, else Windows-1252).
UNINFORMATIVE_CHARSETS = {"", "us-ascii", "ascii", "unknown-8bit", "x-unknown", "unknown", "default"}
_UTF8_SEQUENCE = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}")


def _iso2022jp_as_cp932(data: bytes) -> str:
    """ISO-2022-JP as Windows writes it (CP50220/50221): JIS X 0208 plus NEC's row 13 (① ② Ⅰ ㈱) and
    IBM's extensions, which Python's ISO-2022-JP codecs refuse. Each JIS pair is moved to its
    Shift_JIS code and the whole read as cp932, the same character set. An escape sequence it does
    not know raises UnicodeDecodeError, for the caller's next way."""
    out = bytearray()
    mode = "ascii"
    i = 0
    while i < len(data):
        byte = data[i]
        if byte == 0x1B:
            sequence = data[i + 1 : i + 3]
            modes = {b"$B": "jis", b"$@": "jis", b"(B": "ascii", b"(J": "ascii", b"(I": "kana"}
            if sequence not in modes:
                raise UnicodeDecodeError("iso-2022-jp", data, i, i + 3, "unsupported escape sequence")
            mode = modes[sequence]
            i += 3
        elif mode == "jis" and 0x21 <= byte <= 0x7E and i + 1 < len(data):
            first, second = byte, data[i + 1]
            lead = ((first + 1) >> 1) + (0x70 if first <= 0x5E else 0xB0)
            # Odd JIS rows take the lower Shift_JIS trail bytes (skipping 0x7F), even rows the upper.
            trail = second + (0x20 if second >= 0x60 else 0x1F) if first % 2 else second + 0x7E
            out += bytes([lead, trail])
            i += 2
        elif mode == "kana" and 0x21 <= byte <= 0x5F:
            out.append(byte + 0x80)  # half-width katakana
            i += 1
        else:
            out.append(byte)
            i += 1
    return out.decode("cp932")


def decode_bytes(data: bytes, charset: str | None) -> str:
    """Text of a part in its declared charset; a wrong or unknown label falls back to what the
    bytes are: UTF-8 when they hold UTF-8 sequences (a damaged byte becomes U+FFFD), else
    Windows-1252 (what Outlook and old mail programs mean by "us-ascii" more often than not)."""
    label = (charset or "").strip().strip('"').lower()
    if label in ISO_2022_JP:
        try:
            return _iso2022jp_as_cp932(data)
        except UnicodeDecodeError:
            pass  # other designations (JIS X 0212, ...): Python's own codecs below
    if label not in UNINFORMATIVE_CHARSETS:
        for candidate in dict.fromkeys((CHARSET_SUPERSETS.get(label, label), label)):
            try:
                return data.decode(candidate)
            except (LookupError, UnicodeDecodeError, ValueError):  # ValueError: a NUL in the label
                continue
    if _UTF8_SEQUENCE.search(data) or max(data, default=0) < 0x80:
        return data.decode("utf-8", errors="replace")
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:  # the five bytes Windows-1252 leaves undefined
        return data.decode("latin-1")


def unflow(text: str, *, delsp: bool) -> str:
    """RFC 3676 format=flowed text as the lines its writer typed: a line ending in a space goes on
    with the next line of the same quote depth (its space removed with DelSp=yes)."""
    out: list[str] = []
    paragraph: str | None = None
    depth = 0
    for line in text.split("\n"):
        level = len(line) - len(line.lstrip(">"))
        content = line[level:]
        if content.startswith(" "):  # space-stuffing (or the space after the quote marks)
            content = content[1:]
        if paragraph is not None and level != depth:  # a flowed line cannot go on at another depth
            out.append(">" * depth + (" " if depth else "") + paragraph)
            paragraph = None
        paragraph = content if paragraph is None else paragraph + content
        depth = level
        if content.endswith(" ") and content != "-- ":
            if delsp:
                paragraph = paragraph[:-1]
            continue
        out.append(">" * depth + (" " if depth else "") + paragraph)
        paragraph = None
    if paragraph is not None:
        out.append(">" * depth + (" " if depth else "") + paragraph)
    return "\n".join(out)


def decoded_text(part: Message) -> str:
    """A text part's content as the writer typed it (charset decoded, format=flowed unflowed)."""
    try:
        payload = part.get_payload(decode=True) or b""
    except Exception:  # a broken transfer encoding: what can be read of it
        raw = part.get_payload()
        payload = raw.encode("utf-8", errors="replace") if isinstance(raw, str) else b""
    if isinstance(payload, str):  # a multipart or message part has no text of its own
        payload = payload.encode("utf-8", errors="replace")
    elif not isinstance(payload, bytes):  # not with decode=True: typed so by the standard library
        payload = b""
    text = decode_bytes(payload, part.get_content_charset())
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if str(part.get_param("format", "")).lower() == "flowed":
        text = unflow(text, delsp=str(part.get_param("delsp", "")).lower() == "yes")
    return clean_text(text)


# The strict profile: no indentation of every <div>'s text (Outlook and Gmail wrap each line in one).
_HTML_CONFIG = ParserConfig(css=CSS_PROFILES["strict"])


def html_to_text(html: str) -> str:
    return get_text(html[:HTML_LIMIT], _HTML_CONFIG).strip()


def _normalise(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\xa0", " ")
    lines = [line.rstrip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


# --- the new words of a reply -------------------------------------------------------------------

# RFC 3676's "-- " (and the "--" of clients that trim it), "__" and Outlook's line of underscores.
_SIGNATURE_SEPARATOR = re.compile(r"^(?:--|__|_{20,})$")
_SENT_FROM = re.compile(
    r"^(?:sent from my|sent from outlook|get outlook for|von meinem .{1,40} gesendet|gesendet von|"
    r"envoyé de mon|enviado desde mi|inviato da|verzonden vanaf mijn|skickat från min|sendt fra min)",
    re.IGNORECASE,
)
# A closing line on its own ("Kind regards", "Best,"): the signature block starts there.
_CLOSING = re.compile(
    r"^(?:(?:best|kind|warm|warmest|many thanks and|with kind|with best) regards|regards|best wishes|best|"
    r"cheers|thanks|thank you|many thanks|thanks and regards|"
    r"mit freundlichen grüßen|mit freundlichen grüssen|freundliche grüße|(?:viele|beste|liebe|herzliche) "
    r"grüße|(?:viele|beste|liebe|herzliche) grüsse|grüße|gruß|"
    r"cordialement|bien cordialement|bien à vous|saludos|un saludo|atentamente|cordiali saluti|"
    r"distinti saluti|met vriendelijke groet(?:en)?|med vänliga hälsningar|vänliga hälsningar|"
    r"med venlig hilsen|venlig hilsen|с уважением)[\s,.!]*$",
    re.IGNORECASE,
)
SIGNATURE_MAX_LINES = 6  # a closing counts as the signature's start only this close to the end


# Outlook's plain-text stand-in for an inline image (the image itself is stored as an attachment).
_CID_PLACEHOLDER = re.compile(r"^\s*\[cid:[^\]]*\]\s*$")


def _quoted(line: str) -> bool:
    return line.lstrip().startswith(">")


def _first_quote_header(text: str, lines: list[str]) -> tuple[int, int] | None:
    """(line index, number of lines) of the first reply header ("On ... wrote:", an Outlook
    "From: ... Sent: ..." block) that mail-parser-reply finds, in ``lines``."""
    try:
        parsed = EmailReplyParser(languages=REPLY_LANGUAGES).read(text)
    except Exception:  # the parser is a heuristic; a text it chokes on has no quote for us
        return None
    found = next((reply.headers for reply in parsed.replies if reply.headers), "")
    header_lines = [line.strip() for line in found.strip().split("\n") if line.strip()]
    if not header_lines:
        return None
    for index, line in enumerate(lines):  # the parser strips lines; find the line as written
        if line.strip() == header_lines[0]:
            return index, len(header_lines)
    return None


def _without_signature(lines: list[str]) -> list[str]:
    """``lines`` up to where the signature starts, when one is recognised."""
    filled = [i for i, line in enumerate(lines) if line.strip()]
    for position, index in enumerate(filled):
        if position == 0:
            continue  # the first line is what the customer says, even "Thanks!"
        line = lines[index].strip()
        after = len(filled) - position - 1
        if (
            _SIGNATURE_SEPARATOR.match(line)
            or (_SENT_FROM.match(line) and after <= 2)
            or (_CLOSING.match(line) and after <= SIGNATURE_MAX_LINES)
        ):
            return lines[:index]
    return lines


def visible_part(text: str) -> str:
    """The new words of a reply: without the quoted history ("On ... wrote:", "> ...", Outlook's
    "From: ... Sent: ...") and the signature; indentation (a pasted log) is kept. A bottom-posted
    reply (the answer below the quote) keeps the answer. When nothing is left, the whole text is
    kept: nothing the customer said is dropped.

    mail-parser-reply finds the reply headers; its signature patterns are not used, as they end the
    text at any line starting with "- " (a list), "Tak" (Danish: "Take a look ..."), "/" (Swedish:
    "/var/log/...") or "Thanks," ("Thanks, that fixed it! But ...").
    """
    lines = text.split("\n")
    quote = _first_quote_header(text, lines)
    fragment = lines
    if quote is not None:
        start, size = quote
        fragment = lines[:start]
        if not any(line.strip() and not _quoted(line) for line in fragment):  # bottom-posted
            fragment = lines[start + size :]
    fragment = [line for line in fragment if not _quoted(line) and not _CID_PLACEHOLDER.match(line)]
    visible = _normalise("\n".join(_without_signature(fragment)))
    return visible or text


# --- machines ------------------------------------------------------------------------------------

# Subjects of out-of-office replies (Exchange: "Automatic reply:", German Outlook: "Automatische
# Antwort:"), read only together with Exchange's X-Auto-Response-Suppress (see below).
_AUTO_SUBJECT = re.compile(
    r"^\s*(?:automatic reply|auto(?:matic)?[- ]?reply|out of (?:the )?office|automatische antwort|"
    r"abwesenheitsnotiz|réponse automatique|respuesta automática|risposta automatica|"
    r"automatisch antwoord)\b",
    re.IGNORECASE,
)
_MAIL_SYSTEMS = {"mailer-daemon", "postmaster"}


def auto_reply_reason(msg: Message) -> str:
    """Why this mail was sent by a machine (RFC 3834 and the headers mail systems really use), or "".

    Exchange's ``X-Auto-Response-Suppress`` alone is not enough: Outlook and Exchange also put it on
    mail people write (to distribution lists, meeting replies), so Discourse, osTicket and GLPI
    stopped reading it as "automatic". With the subject of an automatic reply or Exchange's
    inbox-rule markers it is one.
    """
    if msg.get_content_type() == "multipart/report":
        report = str(msg.get_param("report-type", "")).lower()
        return f"a {report or 'delivery'} report (multipart/report), not a person's mail"
    auto_submitted = header(msg, "Auto-Submitted").lower()
    keyword = re.split(r"[\s;(]", auto_submitted, maxsplit=1)[0] if auto_submitted else ""
    if keyword and keyword != "no":
        return f"Auto-Submitted: {auto_submitted}"
    for name in ("X-Autoreply", "X-Autorespond", "X-Autoresponse", "X-AutoReply-From"):
        if header(msg, name):
            return f"{name} header"
    if header(msg, "X-Auto-Response-Suppress") and (
        _AUTO_SUBJECT.match(header(msg, "Subject"))
        or header(msg, "X-MS-Exchange-Inbox-Rules-Loop")
        or header(msg, "X-MS-Exchange-Generated-Message-Source")
    ):
        return "Exchange automatic reply (X-Auto-Response-Suppress)"
    precedence = header(msg, "Precedence").lower()
    if precedence in {"bulk", "junk", "list", "auto_reply"}:
        return f"Precedence: {precedence}"
    if header(msg, "List-Id") or header(msg, "List-Unsubscribe"):
        return "mailing list (List-Id / List-Unsubscribe)"
    if header(msg, "Return-Path") == "<>":
        return "null envelope sender (Return-Path: <>): a bounce or report"
    local = "".join(a for _, a in _mailboxes(msg, "From")[:1]).partition("@")[0].lower()
    if local in _MAIL_SYSTEMS:
        return f"sent by a mail system ({local})"
    return ""


def bounce_of(msg: EmailMessage) -> Bounce | None:
    """A delivery status notification (RFC 3464, multipart/report; report-type=delivery-status) that
    says a mail failed: the Message-IDs of the mails it returns, and the diagnostic. A report that
    only says "delayed" (still being retried), "delivered" or "relayed" is not a bounce."""
    if msg.get_content_type() != "multipart/report":
        return None
    if str(msg.get_param("report-type", "")).lower() != "delivery-status":
        return None
    ids: list[str] = []
    reasons: list[str] = []
    actions: list[str] = []
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype in {"message/delivery-status", "message/global-delivery-status"}:
            blocks = part.get_payload()
            for block in blocks if isinstance(blocks, list) else []:
                if not isinstance(block, Message):
                    continue  # the blocks of a delivery-status part are header blocks
                action = header(block, "Action").lower()
                if not action:
                    continue  # the per-message block (Reporting-MTA, Arrival-Date)
                actions.append(action)
                if action != "failed":
                    continue
                recipient = header(block, "Final-Recipient").partition(";")[2].strip()
                details = [header(block, "Status"), header(block, "Diagnostic-Code")]
                text = " ".join(t for t in details if t)
                reasons.append(f"{recipient}: {text}" if recipient else text)
        elif ctype in {"message/rfc822", "message/global", "text/rfc822-headers", "message/rfc822-headers"}:
            original = part.get_payload()
            if isinstance(original, list) and original and isinstance(original[0], Message):
                ids.extend(message_ids(header(original[0], "Message-ID")))
            else:
                text = original if isinstance(original, str) else decoded_text(part)
                headers = email.message_from_string(text, policy=policy.default)
                ids.extend(message_ids(header(headers, "Message-ID")))
    if actions and "failed" not in actions:
        return None
    if not ids:  # no returned headers: Exchange and others name our mail as the one they answer
        ids = message_ids(header(msg, "In-Reply-To"))
    return Bounce(message_ids=tuple(dict.fromkeys(ids))[:50], reason="; ".join(reasons)[:2000])


# --- attachments and the body --------------------------------------------------------------------

# The machine-readable parts of a delivery or read report.
_REPORT_PARTS = {
    "message/delivery-status",
    "message/global-delivery-status",
    "message/disposition-notification",
    "text/rfc822-headers",
    "message/rfc822-headers",
}
# Parts that sign or wrap a mail rather than being something the customer sent.
_NOT_CONTENT = {
    "application/pkcs7-signature",
    "application/x-pkcs7-signature",
    "application/pgp-signature",
    "application/pgp-encrypted",
}


def _leaves(part: Message):
    """The leaf parts of a mail, in order; an attached mail (message/rfc822) is one leaf."""
    if part.get_content_maintype() == "multipart":
        for sub in part.get_payload():
            if isinstance(sub, Message):
                yield from _leaves(sub)
    else:
        yield part


def _is_body_text(part: Message) -> bool:
    """Text written into the mail (the plain or HTML body, its alternatives and continuations), as
    opposed to a file attached to it."""
    return (
        part.get_content_type() in {"text/plain", "text/html"}
        and part.get_content_disposition() != "attachment"
        and not part.get_filename()
    )


def _attachments(msg: EmailMessage) -> list[Attachment]:
    """Every file in the mail, inline ones too (a screenshot pasted into Outlook is a cid: image in
    multipart/related: exactly what support needs to see)."""
    found = []
    for part in _leaves(msg):
        if _is_body_text(part) or part.get_content_type() in _NOT_CONTENT:
            continue
        if part.get_content_type() in _REPORT_PARTS:
            continue
        try:
            if part.get_content_maintype() == "message":
                inner = part.get_payload()
                data = inner[0].as_bytes() if isinstance(inner, list) and inner else b""
            else:
                data = part.get_payload(decode=True) or b""
        except Exception:  # a broken transfer encoding: the file stays in the kept .eml
            logger.info("Unreadable attachment in a received mail", exc_info=True)
            continue
        name = clean_text(part.get_filename() or "")
        if not name and part.get_content_maintype() == "message":
            name = "attached-mail.eml"
        found.append(Attachment(name=name, content_type=part.get_content_type(), data=data))
    return found


def _parent(msg: Message, child: Message) -> Message | None:
    for part in msg.walk():
        if part.is_multipart() and any(sub is child for sub in part.get_payload() or ()):
            return part
    return None


def _body(msg: EmailMessage, preferencelist: tuple[str, ...]) -> Message | None:
    """``get_body``, which raises on a multipart part without parts (a truncated mail); then the
    first text part written into the mail."""
    try:
        return msg.get_body(preferencelist=preferencelist)
    except Exception:
        subtypes = {"plain", "html"} & set(preferencelist)
        return next(
            (p for p in _leaves(msg) if _is_body_text(p) and p.get_content_subtype() in subtypes), None
        )


def body_text(msg: EmailMessage) -> tuple[str, bool]:
    """The readable text of a mail and whether it came from HTML (an HTML-only mail). A blank plain
    part (some clients send one next to the HTML) gives way to the HTML; the text parts that Apple
    Mail writes around an inline image (text, image, text) are read as one text."""
    part = _body(msg, ("plain", "html"))
    if part is None:
        return "", False
    if part.get_content_subtype() == "plain":
        parent = _parent(msg, part)
        if parent is not None and parent.get_content_subtype() == "mixed":
            texts = [
                decoded_text(p)
                for p in parent.iter_parts()  # type: ignore[attr-defined]
                if p.get_content_type() == "text/plain" and _is_body_text(p)
            ]
            text = "\n".join(texts)
        else:
            text = decoded_text(part)
        if text.strip():
            return text, False
        part = _body(msg, ("html",))
        if part is None:
            return "", False
    return html_to_text(decoded_text(part)), True


_ENCODED_RUN = re.compile(r"(?:=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=)+")


def _name_from_raw(msg: Message, name: str) -> str:
    """A display name the email package decoded with its own codec for the label and lost bytes of
    (Windows' ① in "Shift_JIS"): decoded again from the raw header, as body text is."""
    joined = _raw(msg, "From")

    def quoted(match: re.Match) -> str:
        text = decode_words(match.group(0)).replace("\\", "\\\\").replace('"', '\\"')
        return f'"{text}"'

    found = getaddresses([_ENCODED_RUN.sub(quoted, joined)])
    return found[0][0] if found and found[0][0] else name


def sender(msg: Message) -> tuple[str, str]:
    """(display name, lower-case address) of the mail's From; ("", "") when it has none we can use."""
    name, address = next(iter(_mailboxes(msg, "From")), ("", ""))
    address = clean_text(address).strip().strip("<>").lower()
    if "@" not in address or len(address) > ADDRESS_LIMIT:
        address = ""
    if _lost_bytes(name):
        name = _name_from_raw(msg, name)
    return " ".join(clean_text(decode_words(name)).split())[:200], address


def parse(raw: bytes) -> ParsedMail:
    msg = message_from_bytes(raw)
    from_name, from_address = sender(msg)
    text, html_only = body_text(msg)
    text = _normalise(text)[:BODY_LIMIT]
    return ParsedMail(
        message_id=first_message_id(msg),
        subject=header(msg, "Subject")[:500],
        from_name=from_name,
        from_address=from_address,
        to=_addresses(msg, "To"),
        cc=_addresses(msg, "Cc"),
        names=_display_names(msg, "To", "Cc"),
        recipients=_addresses(msg, "To", "Cc", "Delivered-To", "X-Original-To", "Envelope-To"),
        in_reply_to=message_ids(header(msg, "In-Reply-To"))[:10],
        references=message_ids(header(msg, "References"))[-50:],
        text=text,
        visible_text=visible_part(text) if text else "",
        html_only=html_only,
        attachments=_attachments(msg),
        auto_reason=auto_reply_reason(msg),
        bounce=bounce_of(msg),
    )
