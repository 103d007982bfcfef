"""What production must not run on by accident: the rules behind the settings' start-up guard and
the ``core`` system checks (one place for both; pure, no Django).

The single-machine defaults (a SQLite file and the filesystem broker under ``var/``) make
``make run`` work with nothing but Python. In production they would silently keep every case on
one disk and every task on one machine, so with ``DEBUG=false`` the database and the broker must be
named explicitly, or a single-machine install opts in to those defaults.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

ALLOW_SQLITE = "SUPPORTDESK_ALLOW_SQLITE"
ALLOW_FILESYSTEM_BROKER = "SUPPORTDESK_ALLOW_FILESYSTEM_BROKER"

SQLITE_SCHEMES = {"sqlite", "spatialite"}
SQLITE_IN_PRODUCTION = (
    "DATABASE_URL points at SQLite, which serves one machine only. Use PostgreSQL "
    f"(postgres://USER:PASSWORD@HOST:5432/supportdesk), or set {ALLOW_SQLITE}=true "
    "for a single-machine install."
)


def _scheme(url: str) -> str:
    return urlsplit(url.strip()).scheme.lower()


def missing_database(*, url: str | None, allow_sqlite: bool) -> str | None:
    """A message when ``DATABASE_URL`` is not set and the SQLite default is not opted in to."""
    if url is not None or allow_sqlite:
        return None
    return (
        "DATABASE_URL is not set, so production would run on the SQLite file under var/. "
        "Set DATABASE_URL=postgres://USER:PASSWORD@HOST:5432/supportdesk, or "
        f"{ALLOW_SQLITE}=true for a single-machine install."
    )


def sqlite_database(*, url: str | None, allow_sqlite: bool) -> str | None:
    """A message when ``DATABASE_URL`` names SQLite and SQLite is not opted in to."""
    if url is None or allow_sqlite or _scheme(url) not in SQLITE_SCHEMES:
        return None
    return SQLITE_IN_PRODUCTION


def missing_broker(*, url: str | None, allow_filesystem: bool) -> str | None:
    """A message when ``CELERY_BROKER_URL`` is not set and the filesystem default is not opted in to."""
    if url is not None or allow_filesystem:
        return None
    return (
        "CELERY_BROKER_URL is not set, so production would queue tasks in the filesystem broker "
        "under var/broker/, which only workers on the same machine see. Set "
        f"CELERY_BROKER_URL=redis://HOST:6379/0, or {ALLOW_FILESYSTEM_BROKER}=true for a "
        "single-machine install."
    )


def local_broker(*, url: str | None, allow_filesystem: bool) -> str | None:
    """A message when ``CELERY_BROKER_URL`` names the filesystem (not opted in to) or memory broker."""
    if url is None:
        return None
    scheme = _scheme(url)
    if scheme == "memory":
        return (
            "CELERY_BROKER_URL=memory:// keeps each task inside the process that sent it: no worker "
            "ever runs it. Use Redis (redis://HOST:6379/0)."
        )
    if scheme == "filesystem" and not allow_filesystem:
        return (
            "CELERY_BROKER_URL names the filesystem broker, which only workers on the same machine "
            f"see. Use Redis (redis://HOST:6379/0), or set {ALLOW_FILESYSTEM_BROKER}=true for a "
            "single-machine install."
        )
    return None


def production_problems(
    environ: Mapping[str, str], *, allow_sqlite: bool, allow_filesystem: bool
) -> list[str]:
    """Every reason the environment ``environ`` (``os.environ``) must not start in production."""
    database_url = environ.get("DATABASE_URL")
    broker_url = environ.get("CELERY_BROKER_URL")
    found = [
        missing_database(url=database_url, allow_sqlite=allow_sqlite),
        sqlite_database(url=database_url, allow_sqlite=allow_sqlite),
        missing_broker(url=broker_url, allow_filesystem=allow_filesystem),
        local_broker(url=broker_url, allow_filesystem=allow_filesystem),
    ]
    return [message for message in found if message]
