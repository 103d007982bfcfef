"""Every write to a case: one function per action, one transaction each, one timeline event per change.

Callers pass ``now`` (taken once at the edge) and the acting user (``None`` for the system).
Side effects that leave the process (e-mail) run only after the transaction commits.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F

from supportdesk.core import outbox
from supportdesk.core.errors import Conflict, DomainError
from supportdesk.core.files import CheckedUpload, check_upload, removed_on_error
from supportdesk.core.models import MailKind
from supportdesk.core.roles import is_agent, is_manager

from . import lifecycle, search
from . import tags as tags_rule
from .models import (
    Case,
    CaseAttachment,
    CaseEvent,
    Contact,
    EventKind,
    Organisation,
    Severity,
    Status,
    Tag,
    Team,
)
from .signals import case_event_recorded

logger = logging.getLogger(__name__)

SYSTEM = "system"

#: Files on one reply or note. A reply's files travel in one e-mail, whose size mail servers limit
#: (commonly 20-25 MB, and base64 makes files a third bigger): its files together stay below that.
MAX_ATTACHMENTS_PER_EVENT = 10
MAX_REPLY_ATTACHMENT_BYTES = 15 * 1024 * 1024


def _actor_name(actor: User | None) -> str:
    if actor is None:
        return SYSTEM
    return actor.get_full_name() or actor.get_username()


def record_event(
    case: Case,
    kind: str,
    *,
    actor: User | None,
    now: dt.datetime,
    field: str = "",
    old: Any = None,
    new: Any = None,
    body: str = "",
    is_public: bool = False,
    actor_name: str | None = None,
) -> CaseEvent:
    """Append one event to the case timeline and let other apps react within the transaction.

    Other apps (SLA, escalations) call this too, for their own kinds of event.
    """
    event = CaseEvent.objects.create(
        case=case,
        kind=kind,
        actor=actor,
        actor_name=actor_name if actor_name is not None else _actor_name(actor),
        created_at=now,
        field=field,
        old_value=old,
        new_value=new,
        body=body,
        is_public=is_public,
    )
    case_event_recorded.send(sender=Case, case=case, event=event, now=now)
    return event


def _lock(case: Case, *, expected_version: int | None = None) -> Case:
    locked = Case.objects.select_for_update().get(pk=case.pk)
    if expected_version is not None and locked.version != expected_version:
        raise Conflict(
            f"{locked.key} was changed by someone else since you loaded it "
            f"(your version {expected_version}, now {locked.version}). Reload and try again."
        )
    return locked


def _check_can_assign(case: Case, assignee: User | None, *, actor: User | None) -> None:
    """Managers reassign anyone's case; an agent takes unassigned cases or hands on their own."""
    if assignee is not None and not is_agent(assignee):
        raise DomainError(f"{assignee.get_username()} is not a support agent.", field="assignee")
    if actor is None or is_manager(actor):
        return
    if case.assignee_id not in (None, actor.pk):
        raise DomainError(
            "Only a manager can reassign a case that belongs to someone else.", field="assignee"
        )


def create_case(
    *,
    title: str,
    organisation: Organisation,
    requester: Contact,
    actor: User | None,
    now: dt.datetime,
    description: str = "",
    severity: str = Severity.P3,
    team: Team | None = None,
    assignee: User | None = None,
    product_area: str = "",
    tags: Iterable[str] = (),
    cc: Iterable[Contact] = (),
) -> Case:
    """Open a new case in status ``new`` with its ``created`` event."""
    if requester.organisation_id != organisation.pk:
        raise DomainError("The requester must belong to the case's organisation.", field="requester")
    if severity not in Severity.values:
        raise DomainError(f"“{severity}” is not a severity.", field="severity")
    if assignee is not None and not is_agent(assignee):
        raise DomainError(f"{assignee.get_username()} is not a support agent.", field="assignee")
    tag_names = tags_rule.normalise_all(tags)
    with transaction.atomic():
        case = Case.objects.create(
            title=title,
            description=description,
            organisation=organisation,
            requester=requester,
            severity=severity,
            team=team,
            assignee=assignee,
            product_area=product_area,
            created_at=now,
            updated_at=now,
        )
        if tag_names:
            case.tags.set(_tags(tag_names))
        cc_list = [c for c in cc if c.pk != requester.pk]
        if cc_list:
            case.cc.set(cc_list)
        record_event(
            case,
            EventKind.CREATED,
            actor=actor,
            now=now,
            new={
                "title": title,
                "severity": severity,
                "status": Status.NEW,
                "organisation": organisation.name,
                "requester": requester.email,
                "assignee": assignee.get_username() if assignee else None,
                "team": team.slug if team else None,
                "tags": tag_names,
            },
        )
        search.reindex([case.pk])
    return case


