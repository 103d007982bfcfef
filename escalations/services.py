"""Every write to an escalation: one function per action, one transaction each.

Each state change is checked against ``states.ACTIONS``, recorded on the case timeline through
``cases.services.record_event`` and, where the case must follow (submitted -> waiting on
engineering; resolved/declined/withdrawn -> back in progress), moved through
``cases.services.transition``. Webhook deliveries are written in the same transaction and handed
to Celery only after it commits. Callers pass ``now`` (taken once at the edge) and the acting user.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.core.validators import URLValidator
from django.db import IntegrityError, transaction
from django.db.models import F, Max, Q
from django.db.models.functions import Coalesce
from django.urls import NoReverseMatch, reverse
from django.utils.text import slugify

from cases import services as case_services
from cases.models import Case, CaseEvent, Status
from supportdesk.core import audit, outbox
from supportdesk.core import services as core_services
from supportdesk.core.errors import Conflict, DomainError
from supportdesk.core.files import check_upload, removed_on_error
from supportdesk.core.models import MailKind, Notification
from supportdesk.core.roles import is_engineer, is_manager

from . import clocks, permissions, quality, selectors, webhooks
from .events import EscalationEventKind
from .models import (
    ClockKind,
    DeliveryStatus,
    EngineeringTeam,
    EngineerScope,
    Escalation,
    EscalationAttachment,
    InfoRequest,
    WebhookDelivery,
    WebhookEvent,
)
from .states import EDITABLE_STATES, OPEN_STATES, EscalationState, Side, check_action
from .validators import MAX_ATTACHMENTS_PER_ESCALATION

logger = logging.getLogger(__name__)

S = EscalationState

# The package: what support writes and engineering reads. ``tier`` and ``severity`` are prefilled
# from the case; the rest is the agent's.
PACKAGE_FIELDS: tuple[str, ...] = (
    "component",
    "summary",
    "steps_to_reproduce",
    "expected_behaviour",
    "actual_behaviour",
    "product_version",
    "region",
    "tenant",
    "environment",
    "request_ids",
    "first_seen_at",
    "last_seen_at",
    "log_excerpts",
    "users_affected",
    "tier",
    "revenue_at_risk",
    "workaround_available",
    "workaround",
    "hypotheses",
    "severity",
    "severity_rationale",
)

# Where the case stands before it can wait on engineering: the lifecycle needs ``in_progress`` first.
_TO_IN_PROGRESS_FIRST = (Status.TRIAGED, Status.REOPENED, Status.WAITING_ON_CUSTOMER)

_UNSET: Any = object()


# --- Who may act ---------------------------------------------------------------------------------


def _require_support(actor: User | None) -> None:
    permissions.require(actor, side=Side.SUPPORT)


def _require_engineer(actor: User | None, escalation: Escalation) -> None:
    permissions.require(actor, escalation, side=Side.ENGINEERING)


# --- Helpers ---------------------------------------------------------------------------------------


def _lock(escalation: Escalation) -> Escalation:
    # Only the escalation's row: locking the joined team would serialise every escalation of the team.
    return (
        Escalation.objects.select_for_update(of=("self",))
        .select_related("team", "case")
        .get(pk=escalation.pk)
    )


def _rescore(escalation: Escalation) -> quality.Assessment:
    assessment = quality.assess({name: getattr(escalation, name) for name in PACKAGE_FIELDS})
    escalation.quality_score = assessment.score
    escalation.quality_missing = [m.message for m in assessment.missing]
    return assessment


def _validate(escalation: Escalation) -> None:
    """The model's own field checks (lengths, choices, numbers), as a domain error on the first field."""
    try:
        escalation.full_clean(
            exclude=["case", "team", "created_by", "override_by"], validate_constraints=False
        )
    except ValidationError as exc:
        errors = exc.message_dict
        field = next(iter(errors))
        raise DomainError(" ".join(errors[field]), field=None if field == "__all__" else field) from exc


def _check_component(team: EngineeringTeam, component: str) -> None:
    known = team.component_list
    if component and known and component not in known:
        raise DomainError(
            f"{team.name} owns these components: {', '.join(known)}; “{component}” is not one of them.",
            field="component",
        )


def _required_text(value: str, *, field: str, message: str) -> str:
    value = (value or "").strip()
    if not value:
        raise DomainError(message, field=field)
    return value


def _case_events(case: Case, events: Iterable[CaseEvent | int]) -> list[CaseEvent]:
    ids = {e.pk if isinstance(e, CaseEvent) else int(e) for e in events}
    found = list(CaseEvent.objects.filter(case=case, pk__in=ids))
    if len(found) != len(ids):
        raise DomainError(f"Attach only entries of {case.key}'s own timeline.", field="attached_events")
    return found


def _record(
    escalation: Escalation,
    kind: str,
    *,
    actor: User | None,
    now: dt.datetime,
    old: Any = None,
    new: Any = None,
    body: str = "",
) -> None:
    case_services.record_event(
        escalation.case, kind, actor=actor, now=now, field="escalation", old=old, new=new, body=body
    )


