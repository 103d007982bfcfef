"""Inbound mail's figures for the Prometheus endpoint (registered in ``InboundConfig.ready``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from django.db.models import Count, Q
from prometheus_client.core import GaugeMetricFamily, Metric

from supportdesk.core.prometheus import gauge

from .models import POLLED_MODES, InboundMessage, InboundStatus, Mailbox


def inbound_figures(*, now: dt.datetime) -> Iterator[Metric]:
    # Both statuses are in the partial index inbound_attention_idx: a small range scan.
    counts = InboundMessage.objects.filter(
        status__in=[InboundStatus.RECEIVED, InboundStatus.FAILED]
    ).aggregate(
        failed=Count("pk", filter=Q(status=InboundStatus.FAILED)),
        waiting=Count("pk", filter=Q(status=InboundStatus.RECEIVED)),
    )
    yield gauge(
        "supportdesk_inbound_mails_failed",
        "Received mails that could not be put on a case (kept for an admin to retry).",
        counts["failed"],
    )
    yield gauge(
        "supportdesk_inbound_mails_unprocessed",
        "Received mails recorded but not processed yet.",
        counts["waiting"],
    )
    age = GaugeMetricFamily(
        "supportdesk_mailbox_last_poll_age_seconds",
        "Seconds since each active polled mailbox was last polled (absent: never polled).",
        labels=["mailbox"],
    )
    failing = GaugeMetricFamily(
        "supportdesk_mailbox_poll_failing",
        "1 when the mailbox's last poll failed (its error is on the mailbox page).",
        labels=["mailbox"],
    )
    for name, polled_at, error in Mailbox.objects.filter(is_active=True, mode__in=POLLED_MODES).values_list(
        "name", "last_polled_at", "last_poll_error"
    ):
        if polled_at is not None:
            age.add_metric([name], (now - polled_at).total_seconds())
        failing.add_metric([name], 1 if error else 0)
    yield age
    yield failing
