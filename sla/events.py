"""The timeline event kinds the SLA app records: their codes, named once.

``CaseEvent.kind`` is a plain string (the core does not know the other apps' kinds), so every
module that records, reads or labels one of these uses the constants here, never the literal.
"""

from __future__ import annotations


class SlaEventKind:
    """Timeline event kinds the SLA app records (codes, never labels)."""

    WARNING = "sla_warning"
    BREACHED = "sla_breached"
    CADENCE_REMINDER = "cadence_reminder"
    CADENCE_MISSED = "cadence_missed"


SLA_EVENT_KINDS = frozenset(
    {SlaEventKind.WARNING, SlaEventKind.BREACHED, SlaEventKind.CADENCE_REMINDER, SlaEventKind.CADENCE_MISSED}
)

#: What the case timeline calls each kind (registered in ``SlaConfig.ready``).
LABELS = {
    SlaEventKind.WARNING: "SLA at risk",
    SlaEventKind.BREACHED: "SLA breached",
    SlaEventKind.CADENCE_REMINDER: "Customer update due soon",
    SlaEventKind.CADENCE_MISSED: "Customer update missed",
}


class SlaWebhookEvent:
    """The webhook events of SLA warnings and breaches (``escalations.models.WebhookEvent`` offers
    them to subscribers; tests/escalations/test_webhooks_sla.py checks the two agree)."""

    WARNING = "sla.warning"
    BREACHED = "sla.breached"
