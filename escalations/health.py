"""Escalations' figures for the Prometheus endpoint (registered in ``EscalationsConfig.ready``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from django.db.models import Count, Q
from prometheus_client.core import Metric

from supportdesk.core.prometheus import gauge

from .models import DeliveryStatus, WebhookDelivery


def webhook_figures(*, now: dt.datetime) -> Iterator[Metric]:
    counts = WebhookDelivery.objects.filter(
        status__in=[DeliveryStatus.PENDING, DeliveryStatus.FAILED]
    ).aggregate(
        failed=Count("pk", filter=Q(status=DeliveryStatus.FAILED)),
        retrying=Count("pk", filter=Q(status=DeliveryStatus.PENDING, attempts__gt=0)),
    )
    yield gauge(
        "supportdesk_webhook_deliveries_failed",
        "Escalation webhook deliveries that failed for good (until sent again).",
        counts["failed"],
    )
    yield gauge(
        "supportdesk_webhook_deliveries_retrying",
        "Escalation webhook deliveries that failed at least once and wait for another attempt.",
        counts["retrying"],
    )
