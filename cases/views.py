"""The agents' browser UI: the queue, the case page with its actions, and the new-case form.

Views read through cases.selectors and write through cases.services only, with one ``now`` per
request. Domain errors become a message and a form error on the re-rendered page (400, or 409 for
a conflict), with what the person typed kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from supportdesk.core import logcontext
from supportdesk.core import selectors as core_selectors
from supportdesk.core.decorators import role_required
from supportdesk.core.errors import Conflict, DomainError
from supportdesk.core.files import download_response
from supportdesk.core.models import OutboundMessage
from supportdesk.core.roles import is_agent, is_manager

from . import bulk, extensions, macros, queue_render, queue_views, saved_views, selectors, services
from .filters import CaseFilter
from .forms import CaseCreateForm, CaseFieldsForm, NoteForm, ReplyForm, TransitionForm, staff_label
from .models import Case, CaseAttachment, CaseEvent, EventKind, Severity, Status, Team, Tier
from .organisations import create_contact
from .pagination import InvalidCursor, paginate
from .permissions import can_see_case, can_see_internal_notes

QUEUE_PAGE_SIZE = 50
QUEUE_DATETIME_FIELDS = {"created_at", "updated_at"}
_TRUE = ("true", "True", "1")  # what the filters' yes/no fields read as yes


# Logged-in agents, managers and admins only: anonymous -> login, anyone else -> 403.
agent_required = role_required(is_agent, "Cases are for support agents and managers.")


# --- Queue -------------------------------------------------------------------------------------


def _queue_filter(request: HttpRequest) -> CaseFilter:
    data = saved_views.filter_data(request.GET)
    case_filter = CaseFilter(data, queryset=selectors.queue_cases(), request=request)
    form = case_filter.form
    for name in ("status", "severity"):
        field = form.fields[name]
        field.widget = forms.CheckboxSelectMultiple(choices=field.choices)
    # Short labels: the pills in the table say "P1", so does the filter.
    form.fields["severity"].widget.choices = [(s.value, s.value) for s in Severity]
    for name in ("organisation", "assignee", "team"):
        form.fields[name].empty_label = "Any"
    # The options and the bulk bar show names only (no password hash or e-mail read per agent).
    assignee = form.fields["assignee"]
    assignee.queryset = assignee.queryset.only("username", "first_name", "last_name")
    form.fields["tier"].choices = [("", "Any"), *Tier.choices]
    return case_filter


def _queue_page(
    queryset, *, rows_from, ordering: list[str], cursor: str | None, datetime_fields=QUEUE_DATETIME_FIELDS
):
    return paginate(
        queryset,
        ordering=ordering,
        cursor=cursor,
        page_size=QUEUE_PAGE_SIZE,
        datetime_fields=datetime_fields,
        rows_from=rows_from,
    )


@agent_required
@require_safe
def queue(request: HttpRequest) -> HttpResponse:
    case_filter = _queue_filter(request)
    form = case_filter.form
    extra_orderings = extensions.queue_orderings()
    sort = request.GET.get("sort", "")
    if sort not in selectors.QUEUE_ORDERINGS and sort not in extra_orderings:
        sort = next(iter(extra_orderings), selectors.DEFAULT_QUEUE_ORDERING)
    queryset = case_filter.qs
    # The page's ids come from the filtered queryset; its rows are then read by id from the plain
    # one, without the filters' joins and conditions again.
    rows_from = selectors.queue_cases()
    datetime_fields = QUEUE_DATETIME_FIELDS
    if sort in extra_orderings:
        extra = extra_orderings[sort]
        ordering = extra.ordering
        queryset = extra.annotate(queryset)
        rows_from = extra.annotate(rows_from)
        datetime_fields = datetime_fields | extra.datetime_fields
    else:
        ordering = selectors.QUEUE_ORDERINGS[sort][1]
    # What other apps' badges read (no query of its own).
    rows_from = extensions.annotate_queue(rows_from)
    if not form.is_valid():
        messages.warning(request, "Some filters were not understood and are ignored; see the marked fields.")
    cursor = request.GET.get("cursor") or None
    try:
        page = _queue_page(
            queryset, rows_from=rows_from, ordering=ordering, cursor=cursor, datetime_fields=datetime_fields
        )
    except (InvalidCursor, ValueError, TypeError, OverflowError) as exc:
        # A tampered or outdated page link: say so and show the first page.
        default = "That page link is not valid; showing the first page."
        messages.warning(request, str(exc) if isinstance(exc, InvalidCursor) else default)
        cursor = None
        page = _queue_page(
            queryset, rows_from=rows_from, ordering=ordering, cursor=None, datetime_fields=datetime_fields
        )
    data = form.data
    now = timezone.now()
    current_view = _current_saved_view(request)
    quick = _quick_view(request)
    query = saved_views.normalise_query(request.GET)
    sort_choices = [(o.name, o.label) for o in extra_orderings.values()] + [
        (name, label) for name, (label, _) in selectors.QUEUE_ORDERINGS.items()
    ]
    rows = queue_views.queue_rows(
        page.items, now=now, tags=selectors.tag_names(case.pk for case in page.items)
    )
    columns = queue_views.shown_columns(current_view.columns if current_view else None)
    return render(
        request,
        "cases/queue.html",
        {
            "filter_form": form,
            "page": page,
            "cases": page.items,
            "rows": rows,
            "columns": columns,
            # The rows' markup is written in Python (cases/queue_render.py): the page's hot loop.
            "rows_html": queue_render.render_rows(
                rows,
                columns=columns,
                with_clocks=bool(extensions.queue_columns()),
                badges=extensions.queue_badges(),
            ),
            "column_labels": queue_views.QUEUE_COLUMNS,
            "column_heads": [(name, queue_views.QUEUE_COLUMNS[name]) for name in columns],
            "more_filters_active": queue_views.more_filters_active(request.GET),
            "sort": sort,
            "sort_choices": sort_choices,
            "sort_label": dict(sort_choices).get(sort, ""),
            "mine_checked": data.get("mine") in _TRUE,
            "unassigned_checked": data.get("unassigned") in _TRUE,
            "quick": quick,
            # Quick and saved views with their live counts (one query for all of them).
            "nav": saved_views.navigation(request, quick=quick, current=current_view),
            "saved_view": current_view,
            "saved_view_editable": bool(current_view and saved_views.can_edit(request.user, current_view)),
            "saved_view_changed": bool(current_view and current_view.query != query),
            "current_query": query,
            "shareable_teams": [(t.slug, t.name) for t in saved_views.shareable_teams(request.user)],
            # The bulk action bar's choices as (value, label) pairs; the people and teams are the
            # filter's own rows (evaluated once for its options and these lists).
            "bulk_actions": [(name, action.label) for name, action in bulk.actions().items()],
            # Other apps' actions with a choice of value (e.g. which incident): (name, field, choices).
            "bulk_extra_values": [
                (name, action.value_field, action.label, action.choices(request.user))
                for name, action in extensions.bulk_actions().items()
                if action.choices is not None
            ],
            "extra_filters": [form[name] for name in extensions.queue_filters()],
            "bulk_max": bulk.MAX_CASES,
            "bulk_macros": [
                (m.pk, f"{m.name} (shared)" if m.is_shared else m.name)
                for m in macros.visible_macros(request.user).select_related(None).only("name", "owner")
            ],
            "bulk_assignees": [
                ("me", "Me"),
                ("", "Nobody (unassign)"),
                *((u.username, u.get_full_name() or u.username) for u in form.fields["assignee"].queryset),
            ],
            "bulk_teams": [*((t.slug, t.name) for t in form.fields["team"].queryset), ("", "No team")],
            "bulk_statuses": [(v, label) for v, label in Status.choices if v not in ("closed", "reopened")],
            "severities": [(s.value, s.value) for s in Severity],
            "paged": bool(cursor),
        },
    )


@agent_required
@require_safe
def queue_clocks(request: HttpRequest, key: str) -> HttpResponse:
    """Every clock of one case, for the queue's "next due" cell when it is opened (other apps'
    queue columns, e.g. the SLA clocks)."""
    case = _case_or_404(request, key)
    return render(
        request,
        "cases/_queue_clocks.html",
        {"case": case, "extra_columns": queue_views.extra_column_data(extensions.queue_columns(), [case])},
    )


def _current_saved_view(request: HttpRequest):
    """The saved view the URL names (``view=<id>``) when the user may see it, else None."""
    raw = request.GET.get("view", "")
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        return None
    view = saved_views.views_by_id(request.user, [int(raw)]).get(int(raw))
    if view is None:
        messages.info(request, "That saved view is not there any more (or not shared with you).")
    return view


def _quick_view(request: HttpRequest) -> str:
    """Which quick link the current URL is, for aria-current."""
    keys = {
        k
        for k, v in request.GET.items()
        if v and k not in ("sort", "cursor", "view") and (k, v) != ("state", "open")
    }
    if not keys:
        return "open"
    if keys == {"mine"} and request.GET.get("mine") == "true":
        return "mine"
    if keys == {"unassigned"} and request.GET.get("unassigned") == "true":
        return "unassigned"
    return ""


# --- Case page ---------------------------------------------------------------------------------


def _case_or_404(request: HttpRequest, key: str) -> Case:
    case = selectors.case_by_key(key)
    if case is None:
        raise Http404(f"No case {key}.")
    if not can_see_case(request.user, case):
        raise PermissionDenied(f"You may not see {case.key}.")
    logcontext.bind(case_key=case.key)
    return case


@dataclass
class TimelineEntry:
    event: CaseEvent
    label: str
    summary: str
    body: str
    delivery: OutboundMessage | None = None  # the e-mail a public reply sent, with its state
    attachments: list[CaseAttachment] = field(default_factory=list)
    # A case this entry refers to (a follow-up and the case it follows up), shown as a link.
    linked_key: str = ""
    # A customer's mail: who wrote, to and cc whom, the files that were refused and why.
    mail: dict[str, Any] | None = None


_FIELD_LABELS = {"title": "Title", "description": "Description", "product_area": "Product area"}
_SHORT = 160


def _fmt(value: Any) -> str:
    if value is None or value == "" or value == []:
        return "—"
    if isinstance(value, list):
        return ", ".join(_fmt(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_fmt(v)}" for k, v in value.items())
    return str(value)


class _Describer:
    """Readable sentences for timeline events; people and teams by name, statuses by label."""

    def __init__(self, *, people: dict[str, str], teams: dict[str, str]) -> None:
        self.people = people
        self.teams = teams
        self.statuses = dict(Status.choices)

    def status(self, value: Any) -> str:
        return self.statuses.get(value, _fmt(value))

    def person(self, username: Any) -> str:
        if not username:
            return "Unassigned"
        return self.people.get(username, str(username))

    def team(self, slug: Any) -> str:
        if not slug:
            return "No team"
        return self.teams.get(slug, str(slug))

    def entry(self, event: CaseEvent) -> TimelineEntry:
        kind, old, new = event.kind, event.old_value, event.new_value
        label = EventKind(kind).label if kind in EventKind.values else kind.replace("_", " ").capitalize()
        summary = ""
        body = event.body
        if kind == EventKind.CREATED:
            details = new if isinstance(new, dict) else {}
            parts = [f"severity {details['severity']}"] if details.get("severity") else []
            if details.get("requester"):
                parts.append(f"requested by {details['requester']}")
            summary = "Opened the case" + (f" ({', '.join(parts)})" if parts else "")
        elif kind == EventKind.PUBLIC_REPLY:
            label = "Public reply to the customer"
        elif kind == EventKind.INTERNAL_NOTE:
            label = "Internal note"
        elif kind == EventKind.STATUS_CHANGED:
            summary = f"Status: {self.status(old)} → {self.status(new)}"
        elif kind == EventKind.SEVERITY_CHANGED:
            summary = f"Severity: {_fmt(old)} → {_fmt(new)}"
        elif kind == EventKind.ASSIGNEE_CHANGED:
            summary = f"Assignee: {self.person(old)} → {self.person(new)}"
        elif kind == EventKind.TEAM_CHANGED:
            summary = f"Team: {self.team(old)} → {self.team(new)}"
        elif kind == EventKind.TAGS_CHANGED:
            old_set, new_set = set(old or []), set(new or [])
            changes = []
            if added := sorted(new_set - old_set):
                changes.append("added " + ", ".join(added))
            if removed := sorted(old_set - new_set):
                changes.append("removed " + ", ".join(removed))
            summary = "Tags: " + ("; ".join(changes) or f"{_fmt(old)} → {_fmt(new)}")
        elif kind == EventKind.FIELD_CHANGED:
            name = _FIELD_LABELS.get(event.field, event.field.replace("_", " ").capitalize() or "Field")
            if len(_fmt(old)) + len(_fmt(new)) <= _SHORT:
                summary = f"{name}: {_fmt(old)} → {_fmt(new)}"
            else:
                summary = f"{name} changed"
        elif kind == EventKind.REOPENED:
            # The reason is the event's body (required from a person since it was asked for);
            # a customer's mail that reopens the case is the entry just before it.
            if body:
                summary = "Reopened the case. Reason:"
            elif event.actor_id is None and not event.imported:
                summary = "Reopened the case: the customer wrote again after it was resolved"
            else:
                summary = "Reopened the case (no reason recorded)"
        elif kind == EventKind.CUSTOMER_MESSAGE:
            return TimelineEntry(
                event=event, label="Customer", summary="", body=body, mail=_mail_details(event)
            )
        elif kind == EventKind.FOLLOW_UP_OPENED:
            linked = str(new or "")
            if event.field == "follow_up_of":
                summary = "Opened as a follow-up of"
                label = "Follow-up of a closed case"
            else:
                summary = "The customer wrote again after this case closed: follow-up case"
                label = "Follow-up case opened"
            return TimelineEntry(
                event=event,
                label=label,
                summary=summary,
                body=body,
                linked_key=linked if _is_key(linked) else "",
            )
        elif registered := extensions.event_label(kind):
            label = registered
            if (old is not None or new is not None) and not body:
                summary = f"{_fmt(old)} → {_fmt(new)}" if old is not None else _fmt(new)
        elif old is not None or new is not None:
            # Kinds recorded by other apps (SLA, escalations): generic but readable.
            subject = event.field.replace("_", " ") if event.field else kind.replace("_", " ")
            summary = f"{subject}: {_fmt(old)} → {_fmt(new)}"
        return TimelineEntry(event=event, label=label, summary=summary, body=body)


def _is_key(value: str) -> bool:
    return Case.pk_from_key(value) is not None


def _mail_details(event: CaseEvent) -> dict[str, Any]:
    """What the timeline shows of a customer's mail, from the details inbound mail kept on the event."""
    details = event.new_value if isinstance(event.new_value, dict) else {}

    def addresses(key: str) -> list[str]:
        value = details.get(key) or []
        return [str(v) for v in value] if isinstance(value, list) else [str(value)]

    refused = [
        {"name": str(item.get("name", "")), "reason": str(item.get("reason", ""))}
        for item in details.get("refused_attachments") or []
        if isinstance(item, dict)
    ]
    inbound_id = details.get("inbound_id")
    return {
        "sender": event.actor_name or str(details.get("from", "")),
        "from": str(details.get("from", "")),
        "to": addresses("to"),
        "cc": addresses("cc"),
        "subject": str(details.get("subject", "")),
        "html_only": bool(details.get("html_only")),
        "refused": refused,
        "inbound_id": inbound_id if isinstance(inbound_id, int) else None,
    }


