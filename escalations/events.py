"""The timeline event kinds the escalations app records on a case: their codes, named once.

Each is recorded on the escalated case's timeline by ``escalations.services`` (through
``cases.services.record_event``); the case page labels them with ``LABELS``, and the metrics rollup
reacts to the ones that change its counts.
"""

from __future__ import annotations


class EscalationEventKind:
    """Timeline event kinds of an escalation (codes, never labels)."""

    DRAFTED = "escalation_drafted"
    UPDATED = "escalation_updated"
    QUALITY_OVERRIDE = "escalation_quality_override"
    SUBMITTED = "escalation_submitted"
    INFO_REQUESTED = "escalation_info_requested"
    INFO_PROVIDED = "escalation_info_provided"
    ACKNOWLEDGED = "escalation_acknowledged"
    STARTED = "escalation_started"
    RESOLVED = "escalation_resolved"
    DECLINED = "escalation_declined"
    LINKED = "escalation_linked"
    WITHDRAWN = "escalation_withdrawn"
    # Engineering clocks (escalations/clocks.py): a share of a team's internal target used, or missed.
    CLOCK_WARNING = "escalation_clock_warning"
    CLOCK_BREACHED = "escalation_clock_breached"


#: What the case timeline calls each kind (registered in ``EscalationsConfig.ready``).
LABELS = {
    EscalationEventKind.DRAFTED: "Escalation drafted",
    EscalationEventKind.SUBMITTED: "Escalated to engineering",
    EscalationEventKind.QUALITY_OVERRIDE: "Escalation quality override",
    EscalationEventKind.INFO_REQUESTED: "Engineering asked for information",
    EscalationEventKind.INFO_PROVIDED: "Information sent to engineering",
    EscalationEventKind.ACKNOWLEDGED: "Engineering acknowledged the escalation",
    EscalationEventKind.STARTED: "Engineering started work",
    EscalationEventKind.RESOLVED: "Engineering resolved the escalation",
    EscalationEventKind.DECLINED: "Engineering declined the escalation",
    EscalationEventKind.LINKED: "Escalation linked to an engineering ticket",
    EscalationEventKind.WITHDRAWN: "Escalation withdrawn",
    EscalationEventKind.UPDATED: "Escalation package updated",
    EscalationEventKind.CLOCK_WARNING: "Engineering target nearly used",
    EscalationEventKind.CLOCK_BREACHED: "Engineering target missed",
}
