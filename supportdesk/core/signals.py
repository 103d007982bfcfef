"""Events for outside systems, published by one app and delivered by another that neither imports.

``outbound_events`` is sent *inside* the transaction that recorded what the events announce, with
``events`` (a list of :class:`OutboundEvent`) and ``now``. The SLA sweep sends it for the warnings
and breaches it records (``sla.services``); the webhook outbox (``escalations.outbound``) listens
and writes one signed delivery per subscription that asked for the event, in the same transaction,
sent after it commits. So the sender never imports the outbox and the outbox never imports the
sender: both import only this module (docs/architecture.md). A receiver must not let anything
leave the process before the commit (``transaction.on_commit``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.dispatch import Signal


@dataclass(frozen=True)
class OutboundEvent:
    """One event: its dotted name (``sla.breached``) and its JSON-ready body, documented by the
    sender (the receiver adds the delivery's own ``delivery_id``, ``event`` and ``occurred_at``)."""

    name: str
    payload: dict[str, Any]


outbound_events = Signal()
