"""The queue's other pages: saved views (save, rename, re-share, delete) and bulk changes.

Writes go through ``cases.saved_views`` and ``cases.bulk``; every view checks the role and, per
object, who may change what (``saved_views.can_edit``).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST, require_safe

from supportdesk.core.decorators import AuthenticatedHttpRequest, role_required
from supportdesk.core.errors import DomainError
from supportdesk.core.roles import is_agent

from . import bulk, saved_views
from .models import SavedView, Status, Team
from .queue_views import DEFAULT_COLUMNS, QUEUE_COLUMNS

agent_required = role_required(is_agent, "The queue is for support agents and managers.")


# --- Saved views ------------------------------------------------------------------------------------


class SavedViewForm(forms.Form):
    name = forms.CharField(max_length=80, label="Name")
    team = forms.ModelChoiceField(
        queryset=Team.objects.none(),
        to_field_name="slug",
        required=False,
        empty_label="Only me",
        label="Share with",
    )
    columns = forms.MultipleChoiceField(
        choices=list(QUEUE_COLUMNS.items()),
        widget=forms.CheckboxSelectMultiple,
        required=False,
        label="Columns",
    )
    query = forms.CharField(required=False, max_length=2000, widget=forms.HiddenInput)
    position = forms.IntegerField(min_value=0, max_value=10_000, required=False, label="Position")

    def __init__(self, *args, user, view: SavedView | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        teams = saved_views.shareable_teams(user)
        if view is not None and view.team_id:
            # Keep the view's team choosable even when the editor could not share with it today.
            teams = Team.objects.filter(pk__in=teams.values("pk")) | Team.objects.filter(pk=view.team_id)
        team_field = self.fields["team"]
        assert isinstance(team_field, forms.ModelChoiceField)
        team_field.queryset = teams.distinct().order_by("name")
        prefix = view.pk if view is not None else "new"
        self.auto_id = f"id_view_{prefix}_%s"

    def add_problems(self, error: saved_views.SavedViewError) -> None:
        problems: list[tuple[str | None, list[str]]] = [*error.problems.items()] or [
            (error.field, [error.message])
        ]
        for field, messages_of_field in problems:
            for message in messages_of_field:
                self.add_error(field if field in self.fields and field != "query" else None, message)


def _visible_or_404(request: AuthenticatedHttpRequest, pk: int) -> SavedView:
    view = saved_views.views_by_id(request.user, [pk]).get(pk)
    if view is None:
        raise Http404("There is no such saved view (or it is not shared with you).")
    return view


def _editable_or_403(request: AuthenticatedHttpRequest, pk: int) -> SavedView:
    view = _visible_or_404(request, pk)
    if not saved_views.can_edit(request.user, view):
        raise PermissionDenied("Only the view's owner (or a manager, for a team's view) can change it.")
    return view


def _next(request: AuthenticatedHttpRequest, default: str) -> str:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return target
    return default


def _manage_page(
    request: AuthenticatedHttpRequest,
    *,
    new_form: SavedViewForm | None = None,
    status: int = 200,
    forms_by_id=None,
):
    views = list(saved_views.visible_views(request.user))
    live = saved_views.counts({str(v.pk): v.query for v in views}, request=request)
    forms_by_id = forms_by_id or {}
    rows = []
    for view in views:
        editable = saved_views.can_edit(request.user, view)
        form = forms_by_id.get(view.pk)
        if form is None and editable:
            form = SavedViewForm(
                user=request.user,
                view=view,
                initial={
                    "name": view.name,
                    "team": view.team.slug if view.team else "",
                    "columns": view.columns or list(DEFAULT_COLUMNS),
                    "query": view.query,
                    "position": view.position,
                },
            )
        rows.append(
            {
                "view": view,
                "count": live.get(str(view.pk)),
                "editable": editable,
                "form": form,
                "url": saved_views.queue_url(view.query, view=view),
            }
        )
    context = {
        "rows": rows,
        "new_form": new_form,
        "column_labels": QUEUE_COLUMNS,
    }
    return render(request, "cases/saved_views.html", context, status=status)


@agent_required
@require_safe
def saved_view_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    return _manage_page(request)


@agent_required
@require_POST
def saved_view_create(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = SavedViewForm(request.POST, user=request.user)
    if form.is_valid():
        data = form.cleaned_data
        try:
            view = saved_views.create_view(
                owner=request.user,
                name=data["name"],
                query=data["query"],
                columns=data["columns"],
                team=data["team"],
                now=timezone.now(),
            )
        except saved_views.SavedViewError as exc:
            form.add_problems(exc)
        else:
            shared = f", shared with {view.team.name}" if view.team else ""
            messages.success(request, f"Saved the view “{view.name}”{shared}.")
            return redirect(saved_views.queue_url(view.query, view=view))
    messages.error(request, "The view was not saved: please correct the marked fields.")
    return _manage_page(request, new_form=form, status=400)


@agent_required
@require_POST
def saved_view_update(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    view = _editable_or_403(request, pk)
    form = SavedViewForm(request.POST, user=request.user, view=view)
    if form.is_valid():
        data = form.cleaned_data
        changes = {"name": data["name"], "columns": data["columns"], "team": data["team"]}
        if data["position"] is not None:
            changes["position"] = data["position"]
        try:
            view = saved_views.update_view(view, actor=request.user, now=timezone.now(), **changes)
        except saved_views.SavedViewError as exc:
            form.add_problems(exc)
        else:
            messages.success(request, f"Saved the view “{view.name}”.")
            return redirect(_next(request, reverse("cases:saved_views")))
    messages.error(request, "The view was not changed: please correct the marked fields.")
    return _manage_page(request, forms_by_id={view.pk: form}, status=400)


@agent_required
@require_POST
def saved_view_filters(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """Keep the queue's current filters and sort in the view."""
    view = _editable_or_403(request, pk)
    try:
        view = saved_views.update_view(
            view, actor=request.user, now=timezone.now(), query=request.POST.get("query", "")
        )
    except saved_views.SavedViewError as exc:
        messages.error(request, f"The view was not changed: {exc.message}")
        return redirect(saved_views.queue_url(view.query, view=view))
    messages.success(request, f"The view “{view.name}” now keeps these filters.")
    return redirect(saved_views.queue_url(view.query, view=view))


