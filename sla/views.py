"""Managers' SLA pages: policies (with the due-time preview) and calendars.

Reads go through ``sla.selectors``, writes through ``sla.services``; their ValidationErrors become
form errors on the re-rendered page (status 400), with what the manager typed kept.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from cases.permissions import can_see_case
from supportdesk.core.decorators import role_required
from supportdesk.core.roles import is_agent, is_manager

from . import calendars, explain, selectors, services
from .forms import CalendarForm, PolicyForm, PolicyFormSet, PreviewForm, ThresholdForm, ThresholdFormSet
from .models import BusinessCalendar, SlaClock

# Managers and admins only: anonymous -> login, anyone else -> 403.
manager_required = role_required(is_manager, "SLA policies and calendars are for managers.")
agent_required = role_required(is_agent, "Cases are for support agents and managers.")


def _apply_errors(form, exc: ValidationError) -> None:
    for field, errors in exc.message_dict.items():
        form.add_error(field if field in form.fields else None, errors)


@manager_required
@require_http_methods(["GET", "POST"])
def policies(request: HttpRequest) -> HttpResponse:
    policy_rows = list(selectors.policy_list(with_ladder=True))
    by_id = {p.pk: p for p in policy_rows}
    status = 200
    if request.method == "POST":
        formset = PolicyFormSet(request.POST, prefix="p")
        if formset.is_valid():
            saved = 0
            for form in formset:
                policy = by_id.get(form.cleaned_data.get("policy_id"))
                if policy is None or not form.has_changed():
                    continue
                data = form.cleaned_data
                try:
                    services.save_policy(
                        policy,
                        tier=policy.tier,
                        severity=policy.severity,
                        business_time=data["business_time"],
                        warning_ratio=data["warning_percent"] / 100,
                        first_response_minutes=data["first_response_minutes"],
                        triage_minutes=data["triage_minutes"],
                        update_cadence_minutes=data["update_cadence_minutes"],
                        resolution_minutes=data["resolution_minutes"],
                    )
                    saved += 1
                except ValidationError as exc:
                    _apply_errors(form, exc)
            if all(not form.errors for form in formset):
                messages.success(request, f"Saved {saved} polic{'y' if saved == 1 else 'ies'}.")
                return redirect("sla:policies")
        messages.error(request, "Some policies could not be saved; see the marked fields.")
        status = 400
    else:
        formset = PolicyFormSet(initial=[PolicyForm.initial_for(p) for p in policy_rows], prefix="p")
    rows = []
    for form in formset:
        policy_id = form["policy_id"].value()
        policy = by_id.get(int(policy_id)) if str(policy_id or "").isdigit() else None
        rows.append((policy, form, selectors.ladder_summary(policy) if policy is not None else []))
    preview_form, preview = _preview(request)
    return render(
        request,
        "sla/policies.html",
        {
            "formset": formset,
            "rows": rows,
            "calendars": selectors.calendar_list(),
            "preview_form": preview_form,
            "preview": preview,
        },
        status=status,
    )


@manager_required
@require_http_methods(["GET", "POST"])
def ladder(request: HttpRequest, pk: int) -> HttpResponse:
    """One policy's warning ladder: the rungs of each target, whom each tells, and the webhook."""
    policy = get_object_or_404(selectors.policy_list(with_ladder=True), pk=pk)
    status = 200
    errors: list[str] = []
    if request.method == "POST":
        formset = ThresholdFormSet(request.POST, prefix="t")
        if formset.is_valid():
            thresholds = [form.threshold for form in formset if form.threshold is not None]
            try:
                services.save_ladder(policy, thresholds=thresholds)
            except ValidationError as exc:
                errors = [m for ms in exc.message_dict.values() for m in ms]
            else:
                messages.success(request, f"Saved the warning ladder of {policy}.")
                return redirect("sla:policies")
        status = 400
    else:
        formset = ThresholdFormSet(initial=ThresholdForm.initial_for(policy), prefix="t")
    return render(
        request,
        "sla/ladder.html",
        {"policy": policy, "formset": formset, "errors": errors, "summary": selectors.ladder_summary(policy)},
        status=status,
    )


def _preview(request: HttpRequest):
    if "severity" not in request.GET:
        return PreviewForm(initial={"severity": "P2"}), None
    form = PreviewForm(request.GET)
    if not form.is_valid():
        return form, None
    organisation = form.cleaned_data["organisation"]
    start = form.cleaned_data["start"]
    if timezone.is_naive(start):
        calendar = calendars.calendar_for_organisation(organisation.pk)
        start = start.replace(tzinfo=ZoneInfo(calendar.time_zone if calendar else "UTC"))
    preview = selectors.preview_due(
        severity=form.cleaned_data["severity"], start=start, organisation=organisation
    )
    return form, preview


def _calendar_form_page(request: HttpRequest, calendar: BusinessCalendar | None) -> HttpResponse:
    status = 200
    if request.method == "POST":
        form = CalendarForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                saved = services.save_calendar(
                    calendar,
                    name=data["name"],
                    time_zone=data["time_zone"].strip(),
                    always_open=data["always_open"],
                    holiday_country=data["holiday_country"],
                    holiday_subdivision=data["holiday_subdivision"],
                    is_default=data["is_default"],
                    opening_hours=data["opening_hours"],
                    custom_holidays=data["holiday_list"],
                    organisations=data["organisations"],
                    now=timezone.now(),
                )
            except ValidationError as exc:
                errors = dict(exc.message_dict)
                if "opening_hours" in errors:
                    # The hours are entered per weekday; the message names the day.
                    form.add_error(None, errors.pop("opening_hours"))
                if errors:
                    _apply_errors(form, ValidationError(errors))
            else:
                messages.success(request, f"Saved the calendar “{saved.name}”.")
                return redirect("sla:policies")
        status = 400
    else:
        form = CalendarForm(initial=CalendarForm.initial_for(calendar) if calendar else {"time_zone": "UTC"})
    return render(request, "sla/calendar_form.html", {"form": form, "calendar": calendar}, status=status)


@manager_required
@require_http_methods(["GET", "POST"])
def calendar_new(request: HttpRequest) -> HttpResponse:
    return _calendar_form_page(request, None)


@manager_required
@require_http_methods(["GET", "POST"])
def calendar_edit(request: HttpRequest, pk: int) -> HttpResponse:
    calendar = get_object_or_404(selectors.calendar_list(), pk=pk)
    return _calendar_form_page(request, calendar)


@manager_required
@require_POST
def calendar_delete(request: HttpRequest, pk: int) -> HttpResponse:
    calendar = get_object_or_404(BusinessCalendar, pk=pk)
    try:
        services.delete_calendar(calendar)
    except ValidationError as exc:
        messages.error(request, " ".join(m for ms in exc.message_dict.values() for m in ms))
        return redirect("sla:calendar-edit", pk=pk)
    messages.success(request, f"Deleted the calendar “{calendar.name}”.")
    return redirect("sla:policies")


@agent_required
@require_safe
def clock_explanation(request: HttpRequest, pk: int) -> HttpResponse:
    """Why one SLA clock of a case is due when it is (linked from each clock on the case page)."""
    row = get_object_or_404(SlaClock.objects.select_related("case", "case__organisation", "policy"), pk=pk)
    if not can_see_case(request.user, row.case):
        raise PermissionDenied(f"You may not see {row.case.key}.")
    now = timezone.now()
    return render(
        request,
        "sla/clock_explanation.html",
        {"case": row.case, "clock": row, "explanation": explain.explain(row, now=now), "now": now},
    )
