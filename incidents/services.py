"""Major incidents' writes: declare, link cases, post an update to every linked case, resolve, the
incident's own cadence and its reminders.

Every change to a case goes through ``cases.services`` (its lock, lifecycle, timeline event and
outbox), so a fanned-out update is, on each case, an ordinary public reply: it is mailed to that
case's requester in that case's thread and meets that case's update-cadence clock. A case that
cannot take the change (closed, or a status the lifecycle does not allow to resolve) is listed with
the reason; the others are not held back by it.

The fan-out does not hold the incident: the update and one pending ``UpdateDelivery`` per linked
case are written in one short transaction (the incident locked only for that), then the deliveries
are claimed and posted in chunks of cases, each chunk one transaction holding its deliveries and
its cases' replies. A crash part-way leaves the rest pending, and ``resume_deliveries`` (beat)
posts them; the claim makes each case get each update exactly once, also with two processes at
the same update.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.urls import reverse

from cases import services as case_services
from cases.models import Case, EventKind, Severity, Status
from supportdesk.core import outbox
from supportdesk.core.errors import DomainError
from supportdesk.core.models import MailKind, Notification, StaffProfile
from supportdesk.core.roles import is_agent

from .models import (
    CADENCE_CHOICES,
    DEFAULT_CADENCE_MINUTES,
    DeliveryState,
    IncidentCase,
    IncidentReminder,
    IncidentStatus,
    IncidentUpdate,
    MajorIncident,
    UpdateDelivery,
)

MAX_TITLE = 200
MAX_BODY = 20_000
MIN_CADENCE = 5
MAX_CADENCE = 24 * 60
#: Cases per transaction of a fan-out: one commit (an fsync) per chunk, not per case, while each
#: chunk's cases stay locked well under a second.
DELIVERY_CHUNK = 50
#: A delivery still pending this long after its update was written lost its writer: resume it.
RESUME_AFTER = dt.timedelta(minutes=2)
#: Workers asked to help post an update to this many cases or more (``_call_helpers``).
FAN_OUT_HELPERS = 2
FAN_OUT_HELPERS_FROM = 200


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


def check_cadence(minutes: int | None, *, severity: str) -> int:
    """The cadence in minutes: the severity's default when none is given, else between 5 min and a day."""
    if minutes in (None, ""):
        return DEFAULT_CADENCE_MINUTES.get(severity, 60)
    try:
        minutes = int(minutes)
    except (TypeError, ValueError):
        minutes = 0
    if not MIN_CADENCE <= minutes <= MAX_CADENCE:
        raise IncidentError(
            f"The update cadence is between {MIN_CADENCE} and {MAX_CADENCE} minutes "
            f"(e.g. {', '.join(str(c) for c in CADENCE_CHOICES[:4])}).",
            field="cadence_minutes",
        )
    return minutes


def declare(
    *,
    title: str,
    severity: str,
    commander,
    actor,
    now: dt.datetime,
    product_area: str = "",
    from_case=None,
    cadence_minutes: int | None = None,
    began_with: Sequence[Case] = (),
) -> MajorIncident:
    """Open a major incident; ``from_case`` (the P1 it was declared from) is linked at once. Its
    first public update is due one cadence from now; it began when the earliest of ``from_case``
    and ``began_with`` (the cases it is declared with) was opened."""
    title = " ".join((title or "").split())
    if not title:
        raise IncidentError("Give the incident a title (what is broken, as customers see it).", field="title")
    if len(title) > MAX_TITLE:
        raise IncidentError(f"A title has at most {MAX_TITLE} characters.", field="title")
    if severity not in Severity.values:
        raise IncidentError("Choose a severity (P1-P4).", field="severity")
    if commander is None or not is_agent(commander):
        raise IncidentError("The commander must be a support agent or manager.", field="commander")
    minutes = check_cadence(cadence_minutes, severity=severity)
    opened = [c.created_at for c in [from_case, *began_with] if c is not None]
    due = now + dt.timedelta(minutes=minutes)
    with transaction.atomic():
        incident = MajorIncident.objects.create(
            title=title,
            severity=severity,
            product_area=(product_area or "").strip()[:100],
            commander=commander,
            declared_by=actor,
            declared_at=now,
            started_at=min([now, *opened]),
            origin_case=from_case,
            cadence_minutes=minutes,
            next_update_due_at=due,
            reminder_due_at=due,
        )
        if from_case is not None:
            outcome = link_cases(incident, [from_case], actor=actor, now=now)
            if outcome.refused:
                raise IncidentError(outcome.refused[0][1], field="case")
    return incident