def _head(escalation: Escalation) -> str:
    return f"{escalation.key} ({escalation.team.name})"


def _check_case_can_escalate(case: Case) -> None:
    if case.status == Status.NEW:
        raise DomainError(
            f"Triage {case.key} (confirm its severity and owner) before escalating it.", field="state"
        )
    if case.status in (Status.RESOLVED, Status.CLOSED):
        raise DomainError(
            f"{case.key} is {case.get_status_display().lower()}: reopen it before escalating.", field="state"
        )


def _case_waits_on_engineering(case: Case, *, actor: User | None, now: dt.datetime) -> None:
    """Move the case to ``waiting_on_engineering`` (through ``in_progress`` where the lifecycle needs it)."""
    case = Case.objects.get(pk=case.pk)
    if case.status == Status.WAITING_ON_ENGINEERING:
        return
    _check_case_can_escalate(case)
    if case.status in _TO_IN_PROGRESS_FIRST:
        case = case_services.transition(case, Status.IN_PROGRESS, actor=actor, now=now)
    case_services.transition(case, Status.WAITING_ON_ENGINEERING, actor=actor, now=now)


def _case_back_from_engineering(escalation: Escalation, *, actor: User | None, now: dt.datetime) -> None:
    """Back to ``in_progress`` when the case waits on engineering and nothing else is open there."""
    case = Case.objects.get(pk=escalation.case_id)
    if case.status != Status.WAITING_ON_ENGINEERING:
        return
    still_open = (
        Escalation.objects.filter(case=case, state__in=OPEN_STATES).exclude(pk=escalation.pk).exists()
    )
    if not still_open:
        case_services.transition(case, Status.IN_PROGRESS, actor=actor, now=now)


def _tell_case_owner(
    escalation: Escalation, *, title: str, body: str, now: dt.datetime, key: str, actor: User | None
) -> None:
    """An in-app notification for the case's assignee (or whoever wrote the escalation)."""
    case = escalation.case
    recipient = case.assignee if case.assignee_id else escalation.created_by
    if recipient is None or (actor is not None and recipient.pk == actor.pk):
        return
    core_services.notify(
        recipient=recipient,
        kind="escalation",
        title=title,
        body=body,
        url=_path("escalations:detail", escalation.pk, fallback=f"/escalations/{escalation.pk}/"),
        now=now,
        dedupe_key=f"escalation:{escalation.pk}:{key}",
    )


def _tell_engineers(escalation: Escalation, *, what: str, title: str, body: str, now: dt.datetime) -> int:
    """Tell the engineers of the escalation's team: in-app, and one e-mail to them (after commit).

    Once per escalation and ``what``: the notifications' and the outbox's unique dedupe keys decide,
    so a retried or concurrent caller writes nothing twice. Returns how many engineers were told.
    """
    people = selectors.team_engineers(escalation.team_id)
    if not people:
        return 0
    key = f"escalation:{escalation.pk}:engineering:{what}"
    url = _path("escalations:engineer-view", escalation.pk, fallback=f"/escalations/{escalation.pk}/view/")
    Notification.objects.bulk_create(
        [
            Notification(
                recipient=person,
                kind=f"escalation_{what.split(':', 1)[0]}",
                title=title[:300],
                body=body,
                url=url,
                created_at=now,
                dedupe_key=key,
            )
            for person in people
        ],
        ignore_conflicts=True,
    )
    addresses = sorted({person.email for person in people if person.email})
    if addresses:
        outbox.enqueue_many(
            [
                outbox.build(
                    kind=MailKind.ESCALATION_NOTICE,
                    to=addresses,
                    subject=f"[{escalation.key}] {title}",
                    body=f"{body}\n\n{settings.SITE_URL}{url}\n",
                    headers={"X-SupportDesk-Escalation": escalation.key, "X-SupportDesk-Notification": key},
                    dedupe_key=key,
                    now=now,
                )
            ]
        )
    return len(people)


def _headline(escalation: Escalation) -> str:
    case = escalation.case
    return (
        f"{case.key} · {case.organisation.name} ({case.organisation.get_tier_display()}) · "
        f"{escalation.severity} · quality {escalation.quality_score}/{quality.MAX_SCORE}"
    )


def _path(name: str, *args: object, fallback: str) -> str:
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return fallback


# --- Engineering teams (managers) ------------------------------------------------------------------

TEAM_FIELDS = ("name", "slug", "components", "min_quality_score")


