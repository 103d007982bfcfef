"""What the service and browser suites need, and how to tell that it is missing."""

from __future__ import annotations

import os
import shutil
import socket
from urllib.parse import urlparse

POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
DOVECOT = os.environ.get("DOVECOT_PATH", "/usr/sbin/dovecot")


def services_required() -> bool:
    """The service suite must run here (`make test-services`, .ci/run): a missing service fails."""
    return os.environ.get("REQUIRE_SERVICES", "").lower() == "true"


def _reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection(
            (parsed.hostname or "127.0.0.1", parsed.port or default_port), timeout=1
        ):
            return True
    except OSError:
        return False


def services_missing_reason() -> str | None:
    from django.conf import settings

    missing = []
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        missing.append("the suite is not running on PostgreSQL (set DATABASE_URL)")
    elif not _reachable(POSTGRES_URL, 5432):
        missing.append(f"PostgreSQL is not reachable at {POSTGRES_URL}")
    if not settings.CELERY_BROKER_URL.startswith("redis://"):
        missing.append("the broker is not Redis (set CELERY_BROKER_URL)")
    elif not _reachable(settings.CELERY_BROKER_URL, 6379):
        missing.append(f"Redis is not reachable at {settings.CELERY_BROKER_URL}")
    return "; ".join(missing) or None


def dovecot_missing_reason() -> str | None:
    """The IMAP tests start their own dovecot (Debian's dovecot-imapd)."""
    if not os.access(DOVECOT, os.X_OK):
        return f"dovecot is not installed at {DOVECOT} (apt-get install dovecot-imapd)"
    if not any(os.path.exists(f"{d}/dovecot/imap") for d in ("/usr/lib", "/usr/libexec")):
        return "dovecot's IMAP server is not installed (apt-get install dovecot-imapd)"
    return None


def browser_missing_reason() -> str | None:
    if not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
        return f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed"
    return None