def _render_case(
    request: HttpRequest,
    case: Case,
    *,
    status: int = 200,
    reply_form: ReplyForm | None = None,
    note_form: NoteForm | None = None,
    transition_form: TransitionForm | None = None,
    fields_form: CaseFieldsForm | None = None,
) -> HttpResponse:
    closed = case.status == Status.CLOSED
    people = {u.get_username(): staff_label(u) for u in selectors.assignable_users()}
    teams = dict(Team.objects.values_list("slug", "name"))
    describer = _Describer(people=people, teams=teams)
    events = list(
        selectors.case_timeline(case=case, include_internal=can_see_internal_notes(request.user, case))
    )
    deliveries = core_selectors.deliveries_by_event(
        event_ids=[e.pk for e in events if e.kind == EventKind.PUBLIC_REPLY]
    )
    timeline = [describer.entry(e) for e in events]
    for item in timeline:
        item.delivery = deliveries.get(item.event.pk)
        item.attachments = list(item.event.attachments.all())  # prefetched with the timeline
    context = {
        "case": case,
        "tags": [t.name for t in case.tags.all()],
        "timeline": timeline,
        "follow_ups": selectors.follow_ups(case=case),
        "closed": closed,
        "reply_form": reply_form or ReplyForm(case=case),
        "note_form": note_form or NoteForm(),
        "transition_form": transition_form or TransitionForm(case=case),
        "fields_form": fields_form or CaseFieldsForm(case=case),
        "macro_picker": _macro_picker(request, case),
        "can_assign_me": can_assign_me(request.user, case),
        "head_panels": extensions.case_panels("head"),
        "main_panels": extensions.case_panels("main"),
        "side_panels": extensions.case_panels("side"),
    }
    return render(request, "cases/detail.html", context, status=status)


