"""The major-incident pages: the list, declaring one (from a case or from the queue's ticked cases),
and its page (linked cases, suggested cases, its cadence, its figures, the update history, and the
forms to link cases, post an update, change the cadence and resolve). Writes go through
``incidents.services``; who may do what is ``incidents.permissions``."""

from __future__ import annotations

from collections import Counter

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from cases import queue_views
from cases.models import Case, Severity
from cases.permissions import can_see_case
from supportdesk.core.decorators import role_required
from supportdesk.core.errors import DomainError

from . import permissions, selectors, services
from .forms import CadenceForm, DeclareForm, LinkForm, ResolveForm, UpdateForm
from .models import MajorIncident

agent_required = role_required(
    permissions.can_see_incidents, "Major incidents are for support agents and managers."
)

#: At most this many cases declared with at once (the queue's bulk bar takes as many).
MAX_DECLARED_WITH = 500


def _incident_or_404(key: str) -> MajorIncident:
    incident = selectors.incident_by_key(key)
    if incident is None:
        raise Http404("No such incident.")
    return incident


def _cases_for(request: HttpRequest, keys: list[str]) -> tuple[list[Case], list[tuple[str, str]]]:
    """The cases named by ``keys`` that the viewer may see; the rest with the reason."""
    ids = {key: Case.pk_from_key(key) for key in keys}
    found = {c.pk: c for c in Case.objects.filter(pk__in=[pk for pk in ids.values() if pk is not None])}
    cases, unknown = [], []
    for key, pk in ids.items():
        case = found.get(pk) if pk is not None else None
        if case is None or not can_see_case(request.user, case):
            unknown.append((key, "no such case"))
        else:
            cases.append(case)
    return cases, unknown


def _tell(request: HttpRequest, done: str, outcome: services.Outcome) -> None:
    if outcome.done:
        messages.success(request, f"{done}: {', '.join(outcome.done)}.")
    for key, reason in outcome.refused:
        messages.warning(request, f"{key}: {reason}.")


@agent_required
@require_safe
def incident_list(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "incidents/list.html",
        {"incidents": selectors.incident_list()[:200], "now": timezone.now()},
    )


def _keys(request: HttpRequest) -> list[str]:
    """The case keys a declaration starts with (the queue's ticked cases), each once."""
    raw = request.POST.getlist("keys") if request.method == "POST" else request.GET.getlist("keys")
    keys = [k.strip().upper().partition(":")[0] for k in raw if k.strip()]
    return list(dict.fromkeys(keys))[:MAX_DECLARED_WITH]


def _initial_from(cases: list[Case]) -> dict:
    """Prefill from the cases: the most severe one's title and severity, the commonest product area."""
    first = min(cases, key=lambda c: (Severity.values.index(c.severity), c.created_at))
    areas = Counter(c.product_area for c in cases if c.product_area)
    return {
        "title": first.title,
        "severity": first.severity,
        "product_area": areas.most_common(1)[0][0] if areas else "",
    }


def _declare_page(request, form, *, origin=None, cases=(), unknown=(), status=200) -> HttpResponse:
    return render(
        request,
        "incidents/declare.html",
        {"form": form, "origin": origin, "cases": list(cases), "unknown": list(unknown)},
        status=status,
    )


def declare_form_for(request: HttpRequest, keys: list[str]) -> HttpResponse:
    """The declaration form for the queue's ticked cases (the bulk bar's "Declare…" step)."""
    cases, unknown = _cases_for(request, keys[:MAX_DECLARED_WITH])
    initial = {"commander": request.user.pk, **(_initial_from(cases) if cases else {})}
    return _declare_page(request, DeclareForm(initial=initial), cases=cases, unknown=unknown)


@agent_required
@require_http_methods(["GET", "POST"])
def declare(request: HttpRequest) -> HttpResponse:
    initial = {"commander": request.user.pk}
    origin = None
    key = (request.POST.get("case") if request.method == "POST" else request.GET.get("case")) or ""
    if key:
        found, _ = _cases_for(request, [key.strip().upper()])
        origin = found[0] if found else None
        if origin is not None:
            initial.update(case=origin.key, **_initial_from([origin]))
    cases, unknown = _cases_for(request, _keys(request))
    if cases and origin is None:
        initial.update(_initial_from(cases))
    form = DeclareForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        details = {
            "title": data["title"],
            "severity": data["severity"],
            "product_area": data["product_area"],
            "commander": data["commander"],
            "cadence_minutes": data["cadence_minutes"],
        }
        now = timezone.now()
        try:
            if cases:
                incident, outcome = services.declare_with_cases(
                    cases=cases, actor=request.user, now=now, from_case=origin, **details
                )
            else:
                incident = services.declare(actor=request.user, now=now, from_case=origin, **details)
                outcome = services.Outcome()
        except DomainError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            messages.success(request, f"{incident.key} declared.")
            outcome.refused = list(unknown) + outcome.refused
            _tell(request, "Linked", outcome)
            return redirect("incidents:detail", key=incident.key)
    status = 400 if request.method == "POST" else 200
    return _declare_page(request, form, origin=origin, cases=cases, unknown=unknown, status=status)


