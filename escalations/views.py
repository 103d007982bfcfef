"""The escalation pages: the package form (with its live score), the escalation page with the support
actions, the board, and the read-only page engineers open from a webhook link.

Views read through escalations.selectors and write through escalations.services only, with one
``now`` per request. Domain errors become a message and a form error on the re-rendered page.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from cases import selectors as case_selectors
from cases.models import Case
from cases.views import agent_required
from supportdesk.core.decorators import AuthenticatedHttpRequest, role_required
from supportdesk.core.errors import DomainError
from supportdesk.core.files import download_response
from supportdesk.core.roles import is_agent, is_engineer, is_manager

from . import clocks, permissions, quality, selectors, services
from .forms import (
    ENGINEERING_FORMS,
    AnswerForm,
    AttachmentForm,
    PackageForm,
    SubmitForm,
    TargetsForm,
    TeamForm,
    WithdrawForm,
)
from .models import EngineeringTeam, Escalation
from .states import EDITABLE_STATES, OPEN_STATES, EscalationState, Side, allowed_actions

# Support staff and engineers (each sees what selectors allow): anonymous -> login, others -> 403.
staff_required = role_required(permissions.may_read, "Escalations are for support staff and engineers.")


def _case_or_404(key: str) -> Case:
    case = case_selectors.case_by_key(key)
    if case is None:
        raise Http404(f"No case {key}.")
    return case


def _escalation_or_404(request: AuthenticatedHttpRequest, pk: int) -> Escalation:
    escalation = selectors.escalation_detail(request.user, pk=pk)
    if escalation is None:
        raise Http404(f"No escalation ESC-{pk}.")
    return escalation


def _apply_error(form, error: DomainError) -> None:
    form.add_error(error.field if error.field in form.fields else None, error.message)


# --- The package form ---------------------------------------------------------------------------


def _render_form(request, *, case: Case, form: PackageForm, escalation: Escalation | None, status: int = 200):
    assessment = quality.assess(form.data if form.is_bound else form.initial)
    slug = form.data.get("team") if form.is_bound else None
    score_team = EngineeringTeam.objects.filter(slug=slug).first() if slug else None
    if score_team is None and escalation is not None:
        score_team = escalation.team
    return render(
        request,
        "escalations/form.html",
        {
            "case": case,
            "form": form,
            "escalation": escalation,
            "assessment": assessment,
            "score_team": score_team,
            "teams": EngineeringTeam.objects.all(),
        },
        status=status,
    )


@agent_required
@require_http_methods(["GET", "HEAD", "POST"])
def create(request: AuthenticatedHttpRequest, key: str) -> HttpResponse:
    case = _case_or_404(key)
    if request.method != "POST":
        return _render_form(request, case=case, form=PackageForm(case=case), escalation=None)
    form = PackageForm(request.POST, case=case)
    if form.is_valid():
        data = form.service_kwargs()
        try:
            escalation = services.create_draft(case=case, actor=request.user, now=timezone.now(), **data)
        except DomainError as exc:
            _apply_error(form, exc)
        else:
            messages.success(
                request,
                f"{escalation.key} saved as a draft: quality {escalation.quality_score}/{quality.MAX_SCORE}.",
            )
            return redirect(escalation)
    messages.error(request, "The escalation was not saved: please correct the marked fields.")
    return _render_form(request, case=case, form=form, escalation=None, status=400)


@agent_required
@require_http_methods(["GET", "HEAD", "POST"])
def edit(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    escalation = _escalation_or_404(request, pk)
    case = escalation.case
    if escalation.state not in EDITABLE_STATES:
        messages.info(
            request,
            f"{escalation.key} is {escalation.get_state_display().lower()}: it can no longer be edited.",
        )
        return redirect(escalation)
    if request.method != "POST":
        return _render_form(
            request, case=case, form=PackageForm(case=case, escalation=escalation), escalation=escalation
        )
    form = PackageForm(request.POST, case=case, escalation=escalation)
    if form.is_valid():
        try:
            escalation = services.update_package(
                escalation, actor=request.user, now=timezone.now(), **form.service_kwargs()
            )
        except DomainError as exc:
            _apply_error(form, exc)
        else:
            messages.success(
                request, f"{escalation.key} saved: quality {escalation.quality_score}/{quality.MAX_SCORE}."
            )
            return redirect(escalation)
    messages.error(request, "The escalation was not saved: please correct the marked fields.")
    return _render_form(request, case=case, form=form, escalation=escalation, status=400)


@agent_required
@require_POST
def score(request: AuthenticatedHttpRequest) -> JsonResponse:
    """The live score of the package form as typed (the form's own field names), for escalations.js."""
    result = quality.assess(request.POST).as_dict()
    team = EngineeringTeam.objects.filter(slug=request.POST.get("team", "")).first()
    result["minimum"] = team.min_quality_score if team else None
    result["meets_minimum"] = None if team is None else result["score"] >= team.min_quality_score
    return JsonResponse(result)


# --- The escalation page (support) ----------------------------------------------------------------


def _render_detail(
    request: AuthenticatedHttpRequest,
    escalation: Escalation,
    *,
    status: int = 200,
    submit_form: SubmitForm | None = None,
    answer_form: AnswerForm | None = None,
    withdraw_form: WithdrawForm | None = None,
    attachment_form: AttachmentForm | None = None,
) -> HttpResponse:
    actions = allowed_actions(escalation.state, side=Side.SUPPORT)
    below_minimum = escalation.quality_score < escalation.team.min_quality_score
    return render(
        request,
        "escalations/detail.html",
        {
            "escalation": escalation,
            "case": escalation.case,
            "actions": actions,
            "editable": escalation.state in EDITABLE_STATES,
            "below_minimum": below_minimum,
            "can_override": is_manager(request.user),
            "open_question": selectors.open_info_request(escalation),
            "submit_form": submit_form or SubmitForm(),
            "answer_form": answer_form or AnswerForm(),
            "withdraw_form": withdraw_form or WithdrawForm(),
            "attachment_form": attachment_form or AttachmentForm(),
            "max_score": quality.MAX_SCORE,
        },
        status=status,
    )


@agent_required
@require_GET
def detail(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    return _render_detail(request, _escalation_or_404(request, pk))


def _support_action(
    request: AuthenticatedHttpRequest, pk: int, *, form_class, form_name: str, what: str, perform
):
    escalation = _escalation_or_404(request, pk)
    form = (
        form_class(request.POST, request.FILES) if form_class is AttachmentForm else form_class(request.POST)
    )
    if form.is_valid():
        try:
            message = perform(escalation, form.cleaned_data, timezone.now())
        except DomainError as exc:
            _apply_error(form, exc)
            messages.error(request, f"{what}: {exc.message}")
            status = exc.status_code
        else:
            messages.success(request, message)
            return redirect(escalation)
    else:
        messages.error(request, f"{what}: please correct the marked fields.")
        status = 400
    escalation = _escalation_or_404(request, pk)  # fresh: the refused action may have raced another
    bound_form: dict[str, Any] = {form_name: form}  # the keyword of the form this action posted
    return _render_detail(request, escalation, status=status, **bound_form)


@agent_required
@require_POST
def submit(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    def perform(escalation, data, now):
        escalation = services.submit(
            escalation, actor=request.user, now=now, override_reason=data["override_reason"]
        )
        override = " with a manager's override" if escalation.override_at == now else ""
        return f"{escalation.key} submitted to {escalation.team.name}{override}."

    return _support_action(
        request, pk, form_class=SubmitForm, form_name="submit_form", what="Not submitted", perform=perform
    )


@agent_required
@require_POST
def answer(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    def perform(escalation, data, now):
        escalation = services.answer_info_request(
            escalation, answer=data["answer"], actor=request.user, now=now
        )
        return f"Answer sent: {escalation.key} is back with {escalation.team.name}."

    return _support_action(
        request,
        pk,
        form_class=AnswerForm,
        form_name="answer_form",
        what="The answer was not sent",
        perform=perform,
    )


@agent_required
@require_POST
def withdraw(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    def perform(escalation, data, now):
        escalation = services.withdraw(escalation, actor=request.user, now=now, reason=data["reason"])
        return f"{escalation.key} withdrawn."

    return _support_action(
        request, pk, form_class=WithdrawForm, form_name="withdraw_form", what="Not withdrawn", perform=perform
    )


@agent_required
@require_POST
def upload(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    def perform(escalation, data, now):
        attachment = services.add_attachment(escalation, upload=data["file"], actor=request.user, now=now)
        return f"{attachment.name} attached."

    return _support_action(
        request,
        pk,
        form_class=AttachmentForm,
        form_name="attachment_form",
        what="Not attached",
        perform=perform,
    )


@staff_required
@require_GET
def attachment(request: AuthenticatedHttpRequest, pk: int, attachment_id: int) -> FileResponse:
    """A file of an escalation the viewer may see; always a download, with the verified type."""
    escalation = _escalation_or_404(request, pk)
    item = get_object_or_404(escalation.attachments.all(), pk=attachment_id)
    return download_response(item.file, name=item.name, content_type=item.content_type)


# --- Board and engineer view ------------------------------------------------------------------------


@staff_required
@require_GET
def board(request: AuthenticatedHttpRequest) -> HttpResponse:
    team = (
        EngineeringTeam.objects.filter(slug=request.GET.get("team", "")).first()
        if request.GET.get("team")
        else None
    )
    state = request.GET.get("state") or None
    if state not in OPEN_STATES:
        state = None
    data = selectors.board(request.user, team=team, state=state)
    now = timezone.now()
    rows = [(e, selectors.age(e, now=now)) for e in data.rows]
    drafts = []
    if is_agent(request.user):
        drafts = list(
            selectors.escalation_list(request.user)
            .filter(state=EscalationState.DRAFT, created_by=request.user)
            .order_by("-updated_at", "-id")[:20]
        )
    return render(
        request,
        "escalations/board.html",
        {
            "board": data,
            "rows": rows,
            "drafts": drafts,
            "chosen_team": team,
            "chosen_state": state,
            "all_teams": EngineeringTeam.objects.all(),
            "is_support": is_agent(request.user),
            "can_manage_teams": is_manager(request.user),
        },
    )


def _engineering_forms(escalation: Escalation, actions: list[str], bound=None) -> dict:
    """One form per engineering action the state allows, keyed by action; ``bound`` replaces its own."""
    forms = {
        name: ENGINEERING_FORMS[name](prefix=name, escalation=escalation)
        for name in actions
        if name in ENGINEERING_FORMS
    }
    if bound is not None and bound.prefix in forms:
        forms[bound.prefix] = bound
    return forms


def _render_engineer_view(
    request: AuthenticatedHttpRequest, escalation: Escalation, *, status: int = 200, bound=None
):
    actions = permissions.actions_for(request.user, escalation, side=Side.ENGINEERING)
    return render(
        request,
        "escalations/engineer_view.html",
        {
            "escalation": escalation,
            "case": escalation.case,
            "events": getattr(escalation, selectors.ATTACHED_EVENTS),
            "open_question": selectors.open_info_request(escalation),
            "is_support": is_agent(request.user),
            "is_engineer": is_engineer(request.user),
            "actions": actions,
            "action_forms": _engineering_forms(escalation, actions, bound),
            "max_score": quality.MAX_SCORE,
        },
        status=status,
    )


@staff_required
@require_GET
def engineer_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """The package and the case summary as engineering sees them, with the actions the state allows."""
    return _render_engineer_view(request, _escalation_or_404(request, pk))


def _acknowledge(escalation, data, *, actor, now):
    escalation = services.acknowledge(escalation, actor=actor, now=now, **data)
    return f"{escalation.key} acknowledged: {escalation.team.name} owns it."


def _request_info(escalation, data, *, actor, now):
    escalation = services.request_info(escalation, actor=actor, now=now, **data)
    return f"{escalation.key} sent back to support with your questions."


def _start(escalation, data, *, actor, now):
    escalation = services.start(escalation, actor=actor, now=now, **data)
    return f"Work on {escalation.key} started."


def _link(escalation, data, *, actor, now):
    escalation = services.link(escalation, actor=actor, now=now, **data)
    return f"{escalation.key} linked to {escalation.external_key or escalation.external_url}."


def _resolve(escalation, data, *, actor, now):
    escalation = services.resolve(escalation, actor=actor, now=now, **data)
    return f"{escalation.key} resolved; the case is back with support."


def _decline(escalation, data, *, actor, now):
    escalation = services.decline(escalation, actor=actor, now=now, **data)
    return f"{escalation.key} declined; the case is back with support."


# The engineer page's actions: URL segment -> (action name, the service call, what a refusal says).
ENGINEERING_ACTIONS = {
    "acknowledge": ("acknowledge", _acknowledge, "Not acknowledged"),
    "request-info": ("request_info", _request_info, "The questions were not sent"),
    "start": ("start", _start, "Not started"),
    "link": ("link", _link, "Not linked"),
    "resolve": ("resolve", _resolve, "Not resolved"),
    "decline": ("decline", _decline, "Not declined"),
}


@staff_required
@require_POST
def engineer_action(request: AuthenticatedHttpRequest, pk: int, action: str) -> HttpResponse:
    """One engineering action from the engineer's page, through the same service (and rules) as the API."""
    if action not in ENGINEERING_ACTIONS:
        raise Http404(f"No action {action}.")
    name, perform, what = ENGINEERING_ACTIONS[action]
    if not permissions.has_side(request.user, Side.ENGINEERING):
        raise PermissionDenied(permissions.refusal(Side.ENGINEERING))
    escalation = _escalation_or_404(request, pk)
    form = ENGINEERING_FORMS[name](request.POST, prefix=name)
    if form.is_valid():
        try:
            message = perform(escalation, form.service_kwargs(), actor=request.user, now=timezone.now())
        except DomainError as exc:
            _apply_error(form, exc)
            messages.error(request, f"{what}: {exc.message}")
            status = exc.status_code
        else:
            messages.success(request, message)
            return redirect("escalations:engineer-view", pk=escalation.pk)
    else:
        messages.error(request, f"{what}: please correct the marked fields.")
        status = 400
    escalation = _escalation_or_404(request, pk)  # fresh: the refused action may have raced another
    return _render_engineer_view(request, escalation, status=status, bound=form)


# --- Engineering teams (managers) -----------------------------------------------------------------

manager_required = role_required(is_manager, "Engineering teams are managed by managers.")


@manager_required
@require_GET
def team_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    return render(request, "escalations/teams.html", {"teams": selectors.teams_overview()})


def _team_form(request: AuthenticatedHttpRequest, *, team: EngineeringTeam | None) -> HttpResponse:
    if request.method != "POST":
        form = TeamForm(instance=team)
        return render(request, "escalations/team_form.html", {"form": form, "team": team})
    form = TeamForm(request.POST, instance=team or EngineeringTeam())
    if form.is_valid():
        try:
            saved = services.save_team(actor=request.user, team=team, **form.service_kwargs())
        except DomainError as exc:
            _apply_error(form, exc)
        else:
            messages.success(request, f"{saved.name} {'saved' if team else 'created'}.")
            return redirect("escalations:teams")
    messages.error(request, "The team was not saved: please correct the marked fields.")
    return render(request, "escalations/team_form.html", {"form": form, "team": team}, status=400)


@manager_required
@require_http_methods(["GET", "HEAD", "POST"])
def team_create(request: AuthenticatedHttpRequest) -> HttpResponse:
    return _team_form(request, team=None)


@manager_required
@require_http_methods(["GET", "HEAD", "POST"])
def team_edit(request: AuthenticatedHttpRequest, slug: str) -> HttpResponse:
    return _team_form(request, team=get_object_or_404(EngineeringTeam, slug=slug))


@staff_required
@require_http_methods(["GET", "HEAD", "POST"])
def team_targets(request: AuthenticatedHttpRequest, slug: str) -> HttpResponse:
    """A team's engineering targets: managers change them; agents and the team's engineers read them."""
    team = get_object_or_404(EngineeringTeam.objects.select_related("calendar"), slug=slug)
    if not is_agent(request.user) and not selectors.engineer_may_see_team(request.user, team.pk):
        raise Http404("No such team.")
    may_edit = is_manager(request.user)
    if request.method == "POST" and not may_edit:
        raise PermissionDenied("Only managers set engineering targets.")
    form = TargetsForm(request.POST if request.method == "POST" else None, team=team)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                clocks.save_targets(team, actor=request.user, **form.service_kwargs())
            except DomainError as exc:
                _apply_error(form, exc)
            else:
                messages.success(request, f"{team.name}'s targets saved.")
                return redirect("escalations:team-targets", slug=team.slug)
        messages.error(request, "The targets were not saved: please correct the marked fields.")
        status = 400
    context = {"team": team, "form": form, "may_edit": may_edit, "targets": selectors.team_targets(team)}
    return render(request, "escalations/team_targets.html", context, status=status)