@dataclass
class PickerMacro:
    """A macro as the case page's picker offers it: its text already filled in for this case."""

    macro: Any
    text: str
    status: str
    status_label: str
    tags: list[str]
    team: str


def _macro_picker(request: HttpRequest, case: Case) -> list[PickerMacro]:
    if case.status == Status.CLOSED:
        return []
    labels = dict(Status.choices)
    return [
        PickerMacro(
            macro=m,
            text=macros.render_macro(m, case, agent=request.user),
            status=m.set_status,
            status_label=labels.get(m.set_status, ""),
            tags=list(m.add_tags or []),
            team=m.set_team.name if m.set_team_id else "",
        )
        for m in macros.visible_macros(request.user)
    ]


def can_assign_me(user, case: Case) -> bool:
    """Whether the page offers "Assign to me" (the service decides again when it is pressed)."""
    if case.status == Status.CLOSED or case.assignee_id == user.pk:
        return False
    return case.assignee_id is None or is_manager(user)


@agent_required
@require_safe
def detail(request: HttpRequest, key: str) -> HttpResponse:
    return _render_case(request, _case_or_404(request, key))


_ACTION_FORMS: dict[str, type[forms.Form]] = {
    "reply_form": ReplyForm,
    "note_form": NoteForm,
    "transition_form": TransitionForm,
    "fields_form": CaseFieldsForm,
}