def declare_with_cases(
    *, cases: Sequence[Case], actor, now: dt.datetime, **details
) -> tuple[MajorIncident, Outcome]:
    """Declare an incident (``declare``'s arguments) whose first linked cases are ``cases`` (from the
    queue); those that cannot be linked are listed with the reason, the incident is declared anyway."""
    with transaction.atomic():
        incident = declare(actor=actor, now=now, began_with=cases, **details)
        outcome = link_cases(incident, cases, actor=actor, now=now)
    return incident, outcome


def _link_problem(case, linked: set[int], elsewhere: dict[int, str]) -> str | None:
    if case.pk in linked:
        return ALREADY_LINKED
    if case.pk in elsewhere:
        return f"already part of {elsewhere[case.pk]}, which is still active"
    if case.status == Status.CLOSED:
        return "closed; the customer's new mail opens a follow-up case, link that one"
    return None


ALREADY_LINKED = "already linked to this incident"


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


def _write_update(
    incident: MajorIncident, *, body: str, public: bool, actor, now: dt.datetime, closing: bool = False
) -> IncidentUpdate:
    """The update and, if public, one pending delivery per linked case; a public update meets the
    incident's cadence and starts the next period. The caller holds the incident's lock."""
    update = IncidentUpdate.objects.create(
        incident=incident,
        body=body,
        is_public=public,
        author=actor,
        created_at=now,
        closing=closing,
        due_at=incident.next_update_due_at if public else None,
    )
    if public:
        case_ids = incident.links.order_by("case_id").values_list("case_id", flat=True)
        UpdateDelivery.objects.bulk_create(
            [UpdateDelivery(update=update, case_id=case_id) for case_id in case_ids], batch_size=1000
        )
        if not closing:
            due = now + incident.cadence
            incident.next_update_due_at = due
            incident.reminder_due_at = due
            incident.save(update_fields=["next_update_due_at", "reminder_due_at"])
    return update


def _check_body(body: str) -> str:
    body = (body or "").strip()
    if not body:
        raise IncidentError("An update cannot be empty.", field="body")
    if len(body) > MAX_BODY:
        raise IncidentError(f"An update has at most {MAX_BODY} characters.", field="body")
    return body


def post_update(
    incident: MajorIncident, *, body: str, public: bool, actor, now: dt.datetime, closing: bool = False
) -> Outcome:
    """Write an update once. Public: it becomes a public reply on every case linked now (mailed to
    each requester in its own thread, meeting each case's update cadence) and meets the incident's
    own cadence; internal: it stays on the incident. The incident is locked only while the update
    is written; each case then gets it in its own transaction (``deliver``)."""
    update = start_update(incident, body=body, public=public, actor=actor, now=now, closing=closing)
    outcome = Outcome(update=update)
    if public:
        deliver(update, actor=actor, now=now, outcome=outcome)
    return outcome


def start_update(
    incident: MajorIncident, *, body: str, public: bool, actor, now: dt.datetime, closing: bool = False
) -> IncidentUpdate:
    """``post_update``'s short transaction: the update, a pending delivery per linked case, the
    incident's cadence met; for a large incident, helpers asked after commit. ``deliver`` posts it."""
    body = _check_body(body)
    with transaction.atomic():
        incident = _lock(incident)
        _check_active(incident)
        update = _write_update(incident, body=body, public=public, actor=actor, now=now, closing=closing)
        if public:
            _call_helpers(update)
    return update


#: How a worker is asked to help post an update (``incidents.deliver_update``'s ``delay``), set by
#: ``IncidentsConfig.ready``; this module does not import the tasks module that imports it.
_ask_helper: Callable[[int], object] | None = None


def set_helper_dispatch(ask: Callable[[int], object]) -> None:
    """Say how ``_call_helpers`` asks a worker to help post one update (its id)."""
    global _ask_helper
    _ask_helper = ask


def _call_helpers(update: IncidentUpdate) -> None:
    """For a large incident, ask ``FAN_OUT_HELPERS`` workers (after commit) to post the update beside
    the caller: each claims chunks the others have not (``deliver``), so more hands finish sooner and
    none posts a case twice; with no worker running the caller posts every case itself."""
    ask = _ask_helper
    if ask is None or FAN_OUT_HELPERS <= 0 or update.deliveries.count() < FAN_OUT_HELPERS_FROM:
        return

    def dispatch() -> None:
        for _ in range(FAN_OUT_HELPERS):
            try:
                ask(update.pk)
            except Exception:  # the broker is down: the caller posts every case itself
                return

    transaction.on_commit(dispatch)