def _detail(request: HttpRequest, incident: MajorIncident, *, status: int = 200, **forms) -> HttpResponse:
    now = timezone.now()
    cases = list(selectors.linked_cases(incident))
    rows = queue_views.queue_rows(cases, now=now)
    commands = permissions.can_command(request.user, incident)
    return render(
        request,
        "incidents/detail.html",
        {
            "incident": incident,
            "rows": rows,
            "figures": selectors.incident_figures(incident),
            "cadence": selectors.cadence(incident, now=now),
            "suggestions": selectors.suggested_cases(incident),
            "updates": selectors.updates(incident),
            "can_command": commands,
            "link_form": forms.get("link_form") or LinkForm(),
            "update_form": forms.get("update_form") or UpdateForm(),
            "resolve_form": forms.get("resolve_form") or ResolveForm(),
            "cadence_form": forms.get("cadence_form")
            or CadenceForm(initial={"cadence_minutes": incident.cadence_minutes}),
        },
        status=status,
    )


@agent_required
@require_safe
def detail(request: HttpRequest, key: str) -> HttpResponse:
    return _detail(request, _incident_or_404(key))


@agent_required
@require_POST
def link(request: HttpRequest, key: str) -> HttpResponse:
    incident = _incident_or_404(key)
    if not permissions.can_work(request.user, incident):
        raise PermissionDenied("You may not link cases to this incident.")
    form = LinkForm(request.POST)
    if not form.is_valid():
        return _detail(request, incident, status=400, link_form=form)
    cases, unknown = _cases_for(request, form.cleaned_data["keys"])
    try:
        outcome = services.link_cases(incident, cases, actor=request.user, now=timezone.now())
    except DomainError as exc:
        form.add_error(None, exc.message)
        return _detail(request, incident, status=400, link_form=form)
    outcome.refused = unknown + outcome.refused
    _tell(request, "Linked", outcome)
    return redirect("incidents:detail", key=incident.key)


@agent_required
@require_POST
def post_update(request: HttpRequest, key: str) -> HttpResponse:
    incident = _incident_or_404(key)
    if not permissions.can_work(request.user, incident):
        raise PermissionDenied("You may not post updates on this incident.")
    form = UpdateForm(request.POST)
    if not form.is_valid():
        return _detail(request, incident, status=400, update_form=form)
    data = form.cleaned_data
    try:
        outcome = services.post_update(
            incident, body=data["body"], public=data["public"], actor=request.user, now=timezone.now()
        )
    except DomainError as exc:
        form.add_error("body" if exc.field == "body" else None, exc.message)
        return _detail(request, incident, status=400, update_form=form)
    if data["public"]:
        if not outcome.done and not outcome.refused:
            messages.info(request, "Update kept on the incident: no case is linked yet.")
        _tell(request, "Posted to", outcome)
    else:
        messages.success(request, "Internal update kept on the incident.")
    return redirect("incidents:detail", key=incident.key)


@agent_required
@require_POST
def cadence(request: HttpRequest, key: str) -> HttpResponse:
    incident = _incident_or_404(key)
    if not permissions.can_command(request.user, incident):
        raise PermissionDenied(permissions.COMMAND_REFUSED)
    form = CadenceForm(request.POST)
    if not form.is_valid():
        return _detail(request, incident, status=400, cadence_form=form)
    try:
        incident = services.set_cadence(
            incident, minutes=form.cleaned_data["cadence_minutes"], actor=request.user, now=timezone.now()
        )
    except DomainError as exc:
        form.add_error(None, exc.message)
        return _detail(request, incident, status=400, cadence_form=form)
    messages.success(request, f"Customer updates every {incident.cadence_minutes} minutes from now on.")
    return redirect("incidents:detail", key=incident.key)


@agent_required
@require_POST
def resolve(request: HttpRequest, key: str) -> HttpResponse:
    incident = _incident_or_404(key)
    if not permissions.can_command(request.user, incident):
        raise PermissionDenied(permissions.COMMAND_REFUSED)
    form = ResolveForm(request.POST)
    if not form.is_valid():
        return _detail(request, incident, status=400, resolve_form=form)
    data = form.cleaned_data
    try:
        outcome = services.resolve(
            incident,
            actor=request.user,
            now=timezone.now(),
            closing_message=data["closing_message"],
            resolve_cases=data["resolve_cases"],
        )
    except DomainError as exc:
        form.add_error(None, exc.message)
        return _detail(request, incident, status=400, resolve_form=form)
    messages.success(request, f"{incident.key} resolved.")
    _tell(request, "Resolved", outcome)
    return redirect("incidents:detail", key=incident.key)