def _refused(
    request: HttpRequest, key: str, *, form_name: str, what: str, error: DomainError | None = None
) -> HttpResponse:
    """Re-render the case page with the form as typed and the reason it was refused."""
    case = _case_or_404(request, key)  # fresh: someone else may have changed it
    data = request.POST.copy()
    if isinstance(error, Conflict) and "version" in data:
        # The person has been told about the other change and sees the current values beside
        # the form, which keeps what they typed: saving it again is now a deliberate choice.
        data["version"] = str(case.version)
    form = _ACTION_FORMS[form_name](data, request.FILES, case=case)
    form.is_valid()
    if error is not None:
        form.add_error(error.field if error.field in form.fields else None, error.message)
        messages.error(request, f"{what}: {error.message}")
        status = error.status_code
    else:
        messages.error(request, f"{what}: please correct the marked fields.")
        status = 400
    if request.FILES:
        # A page sent back cannot hold on to files (browsers never prefill a file input).
        messages.info(request, "Choose the files again before sending: they are not kept on a refused form.")
    return _render_case(request, case, status=status, **{form_name: form})


@agent_required
@require_POST
def reply(request: HttpRequest, key: str) -> HttpResponse:
    """Send the reply; then, when chosen, move the case to the chosen status (a refused move leaves
    the reply sent and says why). With the picker's macro, its tags and team are applied too."""
    case = _case_or_404(request, key)
    form = ReplyForm(request.POST, request.FILES, case=case)
    what = "The reply was not sent"
    if not form.is_valid():
        return _refused(request, key, form_name="reply_form", what=what)
    data = form.cleaned_data
    now = timezone.now()
    if data["macro"]:
        macro = macros.visible_macros(request.user).filter(pk=data["macro"]).first()
        if macro is None:
            error = DomainError("That macro does not exist or is not yours to use.", field="macro")
            return _refused(request, key, form_name="reply_form", what=what, error=error)
        result = macros.apply_macro_parts(
            case,
            macro,
            actor=request.user,
            now=now,
            body=data["body"],
            status=data["status"],
            attachments=data["attachments"],
        )
        if result.reply is None:
            reason = result.refused[0].reason if result.refused else "The reply is empty."
            return _refused(request, key, form_name="reply_form", what=what, error=DomainError(reason))
        _reply_sent(request, case, len(data["attachments"]), macro=macro.name)
        for change in result.changed:
            if change.action != "reply":
                messages.success(request, f"Macro “{macro.name}”: {change.detail}.")
        for refusal in result.refused:
            messages.error(request, f"The {refusal.action} was not changed: {refusal.reason}")
        return redirect(case)
    try:
        services.add_public_reply(
            case, body=data["body"], attachments=data["attachments"], actor=request.user, now=now
        )
    except DomainError as exc:
        return _refused(request, key, form_name="reply_form", what=what, error=exc)
    _reply_sent(request, case, len(data["attachments"]))
    if data["status"]:
        try:
            case = services.transition(case, data["status"], actor=request.user, now=now)
        except DomainError as exc:
            messages.error(request, f"The reply was sent, but the status was not changed: {exc.message}")
        else:
            messages.success(request, f"{case.key} is now {case.get_status_display().lower()}.")
    return redirect(case)


