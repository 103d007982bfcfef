"""What an SLA warning or breach tells webhook subscribers: the events and their payload.

The sweep (and a meet that records a breach late) builds one :class:`OutboundEvent` per warning
or breach it records on the timeline whose rung sends webhooks, and publishes them with
``supportdesk.core.signals.outbound_events`` in the recording transaction; the webhook outbox
(``escalations.outbound``) signs and delivers them like the escalation events. The payload is
documented in docs/domain.md ("SLA webhooks"); a change here changes that page.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.urls import NoReverseMatch, reverse

from cases.models import Case
from supportdesk.core.signals import OutboundEvent

from .events import SlaWebhookEvent
from .models import SlaClock


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.astimezone(dt.UTC).isoformat()


def _path(name: str, key: str, fallback: str) -> str:
    try:
        return reverse(name, args=[key])
    except NoReverseMatch:
        return fallback


def sla_event(
    case: Case,
    clk: SlaClock,
    *,
    breach: bool,
    percent: int,
    reached_at: dt.datetime,
    late: bool,
) -> OutboundEvent:
    """The event of one recorded warning (``percent`` of the target used at ``reached_at``) or
    breach (``percent`` 100, ``reached_at`` the due instant). ``late``: a warning recorded after a
    higher point or the breach had passed; a breach recorded by a meet after the due instant."""
    site = settings.SITE_URL
    payload: dict[str, Any] = {
        "case": {
            "key": case.key,
            "title": case.title,
            "severity": case.severity,
            "status": case.status,
            "organisation": case.organisation.name,
            "tier": case.organisation.tier,
            "assignee": case.assignee.get_username() if case.assignee_id and case.assignee else None,
            "team": case.team.slug if case.team_id and case.team else None,
            "web_url": site + _path("cases:detail", case.key, f"/cases/{case.key}/"),
            "api_url": site + _path("sla_api:case-sla", case.key, f"/api/cases/{case.key}/sla/"),
        },
        "clock": {
            "id": clk.pk,
            "target": clk.target,
            "run": clk.run,
            "state": clk.state,
            "target_minutes": clk.target_minutes,
            "business_time": clk.business_time,
            "started_at": _iso(clk.started_at),
            "due_at": _iso(clk.due_at),
            "met_at": _iso(clk.met_at),
        },
        "threshold": {"percent": percent, "reached_at": _iso(reached_at), "late": late},
    }
    return OutboundEvent(SlaWebhookEvent.BREACHED if breach else SlaWebhookEvent.WARNING, payload)