def save_team(
    *,
    actor: User,
    team: EngineeringTeam | None = None,
    members: Iterable[User] | None = None,
    **fields: Any,
) -> EngineeringTeam:
    """Create (``team`` None) or change an engineering team and, with ``members``, who works on it.

    A member is an engineer whose scope names the team: they see, act on and are told about its
    escalations. Adding an engineer who had no scope (and saw every team) limits them to their teams.
    """
    if not is_manager(actor):
        raise PermissionDenied("Only managers manage engineering teams.")
    unknown = set(fields) - set(TEAM_FIELDS)
    if unknown:
        raise TypeError(f"Not team fields: {', '.join(sorted(unknown))}")
    with transaction.atomic(), audit.acting_as(actor):
        team = EngineeringTeam.objects.select_for_update().get(pk=team.pk) if team else EngineeringTeam()
        for name, value in fields.items():
            setattr(team, name, value.strip() if isinstance(value, str) else value)
        if not team.slug:
            team.slug = slugify(team.name)
        try:
            team.full_clean()
        except ValidationError as exc:
            errors = exc.message_dict
            field = next(iter(errors))
            raise DomainError(" ".join(errors[field]), field=None if field == "__all__" else field) from exc
        try:
            with transaction.atomic():
                team.save()
        except IntegrityError as exc:
            raise Conflict(f"Another team is already called “{team.name}” or “{team.slug}”.") from exc
        if members is not None:
            _set_team_members(team, members)
    return team


def _set_team_members(team: EngineeringTeam, members: Iterable[User]) -> None:
    wanted = {user.pk: user for user in members}
    for user in wanted.values():
        if not is_engineer(user):
            raise DomainError(f"{user.get_username()} is not an engineer.", field="members")
    current = set(EngineerScope.objects.filter(teams=team).values_list("user_id", flat=True))
    for user_id in wanted.keys() - current:
        scope, _ = EngineerScope.objects.get_or_create(user=wanted[user_id])
        scope.teams.add(team)
    for scope in EngineerScope.objects.filter(teams=team, user_id__in=current - wanted.keys()):
        scope.teams.remove(team)


# --- Support: the package ------------------------------------------------------------------------


def create_draft(
    *,
    case: Case,
    team: EngineeringTeam,
    actor: User,
    now: dt.datetime,
    attached_events: Iterable[CaseEvent | int] = (),
    **fields: Any,
) -> Escalation:
    """Start a package for ``team`` on ``case``, prefilled with the case's tier and severity."""
    _require_support(actor)
    unknown = set(fields) - set(PACKAGE_FIELDS)
    if unknown:
        raise TypeError(f"Not package fields: {', '.join(sorted(unknown))}")
    _required_text(fields.get("summary", ""), field="summary", message="Give the escalation a summary.")
    with transaction.atomic():
        case = Case.objects.select_related("organisation").get(pk=case.pk)
        if case.status in (Status.RESOLVED, Status.CLOSED):
            raise DomainError(
                f"{case.key} is {case.get_status_display().lower()}: reopen it before escalating.",
                field="case",
            )
        already = Escalation.objects.filter(case=case, team=team, state__in=OPEN_STATES).first()
        if already is not None:
            raise DomainError(
                f"{already.key} to {team.name} is still open on {case.key}: answer or withdraw it first.",
                field="team",
            )
        _check_component(team, fields.get("component", ""))
        fields.setdefault("tier", case.organisation.tier)
        fields.setdefault("severity", case.severity)
        escalation = Escalation(
            case=case, team=team, created_by=actor, created_at=now, updated_at=now, state=S.DRAFT, **fields
        )
        _rescore(escalation)
        _validate(escalation)
        escalation.save()
        if attached_events:
            escalation.attached_events.set(_case_events(case, attached_events))
        _record(
            escalation,
            EscalationEventKind.DRAFTED,
            actor=actor,
            now=now,
            new=S.DRAFT,
            body=f"{_head(escalation)}: {escalation.summary}",
        )
    return escalation


def update_package(
    escalation: Escalation,
    *,
    actor: User,
    now: dt.datetime,
    team: EngineeringTeam | None = None,
    attached_events: Iterable[CaseEvent | int] = _UNSET,
    **fields: Any,
) -> Escalation:
    """Change the package while it is a draft or engineering has asked for more; rescored on save."""
    _require_support(actor)
    unknown = set(fields) - set(PACKAGE_FIELDS)
    if unknown:
        raise TypeError(f"Not package fields: {', '.join(sorted(unknown))}")
    with transaction.atomic():
        escalation = _lock(escalation)
        if escalation.state not in EDITABLE_STATES:
            raise DomainError(
                f"{escalation.key} is {escalation.get_state_display().lower()}: the package can be changed "
                "only as a draft or when engineering has asked for more information.",
                field="state",
            )
        changed = []
        if team is not None and team.pk != escalation.team_id:
            if escalation.state != S.DRAFT:
                raise DomainError("Only a draft can move to another team.", field="team")
            escalation.team = team
            changed.append("team")
        for name, value in fields.items():
            if getattr(escalation, name) != value:
                setattr(escalation, name, value)
                changed.append(name)
        if "summary" in fields:
            _required_text(escalation.summary, field="summary", message="Give the escalation a summary.")
        _check_component(escalation.team, escalation.component)
        if attached_events is not _UNSET:
            chosen = _case_events(escalation.case, attached_events)
            if {e.pk for e in chosen} != set(escalation.attached_events.values_list("pk", flat=True)):
                escalation.attached_events.set(chosen)
                changed.append("attached_events")
        if not changed:
            return escalation
        _rescore(escalation)
        escalation.updated_at = now
        _validate(escalation)
        escalation.save()
        if escalation.state != S.DRAFT:
            _record(
                escalation,
                EscalationEventKind.UPDATED,
                actor=actor,
                now=now,
                body=f"{_head(escalation)} package updated: {', '.join(changed).replace('_', ' ')}.",
            )
            _emit(escalation, WebhookEvent.UPDATED, now=now)
    return escalation


