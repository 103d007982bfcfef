"""The Prometheus endpoint ``/ops/metrics``: request latency, SLA sweep lag, queue depth, backlogs.

Two kinds of figures:

- Request latency is observed in the web processes (``observe_request``, called by
  logcontext.RequestContextMiddleware). gunicorn runs several worker processes and a scrape reaches
  only one of them, so under gunicorn prometheus-client's multiprocess mode is used: each process
  writes its samples to files in ``PROMETHEUS_MULTIPROC_DIR`` and a scrape sums them (gunicorn.conf.py
  sets the folder up and removes it). Without that variable (runserver, tests) the process's own
  histogram is served.
- Everything else is read at scrape time by ``SupportDeskCollector`` from the database and the broker
  with a few cheap queries, so it is right whichever process answers and needs no background job.
  Core reads its own (queue depths, the outbox); the SLA and escalation apps add theirs with
  ``register_scrape_figures`` in their ``ready()``, so core imports no product app.

Access: ``Authorization: Bearer <PROMETHEUS_TOKEN>`` or a logged-in superuser; anything else is 403.
A scrape with the token is answered before host validation and the HTTPS redirect (like /healthz):
Prometheus scrapes each process by its address, inside the private network.
"""

from __future__ import annotations

import hmac
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from functools import lru_cache

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.urls import Resolver404, resolve
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

logger = logging.getLogger(__name__)

METRICS_PATH = "/ops/metrics"
DEFAULT_QUEUES = ("sla", "mail", "webhooks", "imports", "default")
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

# Not registered anywhere at import: each scrape builds its own registry (see ``scrape_registry``).
REQUEST_LATENCY = Histogram(
    "supportdesk_http_request_duration_seconds",
    "Time to answer an HTTP request, by method, route (URL name) and status class.",
    ["method", "route", "status"],
    registry=None,
)


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def route_name(request: HttpRequest) -> str:
    """The URL's name (``cases:detail``): bounded, unlike paths. Unknown URLs share one label."""
    match = getattr(request, "resolver_match", None)
    if match is None:  # answered before URL resolution (/healthz, a token scrape) or not found
        try:
            match = resolve(request.path_info)
        except Resolver404:
            return "unmatched"
    return match.view_name or match.route or "unnamed"


def observe_request(request: HttpRequest, response: HttpResponse, *, seconds: float) -> str:
    """Record one answered request; returns the route label used."""
    route = route_name(request)
    method = request.method if request.method in _METHODS else "other"
    REQUEST_LATENCY.labels(method, route, f"{response.status_code // 100}xx").observe(seconds)
    return route


# --- Figures read at scrape time ------------------------------------------------------------------


class SupportDeskCollector:
    """Gauges computed when scraped. Each part fails on its own: a broken broker does not hide
    the database figures, and ``supportdesk_metrics_collector_up`` says which part answered."""

    def __init__(self, *, now: Callable = timezone.now) -> None:
        self.now = now

    def collect(self) -> Iterator[Metric]:
        now = self.now()
        up = GaugeMetricFamily(
            "supportdesk_metrics_collector_up",
            "1 if this part of the scrape-time figures could be read, 0 if it failed (see the logs).",
            labels=["part"],
        )
        for part, read in _FIGURES.items():
            try:
                families = list(read(now=now))
            except Exception:  # noqa: BLE001 - a scrape reports what it can
                logger.warning("Could not read the %s figures for Prometheus", part, exc_info=True)
                up.add_metric([part], 0)
                continue
            up.add_metric([part], 1)
            yield from families
        yield up


def gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


# part -> read(now=...) yielding metric families; the product apps add theirs in AppConfig.ready()
# (core imports none of them), as they do their readiness checks in supportdesk.core.health.
_FIGURES: dict[str, Callable[..., Iterable[Metric]]] = {}


def register_scrape_figures(part: str, read: Callable[..., Iterable[Metric]]) -> None:
    """Add figures read at each scrape: ``read(now=...)`` yields metric families from one or two
    cheap indexed queries. A part that raises is reported as ``supportdesk_metrics_collector_up``
    0 without hiding the others. Registering a part again replaces it."""
    _FIGURES[part] = read


