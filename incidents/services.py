"""Major incidents' writes: declare, link cases, post an update to every linked case, resolve.

Every change to a case goes through ``cases.services`` (its lock, lifecycle, timeline event and
outbox), so a fanned-out update is, on each case, an ordinary public reply: it is mailed to that
case's requester in that case's thread and meets that case's update-cadence clock. A case that
cannot take the change (closed, or a status the lifecycle does not allow to resolve) is listed with
the reason; the others are not held back by it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db import transaction

from cases import services as case_services
from cases.models import EventKind, Severity, Status
from supportdesk.core.errors import DomainError
from supportdesk.core.roles import is_agent

from .models import IncidentCase, IncidentStatus, IncidentUpdate, MajorIncident, UpdateDelivery

MAX_TITLE = 200
MAX_BODY = 20_000


class IncidentError(DomainError):
    code = "invalid_incident"


@dataclass
class Outcome:
    """What a change to many cases did: the keys it changed and, for the others, why not."""

    done: list[str] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)
    update: IncidentUpdate | None = None


def _check_active(incident: MajorIncident) -> None:
    if not incident.is_active:
        raise IncidentError(f"{incident.key} is resolved; declare a new incident for a new fault.")


def _lock(incident: MajorIncident) -> MajorIncident:
    return MajorIncident.objects.select_for_update().get(pk=incident.pk)


def declare(
    *,
    title: str,
    severity: str,
    commander,
    actor,
    now: dt.datetime,
    product_area: str = "",
    from_case=None,
) -> MajorIncident:
    """Open a major incident; ``from_case`` (the P1 it was declared from) is linked at once."""
    title = " ".join((title or "").split())
    if not title:
        raise IncidentError("Give the incident a title (what is broken, as customers see it).", field="title")
    if len(title) > MAX_TITLE:
        raise IncidentError(f"A title has at most {MAX_TITLE} characters.", field="title")
    if severity not in Severity.values:
        raise IncidentError("Choose a severity (P1-P4).", field="severity")
    if commander is None or not is_agent(commander):
        raise IncidentError("The commander must be a support agent or manager.", field="commander")
    with transaction.atomic():
        incident = MajorIncident.objects.create(
            title=title,
            severity=severity,
            product_area=(product_area or "").strip()[:100],
            commander=commander,
            declared_by=actor,
            declared_at=now,
            origin_case=from_case,
        )
        if from_case is not None:
            outcome = link_cases(incident, [from_case], actor=actor, now=now)
            if outcome.refused:
                raise IncidentError(outcome.refused[0][1], field="case")
    return incident


def _link_problem(case, linked: set[int], elsewhere: dict[int, str]) -> str | None:
    if case.pk in linked:
        return "already linked to this incident"
    if case.pk in elsewhere:
        return f"already part of {elsewhere[case.pk]}, which is still active"
    if case.status == Status.CLOSED:
        return "closed; the customer's new mail opens a follow-up case, link that one"
    return None


def link_cases(incident: MajorIncident, cases: Iterable, *, actor, now: dt.datetime) -> Outcome:
    """Link ``cases`` to the incident, each recorded on its own timeline; a case already linked,
    closed, or part of another active incident is refused with the reason."""
    cases = list(cases)
    outcome = Outcome()
    with transaction.atomic():
        incident = _lock(incident)
        _check_active(incident)
        ids = [c.pk for c in cases]
        linked = set(
            IncidentCase.objects.filter(incident=incident, case_id__in=ids).values_list("case_id", flat=True)
        )
        elsewhere = {
            case_id: f"{MajorIncident.KEY_PREFIX}{incident_id}"
            for case_id, incident_id in IncidentCase.objects.filter(
                case_id__in=ids, incident__status=IncidentStatus.ACTIVE
            )
            .exclude(incident=incident)
            .values_list("case_id", "incident_id")
        }
        for case in cases:
            problem = _link_problem(case, linked, elsewhere)
            if problem:
                outcome.refused.append((case.key, problem))
                continue
            IncidentCase.objects.create(incident=incident, case=case, linked_at=now, linked_by=actor)
            case_services.record_event(
                case,
                EventKind.FIELD_CHANGED,
                actor=actor,
                now=now,
                field="major_incident",
                old="",
                new=incident.key,
            )
            linked.add(case.pk)
            outcome.done.append(case.key)
    return outcome


def _linked_cases(incident: MajorIncident) -> list:
    return [link.case for link in incident.links.select_related("case").order_by("case_id")]


def _fan_out(update: IncidentUpdate, *, actor, now: dt.datetime, outcome: Outcome) -> None:
    """Post ``update`` to every linked case it has not reached yet (at most once per case)."""
    reached = set(UpdateDelivery.objects.filter(update=update).values_list("case_id", flat=True))
    for case in _linked_cases(update.incident):
        if case.pk in reached:
            continue
        try:
            with transaction.atomic():
                event = case_services.add_public_reply(case, body=update.body, actor=actor, now=now)
        except DomainError as exc:
            UpdateDelivery.objects.create(update=update, case=case, refused=exc.message[:300])
            outcome.refused.append((case.key, exc.message))
            continue
        UpdateDelivery.objects.create(update=update, case=case, event_id=event.pk)
        outcome.done.append(case.key)


def post_update(
    incident: MajorIncident, *, body: str, public: bool, actor, now: dt.datetime, closing: bool = False
) -> Outcome:
    """Write an update once. Public: it becomes a public reply on every linked case (mailed to
    each requester in its own thread, meeting each case's update cadence); internal: it stays on
    the incident. The fan-out is one transaction: every case gets it, or (on a crash) none."""
    body = (body or "").strip()
    if not body:
        raise IncidentError("An update cannot be empty.", field="body")
    if len(body) > MAX_BODY:
        raise IncidentError(f"An update has at most {MAX_BODY} characters.", field="body")
    outcome = Outcome()
    with transaction.atomic():
        incident = _lock(incident)
        _check_active(incident)
        update = IncidentUpdate.objects.create(
            incident=incident, body=body, is_public=public, author=actor, created_at=now, closing=closing
        )
        outcome.update = update
        if public:
            _fan_out(update, actor=actor, now=now, outcome=outcome)
    return outcome


def resolve(
    incident: MajorIncident, *, actor, now: dt.datetime, closing_message: str = "", resolve_cases: bool = True
) -> Outcome:
    """Resolve the incident; with ``closing_message`` it is posted to every linked case first, and
    with ``resolve_cases`` every linked case still open is resolved through its lifecycle (a case
    whose status cannot go to resolved is listed with the lifecycle's reason)."""
    outcome = Outcome()
    with transaction.atomic():
        incident = _lock(incident)
        _check_active(incident)
        if closing_message.strip():
            posted = post_update(
                incident, body=closing_message, public=True, actor=actor, now=now, closing=True
            )
            outcome.update = posted.update
            outcome.refused.extend(posted.refused)
        if resolve_cases:
            refused = {key for key, _ in outcome.refused}
            for case in _linked_cases(incident):
                if case.status in (Status.RESOLVED, Status.CLOSED) or case.key in refused:
                    continue
                try:
                    with transaction.atomic():
                        case_services.transition(case, Status.RESOLVED, actor=actor, now=now)
                except DomainError as exc:
                    outcome.refused.append((case.key, exc.message))
                    continue
                outcome.done.append(case.key)
        incident.status = IncidentStatus.RESOLVED
        incident.resolved_at = now
        incident.save(update_fields=["status", "resolved_at"])
    return outcome