def add_attachment(
    escalation: Escalation, *, upload: UploadedFile, actor: User, now: dt.datetime
) -> EscalationAttachment:
    """Store a size-limited file whose content matches an allowed type, on the default storage."""
    _require_support(actor)
    try:
        checked = check_upload(upload)
    except ValidationError as exc:
        raise DomainError(" ".join(exc.messages), field="file") from exc
    with removed_on_error() as stored, transaction.atomic():
        escalation = _lock(escalation)
        if escalation.state not in EDITABLE_STATES:
            raise DomainError(
                f"{escalation.key} is {escalation.get_state_display().lower()}: files can be added "
                "only to a draft or when engineering has asked for more information.",
                field="file",
            )
        if escalation.attachments.count() >= MAX_ATTACHMENTS_PER_ESCALATION:
            raise DomainError(
                f"An escalation can have at most {MAX_ATTACHMENTS_PER_ESCALATION} files.", field="file"
            )
        attachment = EscalationAttachment(
            escalation=escalation,
            name=checked.name,
            content_type=checked.content_type,
            size=checked.size,
            uploaded_by=actor,
            uploaded_at=now,
        )
        attachment.file.save(checked.name, upload, save=False)
        stored.append(attachment.file.name)
        attachment.save()
        escalation.updated_at = now
        escalation.save(update_fields=["updated_at"])
    return attachment


# --- Support: lifecycle ----------------------------------------------------------------------------


def submit(escalation: Escalation, *, actor: User, now: dt.datetime, override_reason: str = "") -> Escalation:
    """Send the package to engineering; below the team's minimum only a manager may, with a reason."""
    _require_support(actor)
    with transaction.atomic():
        escalation = _lock(escalation)
        check_action(escalation.key, escalation.state, "submit")
        _check_case_can_escalate(escalation.case)
        assessment = _rescore(escalation)
        minimum = escalation.team.min_quality_score
        below = assessment.score < minimum
        if below:
            gaps = " ".join(m.message for m in assessment.missing)
            if not is_manager(actor):
                raise DomainError(
                    f"The package scores {assessment.score}/{quality.MAX_SCORE}, below "
                    f"{escalation.team.name}'s minimum of {minimum}. {gaps} "
                    "Or ask a manager to submit it with an override.",
                    field="quality_score",
                )
            override_reason = _required_text(
                override_reason,
                field="override_reason",
                message=f"The package is below {escalation.team.name}'s minimum: say why it goes anyway.",
            )
            escalation.override_by = actor
            escalation.override_reason = override_reason
            escalation.override_at = now
        escalation.state = S.SUBMITTED
        escalation.submitted_at = escalation.submitted_at or now
        escalation.updated_at = now
        try:
            with transaction.atomic():
                escalation.save()
        except IntegrityError as exc:
            raise Conflict(
                f"Another escalation to {escalation.team.name} is already open on {escalation.case.key}."
            ) from exc
        if below:
            _record(
                escalation,
                EscalationEventKind.QUALITY_OVERRIDE,
                actor=actor,
                now=now,
                body=(
                    f"{_head(escalation)} submitted at quality {assessment.score}/{quality.MAX_SCORE}, "
                    f"below the team minimum of {minimum}, with a manager's override: {override_reason}"
                ),
            )
        _record(
            escalation,
            EscalationEventKind.SUBMITTED,
            actor=actor,
            now=now,
            old=S.DRAFT,
            new=S.SUBMITTED,
            body=(
                f"{_head(escalation)}: {escalation.summary}\nQuality {assessment.score}/{quality.MAX_SCORE}."
            ),
        )
        clocks.react(escalation, "submit", now=now)
        _case_waits_on_engineering(escalation.case, actor=actor, now=now)
        _emit(escalation, WebhookEvent.SUBMITTED, now=now)
        _tell_engineers(
            escalation,
            what="submitted",
            title=f"{escalation.key} submitted to {escalation.team.name}: {escalation.summary}",
            body=_headline(escalation),
            now=now,
        )
    return escalation