def _tags(names: list[str]) -> list[Tag]:
    existing = {t.name: t for t in Tag.objects.filter(name__in=names)}
    for name in names:
        if name not in existing:
            existing[name], _ = Tag.objects.get_or_create(name=name)
    return [existing[n] for n in names]


def transition(
    case: Case,
    to: str,
    *,
    actor: User | None,
    now: dt.datetime,
    expected_version: int | None = None,
    severity: str | None = None,
    assignee: User | None = None,
    team: Team | None = None,
    reason: str = "",
) -> Case:
    """Move ``case`` to status ``to`` or raise IllegalTransition / Conflict.

    Triaging confirms the severity (``severity`` may be given) and needs an owner (``assignee``
    or ``team`` may be given). Records the lifecycle timestamps the metrics use. ``reason`` (why
    a person reopens the case; the forms and the API require it, see ``lifecycle.needs_reason``)
    is kept on the reopen event.
    """
    with transaction.atomic():
        case = _lock(case, expected_version=expected_version)
        old = case.status
        lifecycle.check_transition(old, to, system=actor is None)
        if to == Status.TRIAGED:
            if severity is not None and severity != case.severity:
                _set_severity(case, severity, actor=actor, now=now)
            elif severity is not None or case.severity_confirmed:
                case.severity_confirmed = True
            else:
                raise lifecycle.IllegalTransition(
                    old, to, "Confirm the severity before triaging (choose P1–P4)."
                )
            case.severity_confirmed = True
            if assignee is not None and assignee.pk != case.assignee_id:
                _set_assignee(case, assignee, actor=actor, now=now)
            if team is not None and team.pk != case.team_id:
                _set_team(case, team, actor=actor, now=now)
            if case.assignee_id is None and case.team_id is None:
                raise lifecycle.IllegalTransition(
                    old, to, "Set an owner (an assignee or a team) before triaging."
                )
            if case.triaged_at is None:
                case.triaged_at = now
        if to == Status.RESOLVED:
            case.first_resolved_at = case.first_resolved_at or now
            case.last_resolved_at = now
        if to == Status.CLOSED:
            case.closed_at = now
        case.status = to
        case.version += 1
        case.updated_at = now
        case.save()
        if to == Status.REOPENED:
            case.reopen_count += 1
            case.save(update_fields=["reopen_count"])
            record_event(
                case, EventKind.REOPENED, actor=actor, now=now, old=old, new=to, body=(reason or "").strip()
            )
        record_event(case, EventKind.STATUS_CHANGED, actor=actor, now=now, field="status", old=old, new=to)
    return case


def _set_severity(case: Case, severity: str, *, actor: User | None, now: dt.datetime) -> None:
    if severity not in Severity.values:
        raise DomainError(f"“{severity}” is not a severity.", field="severity")
    old = case.severity
    case.severity = severity
    case.severity_confirmed = True
    case.save(update_fields=["severity", "severity_confirmed"])
    record_event(
        case, EventKind.SEVERITY_CHANGED, actor=actor, now=now, field="severity", old=old, new=severity
    )


def _set_assignee(case: Case, assignee: User | None, *, actor: User | None, now: dt.datetime) -> None:
    _check_can_assign(case, assignee, actor=actor)
    old = case.assignee.get_username() if case.assignee else None
    case.assignee = assignee
    case.save(update_fields=["assignee"])
    new = assignee.get_username() if assignee else None
    record_event(case, EventKind.ASSIGNEE_CHANGED, actor=actor, now=now, field="assignee", old=old, new=new)


