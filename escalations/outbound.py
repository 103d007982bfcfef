"""The webhook outbox's door for other apps' events (``supportdesk.core.signals.outbound_events``).

The SLA sweep publishes its warnings and breaches there, inside the transaction that recorded them;
this receiver writes one delivery per active subscription that names the event (the SLA events are
opt-in: ``WebhookSubscription.wants``), in that same transaction, and hands them to the
``webhooks`` queue after it commits. From there they are the escalation webhooks' deliveries:
signed the same way, retried with the same backoff, visible in the same admin, under a delivery id
that stays the same on every retry. Neither app imports the other (docs/architecture.md).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from django.db import transaction

from supportdesk.core.signals import OutboundEvent

from .models import WebhookDelivery, WebhookSubscription
from .services import enqueue_deliveries


def on_outbound_events(sender, *, events: Sequence[OutboundEvent], now: dt.datetime, **kwargs) -> None:
    """Receiver of ``outbound_events``: the deliveries of ``events`` (one query, one INSERT)."""
    if not events:
        return
    subscriptions = list(WebhookSubscription.objects.filter(active=True).order_by("id"))
    deliveries = []
    for event in events:
        for subscription in subscriptions:
            if not subscription.wants(event.name):
                continue
            delivery = WebhookDelivery(
                subscription=subscription, event=event.name, created_at=now, next_attempt_at=now
            )
            delivery.payload = {
                "delivery_id": str(delivery.delivery_id),
                "event": event.name,
                "occurred_at": now.isoformat(),
                **event.payload,
            }
            deliveries.append(delivery)
    if not deliveries:
        return
    WebhookDelivery.objects.bulk_create(deliveries)
    ids = [str(d.delivery_id) for d in deliveries]
    transaction.on_commit(lambda: enqueue_deliveries(ids))