def _reply_sent(request: HttpRequest, case: Case, files: int, *, macro: str = "") -> None:
    source = f" (macro “{macro}”)" if macro else ""
    messages.success(
        request,
        f"Reply{_files_phrase(files)}{source} recorded and queued for delivery to {case.requester.email}.",
    )


@agent_required
@require_POST
def note(request: HttpRequest, key: str) -> HttpResponse:
    case = _case_or_404(request, key)
    form = NoteForm(request.POST, request.FILES)
    what = "The note was not saved"
    if not form.is_valid():
        return _refused(request, key, form_name="note_form", what=what)
    try:
        data = form.cleaned_data
        services.add_internal_note(
            case, body=data["body"], attachments=data["attachments"], actor=request.user, now=timezone.now()
        )
    except DomainError as exc:
        return _refused(request, key, form_name="note_form", what=what, error=exc)
    messages.success(request, f"Internal note{_files_phrase(len(data['attachments']))} added.")
    return redirect(case)


def _files_phrase(count: int) -> str:
    return f" with {count} file{'s' if count != 1 else ''}" if count else ""


@agent_required
@require_safe
def attachment(request: HttpRequest, key: str, attachment_id: int) -> FileResponse:
    """A file on the case's timeline, for whoever may see it (an internal note's only for those who
    may read internal notes); always a download with the verified type."""
    case = _case_or_404(request, key)
    item = selectors.case_attachment(
        case=case, attachment_id=attachment_id, include_internal=can_see_internal_notes(request.user, case)
    )
    if item is None:
        raise Http404("There is no such file on this case.")
    return download_response(item.file, name=item.name, content_type=item.content_type)


