"""Fetching a mailbox's mail from its IMAP server (imapclient), for ``polling.poll``.

A poll connects (IMAPS, STARTTLS, or plain text for local test servers) with
``INBOUND_IMAP_TIMEOUT`` on every socket operation, logs in, selects the mailbox's folder and takes
at most ``limit`` of its oldest mails in small batches, until ``budget_seconds`` have passed; the
next poll carries on. Each mail is fetched with ``BODY.PEEK[]`` (nothing is marked seen), recorded
with ``services.receive``, and only once that returned moved to the processed folder (MOVE when the
server has it, else COPY, ``\\Deleted`` and EXPUNGE). A crash in between leaves the mail where it
was; the next poll fetches it again and ``receive`` knows it already.

Memory is bounded: the server's RFC822.SIZE is read first; a mail bigger than ``max_bytes()`` is
not downloaded (only the start of its header block is, to record it as refused, and the mail itself
stays on the server, in the processed folder), and one batch holds at most ``max_bytes()`` of mail.
"""

from __future__ import annotations

import datetime as dt
import logging
import socket
import ssl
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass

from django.conf import settings
from imapclient import IMAPClient, SocketTimeout
from imapclient.exceptions import CapabilityError, IMAPClientError, LoginError

from .models import ImapSecurity, Mailbox, max_bytes
from .services import receive

logger = logging.getLogger(__name__)

FETCH_BATCH = 10  # mails per FETCH of whole messages
HEADER_BYTES = 256 * 1024  # what is downloaded of a mail too big to accept: the start of its header
WHOLE = b"BODY[]"
HEADER = b"BODY[HEADER]<0>"


def imap_timeout() -> float:
    return float(getattr(settings, "INBOUND_IMAP_TIMEOUT", 30))


def port_of(mailbox: Mailbox) -> int:
    if mailbox.imap_port:
        return mailbox.imap_port
    return 993 if mailbox.imap_security == ImapSecurity.SSL else 143


_SECURITY_WORDS: dict[str, str] = {
    ImapSecurity.SSL: "TLS",
    ImapSecurity.STARTTLS: "STARTTLS",
    ImapSecurity.PLAIN: "unencrypted",
}


def _where(mailbox: Mailbox) -> str:
    words = _SECURITY_WORDS.get(mailbox.imap_security, mailbox.imap_security)
    return f"{mailbox.imap_host}:{port_of(mailbox)} ({words})"


@contextmanager
def connection(mailbox: Mailbox) -> Iterator[IMAPClient]:
    """A logged-in client, logged out (or its socket closed) at the end, whatever happened."""
    if not mailbox.imap_host:
        raise ValueError(f"Mailbox {mailbox.name} has no IMAP host.")
    security = mailbox.imap_security
    timeout = imap_timeout()
    context = ssl.create_default_context()  # verifies the certificate and the host name
    client = IMAPClient(
        mailbox.imap_host,
        port=port_of(mailbox),
        ssl=security == ImapSecurity.SSL,
        ssl_context=context if security == ImapSecurity.SSL else None,
        timeout=SocketTimeout(connect=timeout, read=timeout),
    )
    try:
        if security == ImapSecurity.STARTTLS:
            # Without STARTTLS on offer this raises: never fall back to sending the password in clear.
            client.starttls(context)
        client.login(mailbox.imap_username, mailbox.imap_password)
        yield client
    finally:
        try:
            client.logout()
        except Exception:  # a connection already broken (the error being raised says why)
            with suppress(Exception):
                client.shutdown()


def server_name(client: IMAPClient, name: str) -> str:
    """A folder name as this server spells it: "/" between levels (how the admin writes it) becomes
    the server's hierarchy delimiter, under the personal namespace's prefix (``INBOX.`` on some)."""
    name = name.strip()
    if name.upper() == "INBOX":
        return "INBOX"
    prefix, delimiter = "", "/"
    if client.has_capability("NAMESPACE"):
        personal = client.namespace().personal
        if personal:
            prefix, delimiter = personal[0]
    else:
        listed = client.list_folders("", "")  # LIST "" "": the root, with the delimiter
        if listed and listed[0][1]:
            found = listed[0][1]
            delimiter = found.decode() if isinstance(found, bytes) else found
    delimiter = delimiter or "/"
    full = delimiter.join(part for part in name.split("/") if part)
    if prefix and not full.startswith(prefix) and not full.upper().startswith("INBOX" + delimiter):
        full = prefix + full
    return full