def _set_team(case: Case, team: Team | None, *, actor: User | None, now: dt.datetime) -> None:
    old = case.team.slug if case.team else None
    case.team = team
    case.save(update_fields=["team"])
    record_event(
        case,
        EventKind.TEAM_CHANGED,
        actor=actor,
        now=now,
        field="team",
        old=old,
        new=team.slug if team else None,
    )


_UNSET: Any = object()


def update_case(
    case: Case,
    *,
    actor: User | None,
    now: dt.datetime,
    expected_version: int | None = None,
    title: str = _UNSET,
    description: str = _UNSET,
    severity: str = _UNSET,
    assignee: User | None = _UNSET,
    team: Team | None = _UNSET,
    product_area: str = _UNSET,
    tags: Iterable[str] = _UNSET,
) -> Case:
    """Change any of the given fields (omitted ones stay), one event per field that really changed."""
    with transaction.atomic():
        case = _lock(case, expected_version=expected_version)
        if case.status == Status.CLOSED:
            raise DomainError(f"{case.key} is closed and can no longer be changed.")
        changed = False
        words_changed = False  # what case search finds the case by
        if severity is not _UNSET and severity != case.severity:
            _set_severity(case, severity, actor=actor, now=now)
            changed = True
        if assignee is not _UNSET and (assignee.pk if assignee else None) != case.assignee_id:
            _set_assignee(case, assignee, actor=actor, now=now)
            changed = True
        if team is not _UNSET and (team.pk if team else None) != case.team_id:
            _set_team(case, team, actor=actor, now=now)
            changed = True
        for field, value in (("title", title), ("description", description), ("product_area", product_area)):
            if value is _UNSET or value == getattr(case, field):
                continue
            if field == "title" and not value.strip():
                raise DomainError("A case needs a title.", field="title")
            old = getattr(case, field)
            setattr(case, field, value)
            case.save(update_fields=[field])
            record_event(case, EventKind.FIELD_CHANGED, actor=actor, now=now, field=field, old=old, new=value)
            changed = words_changed = True
        if tags is not _UNSET:
            old_names = sorted(case.tags.values_list("name", flat=True))
            # A tag stored before the rule (cases.tags) stays on its case; new ones must follow it.
            new_names = tags_rule.normalise_all(tags, keep=old_names)
            if new_names != old_names:
                case.tags.set(_tags(new_names))
                record_event(
                    case,
                    EventKind.TAGS_CHANGED,
                    actor=actor,
                    now=now,
                    field="tags",
                    old=old_names,
                    new=new_names,
                )
                changed = words_changed = True
        if changed:
            case.version += 1
            case.updated_at = now
            case.save(update_fields=["version", "updated_at"])
        if words_changed:
            search.reindex([case.pk])
    return case


def _check_uploads(uploads: Iterable[Any], *, mailed: bool) -> list[CheckedUpload]:
    """Every upload checked (size, content, type), or one DomainError on ``attachments`` that names
    each refused file and why."""
    files = [u for u in uploads if u]
    if len(files) > MAX_ATTACHMENTS_PER_EVENT:
        raise DomainError(
            f"Attach at most {MAX_ATTACHMENTS_PER_EVENT} files at once (you chose {len(files)}).",
            field="attachments",
        )
    checked, problems = [], []
    for index, upload in enumerate(files):
        try:
            checked.append(check_upload(upload, default_name=f"attachment-{index + 1}"))
        except ValidationError as exc:
            problems.append(f"{upload.name or f'File {index + 1}'}: {' '.join(exc.messages)}")
    if problems:
        raise DomainError(" ".join(problems), field="attachments")
    total = sum(c.size for c in checked)
    if mailed and total > MAX_REPLY_ATTACHMENT_BYTES:
        raise DomainError(
            f"The files come to {total / (1024 * 1024):.1f} MB; a reply's e-mail can carry at most "
            f"{MAX_REPLY_ATTACHMENT_BYTES // (1024 * 1024)} MB of files. Send fewer or smaller ones.",
            field="attachments",
        )
    return checked