@agent_required
@require_POST
def transition(request: HttpRequest, key: str) -> HttpResponse:
    case = _case_or_404(request, key)
    form = TransitionForm(request.POST, case=case)
    what = "The status was not changed"
    if not form.is_valid():
        return _refused(request, key, form_name="transition_form", what=what)
    to = form.cleaned_data["to"]
    try:
        case = services.transition(case, to, actor=request.user, now=timezone.now(), **form.service_kwargs())
    except DomainError as exc:  # IllegalTransition and Conflict are DomainErrors
        return _refused(request, key, form_name="transition_form", what=what, error=exc)
    messages.success(request, f"{case.key} is now {case.get_status_display().lower()}.")
    return redirect(case)


@agent_required
@require_POST
def update(request: HttpRequest, key: str) -> HttpResponse:
    case = _case_or_404(request, key)
    form = CaseFieldsForm(request.POST, case=case)
    what = "The changes were not saved"
    if not form.is_valid():
        return _refused(request, key, form_name="fields_form", what=what)
    old_version = case.version
    try:
        case = services.update_case(case, actor=request.user, now=timezone.now(), **form.service_kwargs())
    except DomainError as exc:
        return _refused(request, key, form_name="fields_form", what=what, error=exc)
    if case.version == old_version:
        messages.info(request, "Nothing changed.")
    else:
        messages.success(request, f"{case.key} updated.")
    return redirect(case)