def deliver(update: IncidentUpdate, *, actor, now: dt.datetime, outcome: Outcome | None = None) -> Outcome:
    """Post ``update`` to every case whose delivery is still pending, ``DELIVERY_CHUNK`` cases per
    transaction: the chunk's deliveries are claimed with ``SELECT ... FOR UPDATE SKIP LOCKED`` and
    marked posted in the transaction that writes the cases' replies, so a case gets the update
    exactly once (another process at the same update takes the next chunk, never the same case),
    and one commit serves a chunk. A case that refuses (closed since) is rolled back to its own
    savepoint and listed; the chunk goes on."""
    outcome = outcome if outcome is not None else Outcome(update=update)
    while True:
        with transaction.atomic():
            claimed = list(
                UpdateDelivery.objects.select_for_update(skip_locked=True)
                .filter(update=update, state=DeliveryState.PENDING)
                .order_by("case_id")[:DELIVERY_CHUNK]
            )
            if not claimed:
                return outcome
            cases = Case.objects.only("id").in_bulk([d.case_id for d in claimed])
            posted = []
            for delivery in claimed:
                case = cases[delivery.case_id]
                try:
                    event = case_services.add_public_reply(case, body=update.body, actor=actor, now=now)
                except DomainError as exc:
                    delivery.state = DeliveryState.REFUSED
                    delivery.refused = exc.message[:300]
                    outcome.refused.append((case.key, exc.message))
                else:
                    delivery.state = DeliveryState.DELIVERED
                    delivery.delivered_at = now
                    delivery.event_id = event.pk
                    posted.append(case.key)
            UpdateDelivery.objects.bulk_update(claimed, ["state", "delivered_at", "event_id", "refused"])
        outcome.done.extend(posted)


def deliver_pending(update_id: int, *, now: dt.datetime) -> int:
    """A helper's share of an update's fan-out, as its author; returns how many cases it posted."""
    update = IncidentUpdate.objects.select_related("author").filter(pk=update_id).first()
    if update is None:
        return 0
    return len(deliver(update, actor=update.author, now=now).done)


def resume_deliveries(*, now: dt.datetime) -> int:
    """Post the deliveries whose writer stopped part-way (pending well after their update was
    written), as the update's author; returns how many cases got an update. Safe twice."""
    updates = (
        IncidentUpdate.objects.filter(
            deliveries__state=DeliveryState.PENDING, created_at__lte=now - RESUME_AFTER
        )
        .select_related("author")
        .distinct()
        .order_by("created_at", "id")
    )
    posted = 0
    for update in updates:
        posted += len(deliver(update, actor=update.author, now=now).done)
    return posted


def resolve(
    incident: MajorIncident, *, actor, now: dt.datetime, closing_message: str = "", resolve_cases: bool = True
) -> Outcome:
    """Resolve the incident; with ``closing_message`` it is posted to every linked case first, and
    with ``resolve_cases`` every linked case still open is resolved through its lifecycle (a case
    whose status cannot go to resolved is listed with the lifecycle's reason). The incident is
    resolved (and takes no more updates) in one short transaction; each case changes in its own."""
    closing = _check_body(closing_message) if closing_message.strip() else ""
    outcome = Outcome()
    with transaction.atomic():
        incident = _lock(incident)
        _check_active(incident)
        if closing:
            outcome.update = _write_update(
                incident, body=closing, public=True, actor=actor, now=now, closing=True
            )
        incident.status = IncidentStatus.RESOLVED
        incident.resolved_at = now
        incident.next_update_due_at = None
        incident.reminder_due_at = None
        incident.save(update_fields=["status", "resolved_at", "next_update_due_at", "reminder_due_at"])
    if outcome.update is not None:
        posted = deliver(outcome.update, actor=actor, now=now)
        outcome.refused.extend(posted.refused)
    if resolve_cases:
        refused = {key for key, _ in outcome.refused}
        for case in Case.objects.filter(incident_links__incident=incident).order_by("id"):
            if case.status in (Status.RESOLVED, Status.CLOSED) or case.key in refused:
                continue
            try:
                with transaction.atomic():
                    case_services.transition(case, Status.RESOLVED, actor=actor, now=now)
            except DomainError as exc:
                outcome.refused.append((case.key, exc.message))
                continue
            outcome.done.append(case.key)
    return outcome