def _store_uploads(
    case: Case,
    checked: list[CheckedUpload],
    *,
    actor: User | None,
    now: dt.datetime,
    stored: list[str],
) -> list[CaseAttachment]:
    """The files written to the storage (their names added to ``stored``), as unsaved rows."""
    rows = []
    for upload in checked:
        row = CaseAttachment(
            case=case,
            name=upload.name,
            content_type=upload.content_type,
            size=upload.size,
            uploaded_by=actor,
            uploaded_at=now,
        )
        row.file.save(upload.name, upload.file, save=False)
        stored.append(row.file.name)
        rows.append(row)
    return rows


def _attach(event: CaseEvent, rows: list[CaseAttachment]) -> list[CaseAttachment]:
    for row in rows:
        row.event = event
        row.save()
    return rows


def add_public_reply(
    case: Case, *, body: str, actor: User, now: dt.datetime, attachments: Iterable[Any] = ()
) -> CaseEvent:
    """Reply to the customer: recorded on the timeline, with its e-mail to the requester (and CCs)
    written to the outbox in the same transaction and sent after commit, carrying ``attachments``
    (uploaded files, checked; kept on the event)."""
    if not body.strip():
        raise DomainError("A reply cannot be empty.", field="body")
    checked = _check_uploads(attachments, mailed=True)
    # The files are written before the case is locked (a large upload to a bucket takes a while),
    # and deleted again if the reply is not recorded.
    with removed_on_error() as stored:
        rows = _store_uploads(case, checked, actor=actor, now=now, stored=stored)
        with transaction.atomic():
            case = _lock(case)
            if case.status == Status.CLOSED:
                raise DomainError(f"{case.key} is closed; open a new case to write to the customer again.")
            if case.first_response_at is None:
                case.first_response_at = now
            case.updated_at = now
            case.save(update_fields=["first_response_at", "updated_at"])
            event = record_event(
                case, EventKind.PUBLIC_REPLY, actor=actor, now=now, body=body, is_public=True
            )
            files = _attach(event, rows)
            search.reindex([case.pk])
            outbox.enqueue(
                kind=MailKind.REPLY,
                to=[case.requester.email],
                cc=case.cc.values_list("email", flat=True),
                subject=case_subject(case),
                body=body,
                headers={"X-SupportDesk-Case": case.key},
                case_id=case.pk,
                event_id=event.pk,
                thread=outbox.reply_thread(case_id=case.pk),
                now=now,
                attachments=[
                    {"path": f.file.name, "name": f.name, "content_type": f.content_type} for f in files
                ],
            )
    return event


def add_customer_message(
    case: Case,
    *,
    body: str,
    sender: Contact,
    now: dt.datetime,
    cc: Iterable[Contact] = (),
    details: dict[str, Any] | None = None,
) -> tuple[Case, CaseEvent]:
    """The customer wrote (an e-mail): their words go on the timeline as a ``customer_message``, and the
    case moves as DOMAIN.md says. Returns the case the message landed on and its event.

    * ``waiting_on_customer`` -> ``in_progress`` (the SLA app resumes the paused clocks on that
      transition, in this transaction);
    * ``resolved`` -> ``reopened``, the message being the reason;
    * ``closed``: a new case is opened for the same customer, linked to the old one, and the message
      is its first entry (``follow_up_opened`` on both timelines); a later message about the closed
      case joins that follow-up while it is not closed itself, instead of opening another;
    * any other status: the message is recorded, the status stays.

    CC contacts of the mail are added to the case's CCs. ``details`` (the mail's addresses, its
    Message-ID, the inbound record) are kept on the event.
    """
    with transaction.atomic():
        case = _lock(case)
        if case.status == Status.CLOSED:
            latest = case.follow_ups.exclude(status=Status.CLOSED).order_by("-created_at", "-id").first()
            case = _lock(latest) if latest is not None else open_follow_up(case, sender=sender, now=now)
        event = record_event(
            case,
            EventKind.CUSTOMER_MESSAGE,
            actor=None,
            actor_name=f"{sender.name} <{sender.email}>" if sender.name else sender.email,
            now=now,
            body=body,
            is_public=True,
            new=details or {},
        )
        _add_cc(case, [c for c in cc if c.pk != sender.pk])
        if sender.pk != case.requester_id and not case.cc.filter(pk=sender.pk).exists():
            _add_cc(case, [sender])
        case.updated_at = now
        case.save(update_fields=["updated_at"])
        search.reindex([case.pk])
        if case.status == Status.WAITING_ON_CUSTOMER:
            case = transition(case, Status.IN_PROGRESS, actor=None, now=now)
        elif case.status == Status.RESOLVED:
            case = transition(case, Status.REOPENED, actor=None, now=now)
    return case, event