def answer_info_request(escalation: Escalation, *, answer: str, actor: User, now: dt.datetime) -> Escalation:
    """Answer engineering's questions; the escalation goes back to ``submitted``."""
    _require_support(actor)
    answer = _required_text(answer, field="answer", message="Write the answer to engineering's questions.")
    with transaction.atomic():
        escalation = _lock(escalation)
        check_action(escalation.key, escalation.state, "answer")
        request = escalation.info_requests.filter(answered_at__isnull=True).first()
        if request is not None:
            request.answer = answer
            request.answered_by = actor
            request.answered_at = now
            request.save(update_fields=["answer", "answered_by", "answered_at"])
        _rescore(escalation)
        escalation.state = S.SUBMITTED
        escalation.updated_at = now
        escalation.save()
        _record(
            escalation,
            EscalationEventKind.INFO_PROVIDED,
            actor=actor,
            now=now,
            old=S.NEEDS_INFO,
            new=S.SUBMITTED,
            body=answer,
        )
        clocks.react(escalation, "answer", now=now)
        _case_waits_on_engineering(escalation.case, actor=actor, now=now)
        _emit(escalation, WebhookEvent.INFO_PROVIDED, now=now)
        _tell_engineers(
            escalation,
            what=f"answered:{request.pk if request is not None else escalation.bounce_count}",
            title=f"{escalation.key}: support answered your questions",
            body=answer,
            now=now,
        )
    return escalation


def withdraw(escalation: Escalation, *, actor: User, now: dt.datetime, reason: str = "") -> Escalation:
    """Support takes the escalation back (the problem went away, or it went to the wrong team)."""
    _require_support(actor)
    with transaction.atomic():
        escalation = _lock(escalation)
        check_action(escalation.key, escalation.state, "withdraw")
        old = escalation.state
        escalation.state = S.WITHDRAWN
        escalation.withdraw_reason = (reason or "").strip()
        escalation.finished_at = now
        escalation.updated_at = now
        escalation.save()
        _record(
            escalation,
            EscalationEventKind.WITHDRAWN,
            actor=actor,
            now=now,
            old=old,
            new=S.WITHDRAWN,
            body=f"{_head(escalation)} withdrawn"
            + (f": {escalation.withdraw_reason}" if escalation.withdraw_reason else "."),
        )
        if old != S.DRAFT:
            clocks.react(escalation, "withdraw", now=now)
            _case_back_from_engineering(escalation, actor=actor, now=now)
            _emit(escalation, WebhookEvent.WITHDRAWN, now=now)
    return escalation


# --- Engineering -----------------------------------------------------------------------------------


def _engineering_move(
    escalation: Escalation,
    action: str,
    *,
    actor: User,
    now: dt.datetime,
    expected_updated_at: dt.datetime | None = None,
) -> tuple[Escalation, str]:
    """Lock, check who and whether, and move to the action's target state (not yet saved).

    With ``expected_updated_at`` (the version the engineer's page showed) the action is refused
    with Conflict when the escalation changed since: the engineer acts on what they read.
    """
    escalation = _lock(escalation)
    _require_engineer(actor, escalation)
    target = check_action(escalation.key, escalation.state, action).target
    if expected_updated_at is not None and escalation.updated_at != expected_updated_at:
        raise Conflict(
            f"{escalation.key} changed since you opened it (it is now "
            f"{escalation.get_state_display().lower()}): read it again and retry."
        )
    old = escalation.state
    if target is not None:
        escalation.state = target
    escalation.updated_at = now
    return escalation, old


def acknowledge(
    escalation: Escalation,
    *,
    actor: User,
    now: dt.datetime,
    expected_updated_at: dt.datetime | None = None,
) -> Escalation:
    """Engineering has seen the package and owns it."""
    with transaction.atomic():
        escalation, old = _engineering_move(
            escalation, "acknowledge", actor=actor, now=now, expected_updated_at=expected_updated_at
        )
        escalation.acknowledged_at = escalation.acknowledged_at or now
        escalation.save()
        _record(
            escalation, EscalationEventKind.ACKNOWLEDGED, actor=actor, now=now, old=old, new=escalation.state
        )
        clocks.react(escalation, "acknowledge", now=now)
        _emit(escalation, WebhookEvent.ACKNOWLEDGED, now=now)
    return escalation


def request_info(
    escalation: Escalation,
    *,
    questions: str,
    actor: User,
    now: dt.datetime,
    expected_updated_at: dt.datetime | None = None,
) -> Escalation:
    """A bounce: engineering's questions go to support, who answer before engineering continues."""
    questions = _required_text(questions, field="questions", message="Write the questions for support.")
    with transaction.atomic():
        escalation, old = _engineering_move(
            escalation, "request_info", actor=actor, now=now, expected_updated_at=expected_updated_at
        )
        escalation.bounce_count += 1
        escalation.save()
        request = InfoRequest.objects.create(
            escalation=escalation, questions=questions, asked_by=actor, asked_at=now
        )
        _record(
            escalation,
            EscalationEventKind.INFO_REQUESTED,
            actor=actor,
            now=now,
            old=old,
            new=S.NEEDS_INFO,
            body=questions,
        )
        clocks.react(escalation, "request_info", now=now)
        _tell_case_owner(
            escalation,
            title=f"{escalation.key}: engineering asks for more information",
            body=questions,
            now=now,
            key=f"info:{request.pk}",
            actor=actor,
        )
        _emit(escalation, WebhookEvent.INFO_REQUESTED, now=now)
    return escalation