def set_cadence(incident: MajorIncident, *, minutes: int, actor, now: dt.datetime) -> MajorIncident:
    """Change the incident's update cadence: the next update is due that long after the last public
    one (or the declaration); if that has passed, the commander is reminded at the next sweep."""
    with transaction.atomic():
        incident = _lock(incident)
        _check_active(incident)
        minutes = check_cadence(minutes, severity=incident.severity)
        last = (
            incident.updates.filter(is_public=True)
            .order_by("-created_at")
            .values_list("created_at", flat=True)
            .first()
        )
        due = (last or incident.declared_at) + dt.timedelta(minutes=minutes)
        incident.cadence_minutes = minutes
        incident.next_update_due_at = due
        incident.reminder_due_at = due
        incident.save(update_fields=["cadence_minutes", "next_update_due_at", "reminder_due_at"])
    return incident


# --- Reminders ----------------------------------------------------------------------------------


def _next_period(start: dt.datetime, cadence: dt.timedelta, *, now: dt.datetime) -> dt.datetime:
    """The first overdue period after ``now``: ``start`` plus a whole number of cadences. Periods a
    stopped beat missed are not reminded one by one: one reminder stands for them."""
    periods = (now - start) // cadence + 1
    return start + periods * cadence


def remind_overdue(*, now: dt.datetime, batch: int = 200) -> int:
    """Remind each active incident's commander when its next update is overdue: once per overdue
    period (the due instant, then each cadence after it without an update). Each reminder is
    claimed by a conditional UPDATE of ``reminder_due_at``, so two workers or two beats never both
    remind; the reminder row, the notification and the e-mail have unique keys as a second guard.
    Returns how many reminders were sent."""
    due = list(
        MajorIncident.objects.filter(
            status=IncidentStatus.ACTIVE, reminder_due_at__isnull=False, reminder_due_at__lte=now
        )
        .order_by("reminder_due_at", "id")
        .values_list("pk", "reminder_due_at", "cadence_minutes")[:batch]
    )
    return sum(1 for row in due if claim_reminder(*row, now=now))


def claim_reminder(pk: int, period_start: dt.datetime, minutes: int, *, now: dt.datetime) -> bool:
    """Claim the overdue period starting at ``period_start`` of incident ``pk`` and remind its
    commander; False when the period was claimed meanwhile (another worker, or an update moved the
    due instant). The claim and the reminder are one transaction."""
    following = _next_period(period_start, dt.timedelta(minutes=minutes), now=now)
    with transaction.atomic():
        claimed = MajorIncident.objects.filter(
            pk=pk, status=IncidentStatus.ACTIVE, reminder_due_at=period_start
        ).update(reminder_due_at=following)
        if not claimed:
            return False
        incident = MajorIncident.objects.select_related("commander").get(pk=pk)
        _remind(incident, period_start=period_start, now=now)
    return True


def _incident_path(incident: MajorIncident) -> str:
    return reverse("incidents:detail", args=[incident.key])


def _remind(incident: MajorIncident, *, period_start: dt.datetime, now: dt.datetime) -> None:
    commander = incident.commander
    IncidentReminder.objects.create(
        incident=incident,
        period_start=period_start,
        update_due_at=incident.next_update_due_at or period_start,
        sent_at=now,
        recipient=commander,
    )
    due = incident.next_update_due_at or period_start
    late = max(now - due, dt.timedelta(0))
    late_minutes = int(late.total_seconds() // 60)
    title = f"{incident.key} customer update overdue by {late_minutes} min: {incident.title}"
    body = (
        f"The next public update on {incident.key} was due {late_minutes} min ago "
        f"(every {incident.cadence_minutes} min for this incident). Write it on the incident's page; "
        "it is posted to every linked case."
    )
    key = f"incident:{incident.pk}:overdue:{period_start.isoformat()}"
    url = _incident_path(incident)
    if not commander.is_active:
        return
    Notification.objects.bulk_create(
        [
            Notification(
                recipient=commander,
                kind="incident_update_overdue",
                title=title[:300],
                body=body,
                url=url,
                created_at=now,
                dedupe_key=key,
            )
        ],
        ignore_conflicts=True,
    )
    wants_mail = (
        StaffProfile.objects.filter(user=commander).values_list("email_notifications", flat=True).first()
    )
    if commander.email and wants_mail is not False:
        outbox.enqueue(
            kind=MailKind.CADENCE_REMINDER,
            to=[commander.email],
            subject=f"[{incident.key}] Customer update overdue",
            body=f"{title}\n\n{body}\n\n{settings.SITE_URL}{url}\n",
            headers={"X-SupportDesk-Incident": incident.key, "X-SupportDesk-Notification": key},
            dedupe_key=key,
            now=now,
        )


def overdue_q(*, now: dt.datetime) -> Q:
    """Active incidents whose next public update is overdue at ``now``."""
    return Q(status=IncidentStatus.ACTIVE, next_update_due_at__lte=now)
