"""A real IMAP server for the tests: Debian's dovecot (dovecot-imapd, which .ci/run installs), one
per test, with its own generated configuration and its runtime, state, log and maildir storage in a
temporary folder, on a free local port; plain-text login (or STARTTLS/IMAPS with a throwaway
certificate). A system-wide dovecot does not matter: nothing here reads /etc/dovecot, uses its
port or its base_dir.

Without dovecot the tests that use it are skipped, except where the service suite is required
(REQUIRE_SERVICES=true): there it is a failure, as for PostgreSQL and Redis.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

import pytest
from imapclient import IMAPClient

from tests.infra import DOVECOT, dovecot_missing_reason, services_required

USERNAME = "support@help.acme.example"
PASSWORD = "imap-pw \"with' quotes"  # noqa: S105 - a test account of a throwaway server

# Dovecot 2.3's capabilities after login, without MOVE and UIDPLUS: an older or simpler server.
WITHOUT_MOVE = (
    "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT THREAD=REFERENCES MULTIAPPEND UNSELECT "
    "CHILDREN NAMESPACE LIST-EXTENDED I18NLEVEL=1 ESEARCH SEARCHRES WITHIN LITERAL+"
)


def customer_mail(
    *,
    subject: str,
    body: str,
    message_id: str,
    sender: str = "Carla Customer <carla@acme.example>",
    to: str = "Acme Support <support@help.acme.example>",
    in_reply_to: str = "",
    references: str = "",
) -> bytes:
    """A customer's mail as a mail client (Thunderbird) sends it, CRLF line ends as on the wire."""
    from email.message import EmailMessage
    from email.utils import format_datetime

    from django.utils import timezone

    msg = EmailMessage()
    msg["Message-ID"] = message_id
    msg["Date"] = format_datetime(timezone.now())
    msg["MIME-Version"] = "1.0"
    msg["User-Agent"] = "Mozilla Thunderbird"
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
    if references:
        msg["References"] = references
    msg.set_content(body)
    return msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _users() -> tuple[str, str, int, int]:
    """(login user, internal user, uid and gid of the mail) for dovecot's processes. Root (CI)
    cannot own mail (dovecot refuses UID 0): the package's own unprivileged users then; anyone
    else runs everything as themselves."""
    if os.geteuid() != 0:
        me = pwd.getpwuid(os.geteuid())
        return me.pw_name, me.pw_name, me.pw_uid, me.pw_gid
    found = {}
    for name in ("dovenull", "dovecot", "nobody"):
        with suppress(KeyError):
            found[name] = pwd.getpwnam(name)
    internal = found.get("dovecot") or found.get("nobody")
    if internal is None:
        raise RuntimeError("no unprivileged user to run dovecot's processes as")
    login = found.get("dovenull") or internal
    return login.pw_name, internal.pw_name, internal.pw_uid, internal.pw_gid


@dataclass
class Dovecot:
    root: Path
    port: int
    tls_port: int | None
    cert: Path | None
    proc: subprocess.Popen
    host: str = "127.0.0.1"
    username: str = USERNAME
    password: str = PASSWORD

    def client(self) -> IMAPClient:
        """A plain-text connection as the mailbox's user (how the tests deliver and inspect mail)."""
        client = IMAPClient(self.host, port=self.port, ssl=False, timeout=10)
        if self.cert is not None:
            import ssl

            client.starttls(ssl.create_default_context(cafile=str(self.cert)))
        client.login(self.username, self.password)
        return client

    def deliver(self, raw: bytes, folder: str = "INBOX") -> None:
        """Put a mail into a folder as the mail server's delivery would (IMAP APPEND)."""
        with self.client() as client:
            client.append(folder, raw)

    def messages(self, folder: str = "INBOX") -> list[bytes]:
        """The mails of a folder (without marking them seen); [] when the folder does not exist."""
        with self.client() as client:
            if not client.folder_exists(folder):
                return []
            client.select_folder(folder, readonly=True)
            uids = client.search("ALL")
            fetched = client.fetch(uids, ["BODY.PEEK[]"]) if uids else {}
            return [fetched[uid][b"BODY[]"] for uid in sorted(fetched)]

    def flags(self, folder: str = "INBOX") -> list[tuple[bytes, ...]]:
        with self.client() as client:
            client.select_folder(folder, readonly=True)
            uids = client.search("ALL")
            fetched = client.fetch(uids, ["FLAGS"]) if uids else {}
            return [tuple(fetched[uid][b"FLAGS"]) for uid in sorted(fetched)]

    def folders(self) -> list[str]:
        with self.client() as client:
            return sorted(name for _, _, name in client.list_folders())

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def mailbox_fields(self, **overrides) -> dict:
        """The IMAP fields of an ``inbound.models.Mailbox`` that reads this server."""
        return {
            "mode": "imap",
            "imap_host": self.host,
            "imap_port": self.port,
            "imap_security": "plain",
            "imap_username": self.username,
            "imap_password": self.password,
            "imap_folder": "INBOX",
            "processed_folder": "SupportDesk/Processed",
            **overrides,
        }

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _certificate(root: Path) -> tuple[Path, Path]:
    """A throwaway self-signed certificate for localhost and 127.0.0.1."""
    cert, key = root / "cert.pem", root / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