def queue_names() -> list[str]:
    """The Celery queues to watch: settings.CELERY_TASK_QUEUES if defined, else the product's."""
    configured = getattr(settings, "CELERY_TASK_QUEUES", None)
    if not configured:
        return list(DEFAULT_QUEUES)
    if isinstance(configured, dict):
        return [str(name) for name in configured]
    return [q if isinstance(q, str) else q.name for q in configured]


@lru_cache(maxsize=4)
def _redis_client(url: str):
    import redis

    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)


def _queue_depths(*, now) -> Iterator[Metric]:
    url = str(getattr(settings, "CELERY_BROKER_URL", "") or "").split(";")[0].strip()
    if not url.startswith(("redis://", "rediss://", "unix://")):
        return  # another transport: no queue lengths to read, and not an error
    options = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", None) or {}
    prefix = options.get("global_keyprefix", "")
    steps = options.get("priority_steps", [0, 3, 6, 9])
    names = queue_names()
    # kombu's Redis transport keeps a queue as a list named after it, plus one list per priority
    # step above 0 ("<queue>\x06\x16<step>"); the depth is the sum.
    pipe = _redis_client(url).pipeline(transaction=False)
    for name in names:
        for step in steps:
            pipe.llen(f"{prefix}{name}" if not step else f"{prefix}{name}\x06\x16{step}")
    lengths = pipe.execute()
    family = GaugeMetricFamily(
        "supportdesk_celery_queue_length", "Messages waiting in each Celery queue.", labels=["queue"]
    )
    for i, name in enumerate(names):
        family.add_metric([name], sum(lengths[i * len(steps) : (i + 1) * len(steps)]))
    yield family


def _outbox(*, now) -> Iterator[Metric]:
    from django.db.models import Count, Q

    from .models import UNSENT_STATUSES, MailStatus, OutboundMessage

    # The backlog is what the sender still has to send (a claimed row counts until it is sent).
    counts = OutboundMessage.objects.filter(status__in=[*UNSENT_STATUSES, MailStatus.FAILED]).aggregate(
        backlog=Count("pk", filter=Q(status__in=UNSENT_STATUSES)),
        failed=Count("pk", filter=Q(status=MailStatus.FAILED)),
    )
    yield gauge(
        "supportdesk_outbox_backlog_messages", "Outbound mails not sent yet (queued, sending, retrying).",
        counts["backlog"],
    )  # fmt: skip
    yield gauge("supportdesk_outbox_failed_messages", "Outbound mails failed for good.", counts["failed"])
    # Inbound mail ingestion failures: the same pattern once inbound mail has a model to read.


register_scrape_figures("queues", _queue_depths)
register_scrape_figures("outbox", _outbox)


# --- The endpoint -------------------------------------------------------------------------------


def scrape_registry(*, now: Callable = timezone.now) -> CollectorRegistry:
    registry = CollectorRegistry()
    if multiprocess_dir():
        MultiProcessCollector(registry)  # every gunicorn worker's request histograms, summed
    else:
        registry.register(REQUEST_LATENCY)
    registry.register(SupportDeskCollector(now=now))
    return registry


def token_ok(request: HttpRequest) -> bool:
    expected = getattr(settings, "PROMETHEUS_TOKEN", "")
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    if not expected or scheme.lower() != "bearer" or not presented:
        return False
    return hmac.compare_digest(presented.strip().encode(), expected.encode())


def _superuser(request: HttpRequest) -> bool:
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_authenticated and user.is_superuser)


@never_cache
@require_safe
def metrics_view(request: HttpRequest) -> HttpResponse:
    if not (token_ok(request) or _superuser(request)):
        return HttpResponseForbidden(
            "A bearer token (PROMETHEUS_TOKEN) or a superuser session is required.",
            content_type="text/plain",
        )
    return HttpResponse(generate_latest(scrape_registry()), content_type=CONTENT_TYPE_LATEST)


class OpsMetricsMiddleware:
    """Answer a scrape that carries the token before host validation and the HTTPS redirect."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path == METRICS_PATH and request.method in ("GET", "HEAD") and token_ok(request):
            return metrics_view(request)
        return self.get_response(request)