def _add_cc(case: Case, contacts: list[Contact]) -> None:
    if not contacts:
        return
    existing = set(case.cc.values_list("pk", flat=True))
    new = [c for c in contacts if c.pk not in existing and c.pk != case.requester_id]
    if new:
        case.cc.add(*new)


def open_follow_up(closed: Case, *, sender: Contact, now: dt.datetime) -> Case:
    """A new case (status ``new``) for a customer who wrote about a closed case, linked to it: same
    organisation, team, severity, product area and tags; the requester is whoever wrote."""
    with transaction.atomic():
        requester = sender if sender.organisation_id == closed.organisation_id else closed.requester
        follow_up = create_case(
            title=closed.title,
            organisation=closed.organisation,
            requester=requester,
            actor=None,
            now=now,
            severity=closed.severity,
            team=closed.team,
            product_area=closed.product_area,
            tags=closed.tags.values_list("name", flat=True),
            cc=closed.cc.all(),
        )
        follow_up.follow_up_of = closed
        follow_up.save(update_fields=["follow_up_of"])
        record_event(
            follow_up, EventKind.FOLLOW_UP_OPENED, actor=None, now=now, field="follow_up_of", new=closed.key
        )
        record_event(
            closed, EventKind.FOLLOW_UP_OPENED, actor=None, now=now, field="follow_ups", new=follow_up.key
        )
    return follow_up


def case_subject(case: Case, text: str | None = None) -> str:
    """``[CASE-12] <title>`` (or ``text``), on one line whatever the title holds."""
    return outbox.header_text(f"[{case.key}] {case.title if text is None else text}")


def add_internal_note(
    case: Case, *, body: str, actor: User, now: dt.datetime, attachments: Iterable[Any] = ()
) -> CaseEvent:
    """Write a note for staff only, with ``attachments`` (uploaded files, checked, as internal as the
    note): never e-mailed, never shown to the customer."""
    if not body.strip():
        raise DomainError("A note cannot be empty.", field="body")
    checked = _check_uploads(attachments, mailed=False)
    with removed_on_error() as stored:
        rows = _store_uploads(case, checked, actor=actor, now=now, stored=stored)
        with transaction.atomic():
            case = _lock(case)
            case.updated_at = now
            case.save(update_fields=["updated_at"])
            event = record_event(
                case, EventKind.INTERNAL_NOTE, actor=actor, now=now, body=body, is_public=False
            )
            _attach(event, rows)
            search.reindex([case.pk])
    return event


def auto_close_resolved(*, now: dt.datetime, days: int | None = None, batch: int = 500) -> int:
    """Close cases resolved at least ``days`` ago; returns how many this call closed.

    Safe on several workers at once: each case is claimed with a conditional UPDATE, and only the
    process whose UPDATE changed the row records the event.
    """
    days = settings.CASES_AUTO_CLOSE_DAYS if days is None else days
    cutoff = now - dt.timedelta(days=days)
    closed = 0
    ids = list(
        Case.objects.filter(status=Status.RESOLVED, last_resolved_at__lte=cutoff)
        .order_by("last_resolved_at")
        .values_list("id", flat=True)[:batch]
    )
    for case_id in ids:
        with transaction.atomic():
            claimed = Case.objects.filter(
                pk=case_id, status=Status.RESOLVED, last_resolved_at__lte=cutoff
            ).update(status=Status.CLOSED, closed_at=now, updated_at=now, version=F("version") + 1)
            if claimed != 1:
                continue
            case = Case.objects.get(pk=case_id)
            record_event(
                case,
                EventKind.STATUS_CHANGED,
                actor=None,
                now=now,
                field="status",
                old=Status.RESOLVED,
                new=Status.CLOSED,
            )
            closed += 1
    return closed
