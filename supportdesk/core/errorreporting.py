"""Optional error reporting to Sentry (or a Sentry-compatible service), enabled by SENTRY_DSN.

Called from settings, so web processes, workers and beat all report; without a DSN nothing of
Sentry's is initialised and nothing leaves the process.
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured


def sample_rate(value: str | None, *, name: str) -> float:
    """A sampling ratio from the environment: a number from 0 to 1 (empty means 0)."""
    if value is None or not value.strip():
        return 0.0
    try:
        rate = float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number from 0 to 1, not “{value}”.") from None
    if not 0.0 <= rate <= 1.0:
        raise ImproperlyConfigured(f"{name} must be a number from 0 to 1, not “{value}”.")
    return rate


def init_sentry(*, dsn: str, environment: str, traces_sample_rate: float, release: str = "") -> bool:
    """Start Sentry's SDK with the Django and Celery integrations if ``dsn`` is set; True if started.

    No personal data is sent (``send_default_pii=False``): no cookies, no user e-mail or IP; an event
    names the request id, which the logs hold too.
    """
    if not dsn.strip():
        return False
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.django import DjangoIntegration
    from sentry_sdk.utils import BadDsn

    try:
        sentry_sdk.init(
            dsn=dsn.strip(),
            environment=environment or None,
            release=release or None,
            traces_sample_rate=traces_sample_rate,
            send_default_pii=False,
            integrations=[DjangoIntegration(), CeleryIntegration()],
        )
    except BadDsn as exc:
        raise ImproperlyConfigured(f"SENTRY_DSN is not a valid DSN: {exc}") from None
    return True