def _config(root: Path, *, port: int, tls_port: int | None, cert, key, capabilities: str | None) -> str:
    login, internal, _, gid = _users()
    lines = [
        f"base_dir = {root}/run",
        f"state_dir = {root}/state",
        f"log_path = {root}/dovecot.log",
        "protocols = imap",
        "listen = 127.0.0.1",
        f"default_login_user = {login}",
        f"default_internal_user = {internal}",
        f"default_internal_group = {grp.getgrgid(gid).gr_name}",
        # The mail belongs to an unprivileged system user (dovecot's default minimum is 500).
        "first_valid_uid = 1",
        "first_valid_gid = 1",
        "auth_mechanisms = plain login",
        "auth_failure_delay = 0",
        f"mail_location = maildir:{root}/mail/%n",
        "passdb {",
        "  driver = passwd-file",
        f"  args = scheme=PLAIN username_format=%u {root}/users",
        "}",
        "userdb {",
        "  driver = passwd-file",
        f"  args = username_format=%u {root}/users",
        "}",
        # No chroot: a non-root master cannot chroot, and this server is a test's.
        "service imap-login {",
        "  chroot =",
        "  inet_listener imap {",
        "    address = 127.0.0.1",
        f"    port = {port}",
        "  }",
        "  inet_listener imaps {",
        f"    port = {tls_port or 0}",
        *(["    ssl = yes"] if tls_port else []),
        "  }",
        "}",
        "service anvil {",
        "  chroot =",
        "}",
    ]
    if cert is not None:
        lines += [
            "ssl = required",
            f"ssl_cert = <{cert}",
            f"ssl_key = <{key}",
            "disable_plaintext_auth = yes",
        ]
    else:
        lines += ["ssl = no", "disable_plaintext_auth = no"]
    if capabilities:
        lines.append(f"imap_capability = {capabilities}")
    return "\n".join(lines) + "\n"


def start_dovecot(*, tls: bool = False, capabilities: str | None = None) -> Dovecot:
    """Start a private dovecot and wait (bounded) until it answers; the caller stops it."""
    # Not under pytest's tmp_path: dovecot's unprivileged processes must reach this folder.
    root = Path(tempfile.mkdtemp(prefix="supportdesk-dovecot-"))
    root.chmod(0o755)
    _, _, uid, gid = _users()
    for sub in ("run", "state", "mail"):
        (root / sub).mkdir()
    os.chown(root / "mail", uid, gid)
    cert = key = None
    if tls:
        cert, key = _certificate(root)
    (root / "users").write_text(f"{USERNAME}:{{PLAIN}}{PASSWORD}:{uid}:{gid}::{root}/mail/support\n")
    port = _free_port()
    tls_port = _free_port() if tls else None
    (root / "dovecot.conf").write_text(
        _config(root, port=port, tls_port=tls_port, cert=cert, key=key, capabilities=capabilities)
    )
    proc = subprocess.Popen(
        [DOVECOT, "-F", "-c", str(root / "dovecot.conf")],
        stdout=subprocess.DEVNULL,
        stderr=open(root / "stderr.log", "wb"),  # noqa: SIM115 - closed with the process
    )
    server = Dovecot(root=root, port=port, tls_port=tls_port, cert=cert, proc=proc)
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                if sock.recv(64).startswith(b"* OK"):
                    return server
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            server.stop()
            detail = (root / "stderr.log").read_text(errors="replace") + server.log()
            shutil.rmtree(root, ignore_errors=True)
            raise RuntimeError(f"dovecot did not start:\n{detail}")
        time.sleep(0.1)


def _require_dovecot() -> None:
    reason = dovecot_missing_reason()
    if reason is None:
        return
    if services_required():
        pytest.fail(f"the IMAP tests are required here but cannot run: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture
def make_dovecot() -> Iterator[Callable[..., Dovecot]]:
    """Start private dovecot servers (``tls=``, ``capabilities=``); all are stopped at the end."""
    _require_dovecot()
    started: list[Dovecot] = []

    def make(**options) -> Dovecot:
        server = start_dovecot(**options)
        started.append(server)
        return server

    try:
        yield make
    finally:
        for server in started:
            server.stop()
            shutil.rmtree(server.root, ignore_errors=True)


@pytest.fixture
def dovecot(make_dovecot) -> Dovecot:
    """A private plain-text IMAP server with one mailbox user."""
    return make_dovecot()