@agent_required
@require_POST
def assign_me(request: HttpRequest, key: str) -> HttpResponse:
    """Take the case: the assign service decides (an agent takes an unassigned case; a manager any)."""
    case = _case_or_404(request, key)
    version = request.POST.get("version", "")
    expected = int(version) if version.isascii() and version.isdigit() else None
    if case.assignee_id == request.user.pk:
        messages.info(request, f"{case.key} is already yours.")
        return redirect(case)
    try:
        case = services.update_case(
            case, assignee=request.user, actor=request.user, now=timezone.now(), expected_version=expected
        )
    except DomainError as exc:
        messages.error(request, f"{case.key} was not assigned to you: {exc.message}")
        return _render_case(request, _case_or_404(request, key), status=exc.status_code)
    messages.success(request, f"{case.key} is now assigned to you.")
    return redirect(case)


# --- New case ----------------------------------------------------------------------------------


@agent_required
@require_http_methods(["GET", "HEAD", "POST"])
def create(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return render(request, "cases/create.html", {"form": CaseCreateForm()})
    form = CaseCreateForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        now = timezone.now()
        try:
            # The new contact exists only if the case does.
            with transaction.atomic():
                requester = data["requester"] or create_contact(
                    organisation=data["organisation"],
                    name=data["new_contact_name"],
                    email=data["new_contact_email"],
                    actor=request.user,
                )
                case = services.create_case(
                    title=data["title"],
                    description=data["description"],
                    organisation=data["organisation"],
                    requester=requester,
                    severity=data["severity"],
                    team=data["team"],
                    assignee=data["assignee"],
                    product_area=data["product_area"],
                    tags=data["tags"],
                    actor=request.user,
                    now=now,
                )
        except DomainError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            messages.success(request, f"{case.key} created.")
            return redirect(case)
    messages.error(request, "The case was not created: please correct the marked fields.")
    return render(request, "cases/create.html", {"form": form}, status=400)
