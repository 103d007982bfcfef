"""SupportDesk settings: one module, configured from environment variables.

The defaults run the whole product on one machine with nothing but Python: a SQLite file and a
filesystem Celery broker under ``var/``. Production sets the variables documented in the README.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import os
import sys
from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from csp.constants import NONCE as CSP_NONCE
from csp.constants import NONE as CSP_NONE
from csp.constants import SELF as CSP_SELF
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

from supportdesk.core import guards

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("SUPPORTDESK_VAR_DIR", BASE_DIR / "var"))
# Local state (the default SQLite file, broker folders, mail) lives here; a fresh clone has none yet.
# (In a read-only image the folder may not be creatable; everything is then configured elsewhere.)
with contextlib.suppress(OSError):
    VAR_DIR.mkdir(parents=True, exist_ok=True)


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)
TESTING = "pytest" in sys.modules
# No production secret is defaulted: without SECRET_KEY only DEBUG (development) may start.
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    # The test suite (pytest) and development (DEBUG) may use a throwaway key; production may not.
    if not DEBUG and not TESTING and not env_bool("SUPPORTDESK_ALLOW_INSECURE_KEY", False):
        raise RuntimeError("SECRET_KEY must be set (or DEBUG=true for development).")
    SECRET_KEY = "insecure-development-key-do-not-use-in-production"  # noqa: S105

# --- Production guards ------------------------------------------------------------------------
# With DEBUG=false the database and the broker are named explicitly, or a single-machine install opts
# in to the SQLite file / filesystem broker defaults (rules: supportdesk.core.guards; reported again
# by `manage.py check --deploy`). The test suite configures its own and is not guarded.
SUPPORTDESK_ALLOW_SQLITE = env_bool(guards.ALLOW_SQLITE, False)
SUPPORTDESK_ALLOW_FILESYSTEM_BROKER = env_bool(guards.ALLOW_FILESYSTEM_BROKER, False)
if not DEBUG and not TESTING:
    _problems = guards.production_problems(
        os.environ,
        allow_sqlite=SUPPORTDESK_ALLOW_SQLITE,
        allow_filesystem=SUPPORTDESK_ALLOW_FILESYSTEM_BROKER,
    )
    if _problems:
        raise ImproperlyConfigured(
            "SupportDesk refuses to start in production (DEBUG=false):\n"
            + "\n".join(f"- {problem}" for problem in _problems)
            + "\n(DEBUG=true runs the development defaults.)"
        )

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
SITE_URL = os.environ.get("SITE_URL", "http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    # Not used for authentication any more (knox below, tokens hashed at rest); kept installed so
    # core's migration 0006 can read the old plaintext tokens it converts.
    "rest_framework.authtoken",
    "knox",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "supportdesk.core",
    "cases",
    "sla",
    "escalations",
    "knowledge",
    "metrics",
    "imports",
    "inbound",
    "incidents",
    "anymail",
    "axes",
    "csp",
    # The configuration audit trail (supportdesk.core.audit): a history table per tracked model.
    "simple_history",
]

MIDDLEWARE = [
    # First: the request id and access line cover every answer, /healthz and metric scrapes too.
    "supportdesk.core.logcontext.RequestContextMiddleware",
    "supportdesk.core.prometheus.OpsMetricsMiddleware",
    "supportdesk.core.middleware.HealthCheckMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Lets the configuration audit trail name who changed a setting (after authentication).
    "simple_history.middleware.HistoryRequestMiddleware",
    "supportdesk.core.middleware.ViewerTimezoneMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last: refuses a login from a locked-out account or address (django-axes).
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "supportdesk.urls"
WSGI_APPLICATION = "supportdesk.wsgi.application"
ASGI_APPLICATION = "supportdesk.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "supportdesk.core.context_processors.roles",
            ],
        },
    },
]

# Connections one dashboard request may use at once for its figures on PostgreSQL (1: in order).
METRICS_QUERY_THREADS = int(os.environ.get("METRICS_QUERY_THREADS", "3"))


def _database(url: str) -> dj_database_url.DBConfig:
    """A DATABASES entry for ``url``, with the options of its engine (used for every alias)."""
    conf = dj_database_url.parse(
        url,
        conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", "60")),
        conn_health_checks=True,
    )
    if conf["ENGINE"] == "django.db.backends.sqlite3":
        # Several processes (web, worker, beat) share the file: wait for locks instead of failing,
        # and take the write lock at BEGIN so select_for_update-style sections cannot deadlock.
        conf["OPTIONS"] = {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
        conf["CONN_MAX_AGE"] = 0
    elif conf["ENGINE"] == "django.db.backends.postgresql" and env_bool("DATABASE_POOL", True):
        # Django's connection pool (psycopg 3): a web process's request and its metrics figure
        # threads borrow connections instead of opening new ones. Pooling replaces persistent
        # connections. Behind PgBouncer in transaction mode set DATABASE_POOL=false (PgBouncer
        # pools) and DATABASE_PGBOUNCER=true.
        conf["CONN_MAX_AGE"] = 0
        conf["CONN_HEALTH_CHECKS"] = False
        conf.setdefault("OPTIONS", {})["pool"] = {
            "min_size": int(os.environ.get("DATABASE_POOL_MIN", "1")),
            "max_size": int(os.environ.get("DATABASE_POOL_MAX", str(METRICS_QUERY_THREADS + 2))),
            "timeout": float(os.environ.get("DATABASE_POOL_TIMEOUT", "10")),
        }
    if conf["ENGINE"].endswith("postgresql") and env_bool("DATABASE_PGBOUNCER", False):
        # Transaction pooling hands each transaction to any server connection: no server-side cursors.
        conf["DISABLE_SERVER_SIDE_CURSORS"] = True
    return conf


DATABASES = {
    "default": _database(os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'supportdesk.sqlite3'}"))
}
# A streaming replica for the managers' dashboards, the metrics API and the CSV exports: only code
# inside ``supportdesk.core.db_router.reads_from_replica`` reads from it; writes and everything else
# stay on default. In the test suite it mirrors default (no database of its own).
if os.environ.get("DATABASE_REPLICA_URL"):
    DATABASES["replica"] = _database(os.environ["DATABASE_REPLICA_URL"])
    DATABASES["replica"]["TEST"] = {"MIRROR": "default"}
DATABASE_ROUTERS = ["supportdesk.core.db_router.ReplicaRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"

# --- Outbound webhooks ----------------------------------------------------------------------------
# Webhooks go to public addresses only (supportdesk.core.netguard); networks listed here (CIDR,
# comma-separated, e.g. "10.20.0.0/16,fd00:1::/64") may be reached too, for receivers inside the
# operator's own network.
WEBHOOK_ALLOWED_NETWORKS = env_list("WEBHOOK_ALLOWED_NETWORKS")
for _network in WEBHOOK_ALLOWED_NETWORKS:
    try:
        ipaddress.ip_network(_network, strict=False)
    except ValueError as _exc:
        raise RuntimeError(f"WEBHOOK_ALLOWED_NETWORKS: {_network!r} is not a network ({_exc}).") from None

# --- Login throttling (django-axes) ------------------------------------------------------------
# Failed logins are counted per account and, separately, per client address (REMOTE_ADDR; gunicorn
# is the first hop in the shipped install). After AXES_FAILURE_LIMIT failures that account (or
# that address) is refused with a 429 page until AXES_COOLOFF_MINUTES have passed since the last
# failure; a successful login resets the count. Attempts are kept in the database, which every
# web process shares, and shown to admins in the Django admin.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = int(os.environ.get("AXES_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = dt.timedelta(minutes=int(os.environ.get("AXES_COOLOFF_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "supportdesk.core.lockout.locked_out"  # the page, a 429 and Retry-After
AXES_ENABLE_ADMIN = True
AXES_VERBOSE = False
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "media/"
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", VAR_DIR / "media"))
# Uploads (escalation attachments, import files): the local MEDIA_ROOT by default (one machine, or
# a folder every web and worker machine mounts), or an S3-compatible bucket (AWS S3, MinIO, Ceph...)
# with STORAGE_BACKEND=s3 or AWS_STORAGE_BUCKET_NAME set. Objects stay private: attachments are
# served by a view that checks permissions, never by a bucket URL.
STORAGE_BACKEND = os.environ.get(
    "STORAGE_BACKEND", "s3" if os.environ.get("AWS_STORAGE_BUCKET_NAME") else "local"
).lower()


def _default_storage() -> dict:
    if STORAGE_BACKEND == "local":
        return {"BACKEND": "django.core.files.storage.FileSystemStorage"}
    if STORAGE_BACKEND != "s3":
        raise RuntimeError(f"STORAGE_BACKEND must be local or s3, not {STORAGE_BACKEND!r}.")
    if not os.environ.get("AWS_STORAGE_BUCKET_NAME"):
        raise RuntimeError("STORAGE_BACKEND=s3 needs AWS_STORAGE_BUCKET_NAME.")
    endpoint = os.environ.get("AWS_S3_ENDPOINT_URL") or None
    return {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": os.environ["AWS_STORAGE_BUCKET_NAME"],
            "endpoint_url": endpoint,
            "region_name": os.environ.get("AWS_S3_REGION_NAME") or None,
            # Unset: boto3's own chain (an instance or pod role, ~/.aws).
            "access_key": os.environ.get("AWS_ACCESS_KEY_ID") or None,
            "secret_key": os.environ.get("AWS_SECRET_ACCESS_KEY") or None,
            "location": os.environ.get("AWS_LOCATION", ""),
            # MinIO and most self-hosted servers want path-style addressing.
            "addressing_style": os.environ.get("AWS_S3_ADDRESSING_STYLE") or ("path" if endpoint else None),
            # Private objects; AWS_DEFAULT_ACL= (empty) sends none, for buckets with ACLs disabled.
            "default_acl": os.environ.get("AWS_DEFAULT_ACL", "private") or None,
            # A URL, if ever asked for, is signed and short-lived: never a public link.
            "querystring_auth": True,
            "querystring_expire": 300,
            "file_overwrite": env_bool("AWS_S3_FILE_OVERWRITE", False),
        },
    }


STORAGES = {
    "default": _default_storage(),
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not (DEBUG or TESTING)
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# --- Cache ------------------------------------------------------------------------------------
# Shared by every web and worker process in production (throttling, anything cached): Redis, by
# default the broker's Redis server with the next database number (broker /0 -> cache /1).
# CACHE_URL (or REDIS_CACHE_URL) chooses another; "locmem://" keeps a per-process memory cache.
# Development and the tests use local memory unless CACHE_URL says otherwise.


def _cache_location() -> str:
    explicit = os.environ.get("CACHE_URL") or os.environ.get("REDIS_CACHE_URL", "")
    if explicit or DEBUG or TESTING:
        return explicit
    broker = os.environ.get("CELERY_BROKER_URL", "")
    if not broker.startswith(("redis://", "rediss://")):
        return ""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(broker)
    db = parts.path.strip("/")
    next_db = (int(db) + 1) % 16 if db.isdigit() else 1
    return urlunsplit(parts._replace(path=f"/{next_db}"))


CACHE_LOCATION = _cache_location()
if CACHE_LOCATION.startswith(("redis://", "rediss://", "unix://")):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": CACHE_LOCATION,
            "KEY_PREFIX": os.environ.get("CACHE_KEY_PREFIX", "supportdesk"),
            # A Redis outage must slow a request by seconds at most, never hang it.
            "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
        }
    }
elif CACHE_LOCATION in ("", "locmem://"):
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
else:
    scheme = CACHE_LOCATION.split(":", 1)[0]  # not the whole URL: it may hold a password
    raise RuntimeError(
        f"CACHE_URL must be a redis://, rediss:// or unix:// URL, or locmem:// (not {scheme}:)."
    )

# --- E-mail -----------------------------------------------------------------------------------
EMAIL_BACKEND = os.environ.get(
    "EMAIL_BACKEND",
    "django.core.mail.backends.filebased.EmailBackend"
    if DEBUG
    else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_FILE_PATH = VAR_DIR / "mail"
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "SupportDesk <support@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Outbound mail (supportdesk/core/outbox.py) -----------------------------------------------
# Every mail is a row in the outbox first; a worker sends it (mail.send_outbound after commit, and
# mail.send_due every minute for retries and anything whose dispatch was lost).
EMAIL_TIMEOUT = float(os.environ.get("EMAIL_TIMEOUT", "20"))  # seconds; SMTP can never hang a worker
# The domain of the Message-IDs SupportDesk generates; empty: the domain of DEFAULT_FROM_EMAIL.
MAIL_MESSAGE_ID_DOMAIN = os.environ.get("MAIL_MESSAGE_ID_DOMAIN", "")
# Attempts before a mail is marked failed; with the backoff below, 8 attempts span about a day.
MAIL_MAX_ATTEMPTS = int(os.environ.get("MAIL_MAX_ATTEMPTS", "8"))
MAIL_RETRY_BASE_SECONDS = int(os.environ.get("MAIL_RETRY_BASE_SECONDS", "180"))  # x3 per attempt
MAIL_RETRY_MAX_SECONDS = int(os.environ.get("MAIL_RETRY_MAX_SECONDS", str(8 * 3600)))
# How long a worker holds a mail it is sending; after that (the worker died) it is sent again.
MAIL_SENDING_LEASE_SECONDS = int(os.environ.get("MAIL_SENDING_LEASE_SECONDS", "600"))

# --- Inbound mail (inbound/; mailboxes are configured in the admin or /api/mailboxes/) ----------
# IMAP and Maildir mailboxes are polled every INBOUND_POLL_SECONDS (mail.poll_mailboxes); a poll
# takes at most INBOUND_POLL_BATCH mails and INBOUND_POLL_BUDGET_SECONDS, the next one carries on.
INBOUND_POLL_SECONDS = int(os.environ.get("INBOUND_POLL_SECONDS", "60"))
INBOUND_POLL_BATCH = int(os.environ.get("INBOUND_POLL_BATCH", "200"))
INBOUND_POLL_BUDGET_SECONDS = float(os.environ.get("INBOUND_POLL_BUDGET_SECONDS", "45"))
INBOUND_POLL_LEASE_SECONDS = int(os.environ.get("INBOUND_POLL_LEASE_SECONDS", "300"))
INBOUND_IMAP_TIMEOUT = float(os.environ.get("INBOUND_IMAP_TIMEOUT", "30"))  # seconds per IMAP call
# A mail larger than this is refused (its headers are kept, with the reason).
INBOUND_MAX_BYTES = int(os.environ.get("INBOUND_MAX_BYTES", str(25 * 1024 * 1024)))
# More mails than this from one address within an hour are refused (kept, with the reason).
INBOUND_SENDER_LIMIT_PER_HOUR = int(os.environ.get("INBOUND_SENDER_LIMIT_PER_HOUR", "30"))
# Provider webhooks (django-anymail, /inbound/provider/<provider>/inbound/; docs/mail.md): every
# ANYMAIL_<NAME> environment variable is anymail's <NAME> setting, e.g. ANYMAIL_WEBHOOK_SECRET
# ("user:password" basic auth, comma-separated while rotating; required by the providers that sign
# nothing), ANYMAIL_MAILGUN_WEBHOOK_SIGNING_KEY, ANYMAIL_POSTAL_WEBHOOK_KEY.
ANYMAIL: dict[str, object] = {
    name.removeprefix("ANYMAIL_"): value
    for name, value in os.environ.items()
    if name.startswith("ANYMAIL_") and value
}
if "WEBHOOK_SECRET" in ANYMAIL:
    ANYMAIL["WEBHOOK_SECRET"] = env_list("ANYMAIL_WEBHOOK_SECRET")
if "AMAZON_SES_AUTO_CONFIRM_SNS_SUBSCRIPTIONS" in ANYMAIL:
    ANYMAIL["AMAZON_SES_AUTO_CONFIRM_SNS_SUBSCRIPTIONS"] = env_bool(
        "ANYMAIL_AMAZON_SES_AUTO_CONFIRM_SNS_SUBSCRIPTIONS", True
    )
# The largest webhook request read (0: INBOUND_MAX_BYTES base64-encoded in JSON, plus 1 MB).
INBOUND_WEBHOOK_MAX_BYTES = int(os.environ.get("INBOUND_WEBHOOK_MAX_BYTES", "0"))
# Attachments (escalation packages, case replies and notes, inbound mail): supportdesk.core.files.
ATTACHMENT_MAX_BYTES = int(os.environ.get("ATTACHMENT_MAX_BYTES", str(10 * 1024 * 1024)))

# --- Security (production) --------------------------------------------------------------------
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("SECURE_COOKIES", not DEBUG)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "0"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
# Content-Security-Policy (django-csp): scripts and styles from this site only, an inline <script>
# or <style> only with the request's nonce (templates write nonce="{{ request.csp_nonce }}"), no
# style="" attributes, no plugins, no framing, forms post to this site. CSP_REPORT_ONLY=true sends
# the same policy as Content-Security-Policy-Report-Only (to try a change without breaking pages).
_CSP_POLICY = {
    "DIRECTIVES": {
        "default-src": [CSP_SELF],
        "script-src": [CSP_SELF, CSP_NONCE],
        "style-src": [CSP_SELF, CSP_NONCE],
        "img-src": [CSP_SELF, "data:"],
        "font-src": [CSP_SELF],
        "connect-src": [CSP_SELF],
        "object-src": [CSP_NONE],
        "base-uri": [CSP_SELF],
        "form-action": [CSP_SELF],
        "frame-ancestors": [CSP_NONE],
    }
}
if env_bool("CSP_REPORT_ONLY", False):
    CONTENT_SECURITY_POLICY_REPORT_ONLY = _CSP_POLICY
else:
    CONTENT_SECURITY_POLICY = _CSP_POLICY
# /healthz is answered before host checks and HTTPS redirects (core.middleware.HealthCheckMiddleware).

# --- Health (/healthz/live, /healthz/ready; supportdesk.core.health) ----------------------------
# Ready needs beat's heartbeat (a task beat sends every HEARTBEAT_SECONDS, run by a worker) newer
# than this, and the last completed SLA sweep (sent every SLA_SWEEP_SECONDS) newer than that.
HEALTH_BEAT_MAX_AGE_SECONDS = int(
    os.environ.get(
        "HEALTH_BEAT_MAX_AGE_SECONDS", max(180, 3 * round(float(os.environ.get("HEARTBEAT_SECONDS", "60"))))
    )
)
HEALTH_SWEEP_MAX_LAG_SECONDS = int(
    os.environ.get(
        "HEALTH_SWEEP_MAX_LAG_SECONDS", max(300, 5 * int(os.environ.get("SLA_SWEEP_SECONDS", "60")))
    )
)

# --- REST framework ---------------------------------------------------------------------------
REST_FRAMEWORK = {
    # Token first: an anonymous request gets 401 with ``WWW-Authenticate: Token``, not a bare 403.
    # Hashed, expiring, named tokens (knox's, on core.ApiToken); ``Token <key>`` or ``Bearer <key>``.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "supportdesk.core.tokens.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # DRF's JSON parser with a nesting bound (a deep body is a 400, never a RecursionError 500).
    "DEFAULT_PARSER_CLASSES": [
        "supportdesk.core.parsers.BoundedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    # drf-spectacular's, plus the error responses (400/401/403/404/409/429) each operation can give.
    "DEFAULT_SCHEMA_CLASS": "supportdesk.core.schema.AutoSchema",
    "EXCEPTION_HANDLER": "supportdesk.core.api.exception_handler",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    # Request rates on the shared cache (Redis in production, so every web process counts the
    # same requests): anonymous callers per address, signed-in people and tokens per user. Over
    # the rate is a 429 with Retry-After.
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        # The test suite makes thousands of requests as the same few users: its default is high,
        # and the throttling tests set their own rates.
        "anon": os.environ.get("API_THROTTLE_ANON", "100000/min" if TESTING else "60/min"),
        "user": os.environ.get("API_THROTTLE_USER", "100000/min" if TESTING else "1200/min"),
    },
}
# API tokens (django-rest-knox on our own model): a token lives API_TOKEN_DAYS unless its maker
# chose otherwise (the tokens page offers 30, 90 or 365 days); using it does not extend it.
KNOX_TOKEN_MODEL = "core.ApiToken"  # noqa: S105 - a model, not a secret
# knox's own migrations would create its (swapped-out, never used) AuthToken table anyway, with a
# foreign key to the users that also blocks flushing the test database: knox is left unmigrated.
MIGRATION_MODULES = {"knox": None}
API_TOKEN_DAYS = int(os.environ.get("API_TOKEN_DAYS", "90"))
# The configuration audit trail is a record, not an undo: no "revert to this version" in the admin
# (a reverted webhook or token would come back without its secret or digest).
SIMPLE_HISTORY_REVERT_DISABLED = True
REST_KNOX = {
    "TOKEN_TTL": dt.timedelta(days=API_TOKEN_DAYS),
    "AUTO_REFRESH": False,
    "AUTH_HEADER_PREFIX": "Token",  # also the WWW-Authenticate challenge of a 401
}
SPECTACULAR_SETTINGS = {
    "TITLE": "SupportDesk API",
    "DESCRIPTION": "Cases, SLA clocks, escalation packages, knowledge and metrics.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema and the docs page are for the install's own people; API_SCHEMA_PUBLIC=true
    # opens them to anyone (still under the anonymous rate).
    "SERVE_PERMISSIONS": (
        ["rest_framework.permissions.AllowAny"]
        if env_bool("API_SCHEMA_PUBLIC", False)
        else ["supportdesk.core.api.HasRole"]
    ),
    # Swagger UI served from our own static files: no CDN needed.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # One name per choice set: a mailbox's default_severity is a case severity (SeverityEnum).
    "ENUM_NAME_OVERRIDES": {
        "CaseStatusEnum": "cases.models.Status",
        "SeverityEnum": "cases.models.Severity",
        # Two fields named "action": what a bulk change does, and which part of a macro a line is.
        "BulkActionEnum": "cases.bulk.api_action_choices",  # other apps' actions too
        "IncidentStatusEnum": "incidents.models.IncidentStatus",
        "MacroPartEnum": "cases.macros.PART_CHOICES",
        # An escalation's state and its engineering clocks' state.
        "EscalationStateEnum": "escalations.states.EscalationState",
        "EngineeringClockStateEnum": "escalations.models.ClockState",
    },
}

# --- Celery -----------------------------------------------------------------------------------
# Queues: each lane has its own worker in docker-compose.yml, so a six-hour import or a burst of
# webhook retries never delays the SLA sweep. Tasks are routed by name (glob patterns).
#   sla       sla.* (the sweep: warnings, breaches, cadence reminders) and core.heartbeat, so that
#             "beat seen" on /healthz proves the SLA lane runs. worker-sla: small, always free.
#   mail      mail.* (outbound notifications, inbound mail).                 worker
#   webhooks  escalations.deliver_webhook, escalations.redeliver_due.        worker
#   imports   imports.* (history imports; hours each).                       worker-imports
#   default   everything else (core.ping, cases.*, knowledge.*, metrics.*).  worker
# A worker started without -Q consumes every queue below (Procfile.dev's single worker names them).
CELERY_TASK_QUEUES = [
    Queue(name, routing_key=name) for name in ("sla", "mail", "webhooks", "imports", "default")
]
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {
    "sla.*": {"queue": "sla"},
    "core.heartbeat": {"queue": "sla"},
    "mail.*": {"queue": "mail"},
    "escalations.deliver_webhook": {"queue": "webhooks"},
    "escalations.redeliver_due": {"queue": "webhooks"},
    "imports.*": {"queue": "imports"},
}
# Time limits and the broker agree. Redis hands a message that was taken but not acknowledged
# (acks_late) to another worker after `visibility_timeout`: a task still running then runs twice,
# and so does a retry held for a countdown (an ETA) longer than it. The timeout is one setting for
# the whole broker (kombu restores unacknowledged messages of every queue alike), so it must
# exceed the longest hard time limit of any task and the longest retry countdown:
# imports.run_import (6 h + 5 min) and the webhooks' backoff (at most 1 h). Every task declares its
# time limit; CELERY_TASK_TIME_LIMIT catches one that does not. tests/core/test_queues.py checks
# each registered task against this timeout. Cost of a long timeout: a message of a worker killed
# without warning waits that long to be redelivered, which is why the periodic tasks (the sweep,
# redeliver_due) make up for lost messages instead of relying on redelivery.
BROKER_VISIBILITY_TIMEOUT_SECONDS = 7 * 3600
CELERY_TASK_TIME_LIMIT = 600
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = VAR_DIR / "broker"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "out"),
        "data_folder_out": str(_broker_dir / "out"),
        "processed_folder": str(_broker_dir / "processed"),
        "store_processed": False,
        "control_folder": str(_broker_dir / "control"),
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": BROKER_VISIBILITY_TIMEOUT_SECONDS}
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# The web app must keep working when the broker is down: fail fast instead of hanging a request.
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.5}
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

CASES_AUTO_CLOSE_DAYS = int(os.environ.get("CASES_AUTO_CLOSE_DAYS", "7"))
SLA_SWEEP_SECONDS = int(os.environ.get("SLA_SWEEP_SECONDS", "60"))
KNOWLEDGE_REVIEW_DAYS = int(os.environ.get("KNOWLEDGE_REVIEW_DAYS", "180"))
# A submitted escalation not acknowledged within this many minutes is announced to its team as overdue.
ESCALATION_ACK_OVERDUE_MINUTES = int(os.environ.get("ESCALATION_ACK_OVERDUE_MINUTES", "60"))

CELERY_BEAT_SCHEDULE: dict[str, dict] = {
    "core-heartbeat": {
        "task": "core.heartbeat",
        "schedule": float(os.environ.get("HEARTBEAT_SECONDS", "60")),
    },
    "cases-auto-close": {"task": "cases.auto_close_resolved", "schedule": crontab(minute="*/15")},
    "sla-sweep": {
        "task": "sla.sweep",
        "schedule": float(SLA_SWEEP_SECONDS),
        "options": {"expires": float(SLA_SWEEP_SECONDS)},
    },
    "escalations-redeliver": {"task": "escalations.redeliver_due", "schedule": crontab(minute="*/5")},
    "escalations-ack-overdue": {
        "task": "escalations.notify_ack_overdue",
        "schedule": 60.0,
        "options": {"expires": 60.0},
    },
    "escalations-sweep-clocks": {
        "task": "escalations.sweep_clocks",
        "schedule": 60.0,
        "options": {"expires": 60.0},
    },
    "knowledge-flag-stale": {"task": "knowledge.flag_stale", "schedule": crontab(minute=5)},
    # Major incidents: the commander is reminded once per overdue update period; updates a stopped
    # process left half-posted are finished (incidents/services.py).
    "incidents-remind-overdue": {
        "task": "incidents.remind_overdue",
        "schedule": 60.0,
        "options": {"expires": 60.0},
    },
    "incidents-resume-deliveries": {
        "task": "incidents.resume_deliveries",
        "schedule": 120.0,
        "options": {"expires": 120.0},
    },
    "mail-send-due": {"task": "mail.send_due", "schedule": 60.0, "options": {"expires": 60.0}},
    # Idempotency-Key records past their 24 h (supportdesk.core.idempotency); a lookup ignores them.
    "core-purge-idempotency-records": {
        "task": "core.purge_idempotency_records",
        "schedule": crontab(minute=23),
        "options": {"expires": 3600.0},
    },
    "mail-poll-mailboxes": {
        "task": "mail.poll_mailboxes",
        "schedule": float(INBOUND_POLL_SECONDS),
        "options": {"expires": float(INBOUND_POLL_SECONDS)},
    },
    "metrics-refresh-rollup": {
        "task": "metrics.refresh_rollup",
        "schedule": float(os.environ.get("METRICS_ROLLUP_SECONDS", "60")),
        "options": {"expires": float(os.environ.get("METRICS_ROLLUP_SECONDS", "60"))},
    },
}

# --- Logging ----------------------------------------------------------------------------------
# One record per line on stderr. JSON (the default unless DEBUG) carries the request id, user, case
# key and Celery task id as fields (supportdesk.core.logcontext); "text" is for reading in a terminal.
LOG_FORMAT = os.environ.get("LOG_FORMAT", "text" if DEBUG else "json").strip().lower()
if LOG_FORMAT not in {"json", "text"}:
    raise RuntimeError(f"LOG_FORMAT must be json or text, not {LOG_FORMAT!r}.")
LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO").strip().upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "supportdesk.core.logcontext.ContextFilter"}},
    "formatters": {
        "json": {
            "()": "supportdesk.core.logcontext.JsonFormatter",
        },
        "text": {
            "()": "supportdesk.core.logcontext.TextFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s: %(message)s",
        },
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["context"]}
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # Through the root handler only (Django's default adds a second console handler in DEBUG).
        "django": {"level": LOG_LEVEL, "propagate": True},
        # Our own access line (logcontext.RequestContextMiddleware) replaces Django's per-request
        # warnings for 4xx answers; server errors are still logged, with their traceback.
        "django.request": {"level": "ERROR", "propagate": True},
        # The development server's own access line duplicates ours.
        "django.server": {"level": "WARNING", "propagate": True},
    },
}

# The metrics' covering indexes carry INCLUDE columns, a PostgreSQL feature; SQLite (development and
# the default test run) builds them without those columns, which changes speed, not results.
SILENCED_SYSTEM_CHECKS = ["models.W040"]

# --- Observability ----------------------------------------------------------------------------
# Error reporting: Sentry's SDK with the Django and Celery integrations, only when SENTRY_DSN is set.
from supportdesk.core.errorreporting import init_sentry, sample_rate  # noqa: E402

SENTRY_DSN = os.environ.get("SENTRY_DSN", "")
SENTRY_ENVIRONMENT = os.environ.get("SENTRY_ENVIRONMENT", "development" if DEBUG else "production")
SENTRY_TRACES_SAMPLE_RATE = sample_rate(
    os.environ.get("SENTRY_TRACES_SAMPLE_RATE"), name="SENTRY_TRACES_SAMPLE_RATE"
)
SENTRY_ENABLED = init_sentry(
    dsn=SENTRY_DSN,
    environment=SENTRY_ENVIRONMENT,
    traces_sample_rate=SENTRY_TRACES_SAMPLE_RATE,
    release=os.environ.get("SENTRY_RELEASE", ""),
)
# /ops/metrics (Prometheus) answers a request with "Authorization: Bearer <PROMETHEUS_TOKEN>" or a
# superuser's session; without a token only superusers see it. Under gunicorn the request latency
# of all workers is summed through PROMETHEUS_MULTIPROC_DIR (an environment variable, read by
# prometheus-client at import; gunicorn.conf.py sets it up).
PROMETHEUS_TOKEN = os.environ.get("PROMETHEUS_TOKEN", "")
