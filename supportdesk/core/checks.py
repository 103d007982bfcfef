"""``manage.py check --deploy``: the production guards, reported as system checks.

The settings refuse to start production on the single-machine defaults; these checks apply the same
rules (``supportdesk.core.guards``) to the environment, where the start-up guard does not run (the
test suite) and add what it does not stop: DEBUG on, a known weak SECRET_KEY. All are deployment
checks: development (``make run``) and the test suite run on those defaults on purpose.

| id | when |
| --- | --- |
| core.E001 | DATABASE_URL names SQLite, without SUPPORTDESK_ALLOW_SQLITE |
| core.E002 | CELERY_BROKER_URL names the memory broker, or the filesystem one without |
|           | SUPPORTDESK_ALLOW_FILESYSTEM_BROKER |
| core.W003 | DEBUG is on |
| core.E004 | SECRET_KEY is the built-in development key or a documented placeholder |
| core.E005 | DATABASE_URL or CELERY_BROKER_URL is not set in the environment, without the opt-in |
"""

from __future__ import annotations

import os

from django.conf import settings
from django.core import checks

from . import guards

TAG = "supportdesk"
DEVELOPMENT_KEY = "insecure-development-key-do-not-use-in-production"  # noqa: S105 - what to refuse
# Values from our own docs and build files that someone might copy as they are.
PLACEHOLDER_KEYS = {DEVELOPMENT_KEY, "collectstatic-only", "<50+ random characters>", "...", "change-me"}


@checks.register(TAG, deploy=True)
def check_database(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    if settings.DEBUG:
        return []
    url, allow = os.environ.get("DATABASE_URL"), settings.SUPPORTDESK_ALLOW_SQLITE
    found = [
        (guards.missing_database(url=url, allow_sqlite=allow), "core.E005"),
        (guards.sqlite_database(url=url, allow_sqlite=allow), "core.E001"),
    ]
    return [checks.Error(message, id=check_id) for message, check_id in found if message]


@checks.register(TAG, deploy=True)
def check_broker(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    if settings.DEBUG:
        return []
    url, allow = os.environ.get("CELERY_BROKER_URL"), settings.SUPPORTDESK_ALLOW_FILESYSTEM_BROKER
    found = [
        (guards.missing_broker(url=url, allow_filesystem=allow), "core.E005"),
        (guards.local_broker(url=url, allow_filesystem=allow), "core.E002"),
    ]
    return [checks.Error(message, id=check_id) for message, check_id in found if message]


@checks.register(TAG, deploy=True)
def check_debug(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    if not settings.DEBUG:
        return []
    return [
        checks.Warning(
            "DEBUG is on: tracebacks are shown to visitors, and the SQLite file, the filesystem "
            "broker and file e-mail are used unless configured.",
            hint="Set DEBUG=false in production.",
            id="core.W003",
        )
    ]


@checks.register(TAG, deploy=True)
def check_secret_key(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    if settings.SECRET_KEY.strip() not in PLACEHOLDER_KEYS:
        return []  # length and variety: Django's own security.W009
    return [
        checks.Error(
            "SECRET_KEY is the development key or a placeholder from the documentation: anyone can "
            "forge sessions, password-reset links and signed values with it.",
            hint='Set SECRET_KEY to 50 or more random characters, e.g. python -c "import secrets; '
            'print(secrets.token_urlsafe(50))".',
            id="core.E004",
        )
    ]