def start(
    escalation: Escalation,
    *,
    actor: User,
    now: dt.datetime,
    expected_updated_at: dt.datetime | None = None,
) -> Escalation:
    """Engineering is working on it."""
    with transaction.atomic():
        escalation, old = _engineering_move(
            escalation, "start", actor=actor, now=now, expected_updated_at=expected_updated_at
        )
        escalation.save()
        _record(escalation, EscalationEventKind.STARTED, actor=actor, now=now, old=old, new=escalation.state)
        clocks.react(escalation, "start", now=now)
        _emit(escalation, WebhookEvent.STARTED, now=now)
    return escalation


def resolve(
    escalation: Escalation,
    *,
    resolution: str,
    actor: User,
    now: dt.datetime,
    fix_version: str = "",
    expected_updated_at: dt.datetime | None = None,
) -> Escalation:
    """Engineering fixed it; the case goes back to support (in progress) and its owner is told."""
    resolution = _required_text(resolution, field="resolution", message="Describe the resolution.")
    with transaction.atomic():
        escalation, old = _engineering_move(
            escalation, "resolve", actor=actor, now=now, expected_updated_at=expected_updated_at
        )
        escalation.resolution = resolution
        escalation.fix_version = (fix_version or "").strip()
        escalation.finished_at = now
        escalation.save()
        fixed_in = f"Fixed in {escalation.fix_version}. " if escalation.fix_version else ""
        _record(
            escalation,
            EscalationEventKind.RESOLVED,
            actor=actor,
            now=now,
            old=old,
            new=S.RESOLVED,
            body=fixed_in + resolution,
        )
        clocks.react(escalation, "resolve", now=now)
        _case_back_from_engineering(escalation, actor=actor, now=now)
        _tell_case_owner(
            escalation,
            title=f"{escalation.key} resolved by engineering",
            body=fixed_in + resolution,
            now=now,
            key="resolved",
            actor=actor,
        )
        _emit(escalation, WebhookEvent.RESOLVED, now=now)
    return escalation


def decline(
    escalation: Escalation,
    *,
    reason: str,
    actor: User,
    now: dt.datetime,
    expected_updated_at: dt.datetime | None = None,
) -> Escalation:
    """Engineering will not act on it (not a bug, wrong team, won't fix), and says why."""
    reason = _required_text(reason, field="reason", message="Say why the escalation is declined.")
    with transaction.atomic():
        escalation, old = _engineering_move(
            escalation, "decline", actor=actor, now=now, expected_updated_at=expected_updated_at
        )
        escalation.decline_reason = reason
        escalation.finished_at = now
        escalation.save()
        _record(
            escalation,
            EscalationEventKind.DECLINED,
            actor=actor,
            now=now,
            old=old,
            new=S.DECLINED,
            body=reason,
        )
        clocks.react(escalation, "decline", now=now)
        _case_back_from_engineering(escalation, actor=actor, now=now)
        _tell_case_owner(
            escalation,
            title=f"{escalation.key} declined by engineering",
            body=reason,
            now=now,
            key="declined",
            actor=actor,
        )
        _emit(escalation, WebhookEvent.DECLINED, now=now)
    return escalation


_http_url = URLValidator(schemes=["http", "https"])


def link(
    escalation: Escalation,
    *,
    actor: User,
    now: dt.datetime,
    external_key: str = "",
    external_url: str = "",
    expected_updated_at: dt.datetime | None = None,
) -> Escalation:
    """Record engineering's own ticket (e.g. a Jira key and its URL)."""
    external_key = (external_key or "").strip()
    external_url = (external_url or "").strip()
    if not external_key and not external_url:
        raise DomainError("Give the external ticket's key or URL.", field="external_key")
    if external_url:
        try:
            _http_url(external_url)
        except ValidationError as exc:
            raise DomainError("Give an http:// or https:// URL.", field="external_url") from exc
    with transaction.atomic():
        escalation, _old = _engineering_move(
            escalation, "link", actor=actor, now=now, expected_updated_at=expected_updated_at
        )
        old_key = escalation.external_key or None
        escalation.external_key = external_key
        escalation.external_url = external_url
        escalation.save()
        _record(
            escalation,
            EscalationEventKind.LINKED,
            actor=actor,
            now=now,
            old=old_key,
            new=external_key or external_url,
            body=" ".join(p for p in (external_key, external_url) if p),
        )
        _emit(escalation, WebhookEvent.LINKED, now=now)
    return escalation


# --- Acknowledgement overdue ---------------------------------------------------------------------


def ack_overdue_after() -> dt.timedelta:
    """How long a submitted escalation may wait for engineering's acknowledgement."""
    return dt.timedelta(minutes=settings.ESCALATION_ACK_OVERDUE_MINUTES)