def folders(client: IMAPClient, mailbox: Mailbox) -> tuple[str, str]:
    """(the folder polled, the processed folder) in the server's spelling."""
    source = server_name(client, mailbox.imap_folder)
    processed = server_name(client, mailbox.processed_folder)
    if processed == source:  # every poll would fetch the same mail again, forever
        raise ValueError(f"the processed folder must not be the folder polled ({source})")
    return source, processed


def _ensure_folder(client: IMAPClient, folder: str) -> None:
    if client.folder_exists(folder):
        return
    try:
        client.create_folder(folder)
    except IMAPClientError:
        if not client.folder_exists(folder):  # not "another poller created it meanwhile"
            raise
    with suppress(IMAPClientError):  # so that the people reading the mailbox see it too
        client.subscribe_folder(folder)


def _move_now(client: IMAPClient, uids: Sequence[int], folder: str) -> None:
    if client.has_capability("MOVE"):
        client.move(uids, folder)
        return
    client.copy(uids, folder)
    client.delete_messages(uids, silent=True)
    if client.has_capability("UIDPLUS"):
        client.uid_expunge(uids)
    else:  # RFC 3501 EXPUNGE: every \Deleted mail of the folder (it is SupportDesk's mailbox)
        client.expunge()


def _move(client: IMAPClient, uids: Sequence[int], folder: str) -> None:
    if not uids:
        return
    try:
        _move_now(client, uids, folder)
    except IMAPClientError as error:
        # Some of them were expunged meanwhile (a person's mail client, or an overlapping poll
        # that moved them first, RFC 5530): move those that are still here.
        if "EXPUNGEISSUED" not in str(error).upper():
            raise
        client.noop()
        left = sorted(client.fetch(uids, ["FLAGS"]))
        if left:
            _move_now(client, left, folder)


@dataclass(frozen=True)
class _Waiting:
    uid: int
    size: int


def _waiting(client: IMAPClient, exists: int, limit: int) -> list[_Waiting]:
    """The oldest ``limit`` mails of the selected folder not flagged ``\\Deleted``, with their sizes.

    Asked by sequence number (1..limit), not with a SEARCH, whose one-line answer would grow with
    the size of the folder."""
    count = min(exists, limit)
    if count <= 0:
        return []
    client.use_uid = False
    try:
        found = client.fetch(list(range(1, count + 1)), ["UID", "FLAGS", "RFC822.SIZE"])
    finally:
        client.use_uid = True
    waiting = [
        _Waiting(uid=int(data[b"UID"]), size=int(data.get(b"RFC822.SIZE") or 0))
        for _, data in sorted(found.items())
        if b"UID" in data and b"\\Deleted" not in data.get(b"FLAGS", ())
    ]
    return waiting


def _batches(waiting: list[_Waiting], *, cap: int) -> Iterator[tuple[list[_Waiting], list[_Waiting]]]:
    """(whole, too big) groups of at most FETCH_BATCH mails and ``cap`` bytes of whole mails."""
    whole: list[_Waiting] = []
    big: list[_Waiting] = []
    held = 0
    for item in waiting:
        if item.size > cap:
            big.append(item)
        else:
            if whole and held + item.size > cap:
                yield whole, big
                whole, big, held = [], [], 0
            whole.append(item)
            held += item.size
        if len(whole) + len(big) >= FETCH_BATCH:
            yield whole, big
            whole, big, held = [], [], 0
    if whole or big:
        yield whole, big