@agent_required
@require_POST
def saved_view_delete(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    view = _editable_or_403(request, pk)
    name = view.name
    saved_views.delete_view(view, actor=request.user)
    messages.success(request, f"Deleted the view “{name}”.")
    return redirect(_next(request, reverse("cases:saved_views")))


# --- Bulk changes ------------------------------------------------------------------------------------

#: The form field holding each action's value (the bar shows the one for the chosen action).
BULK_VALUE_FIELDS = {
    "assign": "assignee",
    "team": "team",
    "status": "status",
    "severity": "severity",
    "add_tags": "tags",
    "remove_tags": "tags",
    "macro": "macro",
}


def _bulk_label(action: str, value) -> str:
    spec = bulk.actions()[action]
    if spec.describe is not None:
        return spec.describe(value)
    if action == "assign":
        shown = "nobody (unassigned)" if value is None else (value.get_full_name() or value.get_username())
    elif action == "team":
        shown = value.name if value else "no team"
    elif action == "status":
        shown = Status(value).label
    elif action == "macro":
        shown = f"“{value.name}”"
    elif isinstance(value, list):
        shown = ", ".join(value)
    else:
        shown = str(value)
    return f"{spec.label} {shown}"


@agent_required
@require_POST
def bulk_change(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Apply one action to the ticked cases (or to every case matching the queue's filters) and show,
    per case, what changed and what was refused and why."""
    filter_query = request.POST.get("filter_query", "")
    back = saved_views.queue_url(saved_views.normalise_query(filter_query))
    action = request.POST.get("action", "")
    context: dict[str, Any] = {"back": back, "result": None, "error": None}
    try:
        spec = bulk.actions().get(action)
        if spec is None:
            raise bulk.BulkRefused("Choose what to change.", field="action")
        raw = request.POST.get(BULK_VALUE_FIELDS.get(action, spec.value_field), "")
        value = bulk.parse_value(action, raw, actor=request.user)
        if request.POST.get("all_matching"):
            if errors := saved_views.query_errors(filter_query):
                raise bulk.BulkRefused("The filters were not understood: " + " ".join(errors), field="filter")
            targets = bulk.targets_from_filter(filter_query, request=request)
        else:
            targets = bulk.targets_from_keys(request.POST.getlist("keys"))
    except DomainError as exc:
        context["error"] = exc.message
        messages.error(request, f"Nothing was changed: {exc.message}")
        return render(request, "cases/bulk_result.html", context, status=400)
    if spec.step is not None and (answer := spec.step(request, targets, value)) is not None:
        return answer  # the action asks for more first (e.g. a form of its own)
    context["result"] = bulk.apply(
        targets, action, value, actor=request.user, now=timezone.now(), label=_bulk_label(action, value)
    )
    return render(request, "cases/bulk_result.html", context)