def notify_overdue_acknowledgements(*, now: dt.datetime, batch: int = 200) -> int:
    """Tell each team about its escalations waiting for acknowledgement longer than the target.

    The wait counts from the submission, or from support's last answer after a bounce (time in
    ``needs_info`` is support's). Each escalation is told once: a conditional UPDATE of
    ``ack_overdue_notified_at`` claims it, so two sweeps on two workers never both tell; the
    dedupe keys of the notifications and the e-mail are a second guard. Returns how many were told.
    """
    cutoff = now - ack_overdue_after()
    unclaimed = Q(state=S.SUBMITTED, acknowledged_at__isnull=True, ack_overdue_notified_at__isnull=True)
    # An escalation with an acknowledge clock (its team has a target) is told by that clock's breach.
    unclaimed &= ~Q(clocks__kind=ClockKind.ACKNOWLEDGE)
    told = 0
    while True:
        due = list(
            Escalation.objects.filter(unclaimed, submitted_at__lte=cutoff)
            .annotate(waiting_since=Coalesce(Max("info_requests__answered_at"), F("submitted_at")))
            .filter(waiting_since__lte=cutoff)
            .order_by("submitted_at", "id")
            .values_list("pk", flat=True)[:batch]
        )
        claimed_any = False
        for pk in due:
            with transaction.atomic():
                if not Escalation.objects.filter(unclaimed, pk=pk).update(ack_overdue_notified_at=now):
                    continue  # acknowledged meanwhile, or another sweep claimed it
                claimed_any = True
                escalation = Escalation.objects.select_related("team", "case", "case__organisation").get(
                    pk=pk
                )
                minutes = settings.ESCALATION_ACK_OVERDUE_MINUTES
                _tell_engineers(
                    escalation,
                    what="ack_overdue",
                    title=f"{escalation.key} not acknowledged within {minutes} min: {escalation.summary}",
                    body=_headline(escalation),
                    now=now,
                )
                told += 1
        if len(due) < batch or not claimed_any:
            return told


def record_clock_alerts(*, now: dt.datetime, batch: int = 200) -> int:
    """The engineering clocks' due warnings and breaches, each recorded once and told to the team."""

    def tell(escalation: Escalation, *, what: str, title: str) -> None:
        _tell_engineers(escalation, what=what, title=title, body=_headline(escalation), now=now)

    return clocks.record_due_warnings_and_breaches(now=now, tell=tell, batch=batch)


# --- Webhooks -------------------------------------------------------------------------------------

MAX_ATTEMPTS = 8
BACKOFF_BASE_SECONDS = 30
BACKOFF_MAX_SECONDS = 3600
# How long a worker holds a claimed delivery; longer than a request can take.
LOCK_SECONDS = 120
# A pending delivery this late for its next attempt lost its task (broker outage): send it again.
REDELIVER_GRACE = dt.timedelta(minutes=5)


def backoff(attempts: int) -> dt.timedelta:
    """Wait before the next attempt after ``attempts`` failed ones: 30 s, 1 min, 2 min, ... at most 1 h."""
    return dt.timedelta(seconds=min(BACKOFF_BASE_SECONDS * 2 ** max(attempts - 1, 0), BACKOFF_MAX_SECONDS))


def _site_url(path: str) -> str:
    return settings.SITE_URL + path


def webhook_payload(
    escalation: Escalation, *, event: str, delivery_id: str, now: dt.datetime
) -> dict[str, Any]:
    """What a receiver gets: the event, the escalation's headline and where to read the rest."""
    api_path = _path(
        "escalations_api:escalation-detail", escalation.pk, fallback=f"/api/escalations/{escalation.pk}/"
    )
    web_path = _path(
        "escalations:engineer-view", escalation.pk, fallback=f"/escalations/{escalation.pk}/view/"
    )
    return {
        "delivery_id": delivery_id,
        "event": event,
        "occurred_at": now.isoformat(),
        "escalation": {
            "id": escalation.pk,
            "key": escalation.key,
            "state": escalation.state,
            "team": escalation.team.slug,
            "component": escalation.component,
            "summary": escalation.summary,
            "severity": escalation.severity,
            "tier": escalation.tier,
            "case": escalation.case.key,
            "quality_score": escalation.quality_score,
            "bounce_count": escalation.bounce_count,
            "external_key": escalation.external_key,
            "api_url": _site_url(api_path),
            "web_url": _site_url(web_path),
        },
    }


def _emit(escalation: Escalation, event: str, *, now: dt.datetime) -> list[WebhookDelivery]:
    """Write one delivery per interested subscription; they are sent after the transaction commits."""
    subscriptions = [s for s in escalation.team.webhooks.filter(active=True) if s.wants(event)]
    deliveries = []
    for subscription in subscriptions:
        delivery = WebhookDelivery(
            subscription=subscription, escalation=escalation, event=event, created_at=now, next_attempt_at=now
        )
        delivery.payload = webhook_payload(
            escalation, event=event, delivery_id=str(delivery.delivery_id), now=now
        )
        deliveries.append(delivery)
    if deliveries:
        WebhookDelivery.objects.bulk_create(deliveries)
        ids = [str(d.delivery_id) for d in deliveries]
        transaction.on_commit(lambda: enqueue_deliveries(ids))
    return deliveries