def poll_imap(mailbox: Mailbox, *, now: dt.datetime, limit: int, budget_seconds: float) -> tuple[int, int]:
    """Record what waits in the mailbox's IMAP folder and move it to the processed folder; returns
    (mails fetched, mails recorded for the first time). Raises when the server cannot be used."""
    started = time.monotonic()
    fetched = recorded = 0
    cap = max_bytes()
    with connection(mailbox) as client:
        source, processed = folders(client, mailbox)
        selected = client.select_folder(source)
        waiting = _waiting(client, int(selected.get(b"EXISTS", 0)), limit)
        if not waiting:
            return 0, 0
        _ensure_folder(client, processed)
        for whole, big in _batches(waiting, cap=cap):
            if time.monotonic() - started >= budget_seconds:
                break
            mails = client.fetch([w.uid for w in whole], ["BODY.PEEK[]"]) if whole else {}
            heads = (
                client.fetch([w.uid for w in big], [f"BODY.PEEK[HEADER]<0.{HEADER_BYTES}>"]) if big else {}
            )
            done: list[int] = []
            try:
                for item in sorted([*whole, *big], key=lambda w: w.uid):
                    data = mails.get(item.uid) or heads.get(item.uid) or {}
                    raw = data.get(WHOLE, data.get(HEADER))
                    if raw is None:  # expunged by someone else since we listed it
                        continue
                    fetched += 1
                    received = receive(mailbox, bytes(raw), now=now, via="imap", declared_size=item.size)
                    recorded += int(received.created)
                    done.append(item.uid)
            except BaseException:
                # What was recorded leaves the folder even so; the rest stays for the next poll.
                with suppress(Exception):
                    _move(client, done, processed)
                raise
            _move(client, done, processed)
    return fetched, recorded


def _describe(error: BaseException) -> str:
    """What went wrong, for an admin (never with the password: no message here contains it)."""
    if isinstance(error, LoginError):
        return f"the server refused the login ({_server_text(error)})"
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"the server's TLS certificate was not accepted ({error.verify_message or error.reason})"
    if isinstance(error, ssl.SSLError):
        return f"TLS failed ({error.reason or error})"
    if isinstance(error, CapabilityError):
        return f"the server does not offer what is needed ({error})"
    if isinstance(error, TimeoutError | socket.timeout):
        return f"no answer within {imap_timeout():g} s"
    if isinstance(error, socket.gaierror):
        return "the host name could not be resolved"
    if isinstance(error, ConnectionRefusedError):
        return "the connection was refused (is the port right?)"
    if isinstance(error, ValueError):  # the mailbox's own settings
        return str(error)
    return f"{type(error).__name__}: {_server_text(error)}"


def _server_text(error: BaseException) -> str:
    text = str(error)
    if text.startswith(("b'", 'b"')) and text.endswith(("'", '"')):
        text = text[2:-1]
    return " ".join(text.split())[:500]


def check_connection(mailbox: Mailbox) -> str:
    """Connect and log in as a poll would and look at both folders, changing nothing; a sentence
    for the admin that starts with "Connected" when the mailbox can be polled. Never raises for a
    server problem: the sentence says what it was."""
    where = _where(mailbox)
    user = mailbox.imap_username or "(no user name)"
    try:
        with connection(mailbox) as client:
            source, processed = folders(client, mailbox)
            if not client.folder_exists(source):
                return f"Connected to {where} as {user}, but there is no folder {source}."
            status = client.folder_status(source, [b"MESSAGES", b"UNSEEN"])
            processed_state = (
                "exists" if client.folder_exists(processed) else "will be created by the first poll"
            )
            moving = "MOVE" if client.has_capability("MOVE") else "COPY and EXPUNGE (no MOVE)"
    except Exception as error:
        logger.info("IMAP connection check of mailbox %s failed: %s", mailbox.name, _describe(error))
        return f"Could not use {where} as {user}: {_describe(error)}."
    return (
        f"Connected to {where} as {user}. {source} holds {status.get(b'MESSAGES', 0)} mail(s), "
        f"{status.get(b'UNSEEN', 0)} unseen. Processed mail is moved to {processed} "
        f"({processed_state}) with {moving}."
    )