def enqueue_deliveries(delivery_ids: Iterable[str]) -> None:
    """Hand deliveries to Celery; if the broker is down they stay pending for ``redeliver_due``."""
    from .tasks import deliver_webhook

    for delivery_id in delivery_ids:
        try:
            deliver_webhook.delay(delivery_id)
        except Exception:  # the row is stored; the sweep sends it when the broker is back
            logger.exception("Could not enqueue webhook delivery %s", delivery_id)


@dataclass(frozen=True)
class AttemptOutcome:
    status: str  # "skipped" (not ours to send), "succeeded", "retrying" or "failed"
    retry_at: dt.datetime | None = None


def attempt_delivery(*, delivery_id: str, now: dt.datetime) -> AttemptOutcome:
    """Send a pending delivery once and record the outcome on its row.

    Safe to run twice and on two workers: the delivery is claimed with a conditional UPDATE
    (pending and not held by another worker); a delivery already succeeded or failed is left alone.
    """
    claimed = (
        WebhookDelivery.objects.filter(delivery_id=delivery_id, status=DeliveryStatus.PENDING)
        .filter(Q(locked_until__isnull=True) | Q(locked_until__lte=now))
        .update(
            locked_until=now + dt.timedelta(seconds=LOCK_SECONDS),
            attempts=F("attempts") + 1,
            last_attempt_at=now,
        )
    )
    if claimed != 1:
        return AttemptOutcome("skipped")
    delivery = WebhookDelivery.objects.select_related("subscription").get(delivery_id=delivery_id)
    subscription = delivery.subscription
    if not subscription.active:
        result = webhooks.Result(None, "The subscription was deactivated.")
        return record_attempt(delivery, result, now=now, final=True)
    result = webhooks.post(
        url=subscription.url,
        body=webhooks.encode(delivery.payload),
        secret=subscription.secret,
        delivery_id=str(delivery.delivery_id),
        event=delivery.event,
        timestamp=int(now.timestamp()),
    )
    return record_attempt(delivery, result, now=now)


def record_attempt(
    delivery: WebhookDelivery, result: webhooks.Result, *, now: dt.datetime, final: bool = False
) -> AttemptOutcome:
    """Write an attempt's outcome: succeeded, failed for good, or pending with the next attempt's time."""
    row = WebhookDelivery.objects.filter(pk=delivery.pk)
    common = {"last_status_code": result.status_code, "last_error": result.error, "locked_until": None}
    if result.ok:
        row.update(status=DeliveryStatus.SUCCEEDED, delivered_at=now, next_attempt_at=None, **common)
        return AttemptOutcome("succeeded")
    if final or delivery.attempts >= MAX_ATTEMPTS:
        row.update(status=DeliveryStatus.FAILED, next_attempt_at=None, **common)
        logger.warning("Webhook delivery %s failed for good: %s", delivery.delivery_id, result.error)
        return AttemptOutcome("failed")
    retry_at = now + backoff(delivery.attempts)
    row.update(next_attempt_at=retry_at, **common)
    return AttemptOutcome("retrying", retry_at=retry_at)


def requeue_delivery(delivery: WebhookDelivery, *, now: dt.datetime) -> bool:
    """Send a failed (or stuck) delivery again, with a fresh set of attempts, under the same id."""
    with transaction.atomic():
        changed = (
            WebhookDelivery.objects.filter(pk=delivery.pk)
            .exclude(status=DeliveryStatus.SUCCEEDED)
            .update(status=DeliveryStatus.PENDING, attempts=0, next_attempt_at=now, locked_until=None)
        )
        if changed:
            delivery_id = str(delivery.delivery_id)
            transaction.on_commit(lambda: enqueue_deliveries([delivery_id]))
    return bool(changed)


def redeliver_due(*, now: dt.datetime, batch: int = 500) -> int:
    """Enqueue pending deliveries whose task was lost; each one is claimed so two sweeps send it once."""
    cutoff = now - REDELIVER_GRACE
    due = list(
        WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=cutoff)
        .filter(Q(locked_until__isnull=True) | Q(locked_until__lte=now))
        .order_by("next_attempt_at")
        .values_list("pk", "next_attempt_at", "delivery_id")[:batch]
    )
    sent = []
    for pk, next_attempt_at, delivery_id in due:
        # Push the next attempt out by the grace period; a second sweep then finds nothing to do.
        if WebhookDelivery.objects.filter(pk=pk, next_attempt_at=next_attempt_at).update(
            next_attempt_at=now + REDELIVER_GRACE
        ):
            sent.append(str(delivery_id))
    enqueue_deliveries(sent)
    return len(sent)
