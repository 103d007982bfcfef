"""The macros pages (list, create, edit, delete) and applying a macro from the case page without
JavaScript. Who may change which macro is decided in ``cases.macros`` and checked per macro here,
on the server: a personal macro by its owner, a shared one by managers."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from supportdesk.core.decorators import AuthenticatedHttpRequest
from supportdesk.core.errors import DomainError

from . import macros
from .forms import MacroForm
from .models import Macro
from .placeholders import PLACEHOLDERS
from .views import _case_or_404, agent_required


def _visible_or_404(request: AuthenticatedHttpRequest, pk: int) -> Macro:
    """A macro the person may use (another agent's personal macro does not exist for them)."""
    macro = macros.visible_macros(request.user).filter(pk=pk).first()
    if macro is None:
        raise Http404("There is no such macro.")
    return macro


def _editable_or_403(request: AuthenticatedHttpRequest, pk: int) -> Macro:
    macro = _visible_or_404(request, pk)
    if not macros.can_edit_macro(request.user, macro):
        raise PermissionDenied("Only managers can change shared macros.")
    return macro


@agent_required
@require_safe
def macro_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    visible = list(macros.visible_macros(request.user))
    rows = [(m, macros.can_edit_macro(request.user, m)) for m in visible]
    return render(
        request,
        "cases/macros.html",
        {
            "personal": [r for r in rows if not r[0].is_shared],
            "shared": [r for r in rows if r[0].is_shared],
            "can_share": macros.can_share_macros(request.user),
            "placeholders": [(name, label) for name, (label, _) in PLACEHOLDERS.items()],
        },
    )


def _initial(macro: Macro) -> dict:
    return {
        "name": macro.name,
        "body": macro.body,
        "shared": macro.is_shared,
        "set_status": macro.set_status,
        "add_tags": ", ".join(macro.add_tags or []),
        "set_team": macro.set_team.slug if macro.set_team else None,
    }


def _form_page(
    request: AuthenticatedHttpRequest, form: MacroForm, macro: Macro | None, *, status: int = 200
) -> HttpResponse:
    return render(
        request,
        "cases/macros_form.html",
        {
            "form": form,
            "macro": macro,
            "placeholders": [(name, label) for name, (label, _) in PLACEHOLDERS.items()],
        },
        status=status,
    )


def _save(request: AuthenticatedHttpRequest, macro: Macro, *, creating: bool) -> HttpResponse:
    can_share = macros.can_share_macros(request.user)
    initial = {"shared": False} if creating else _initial(macro)
    form = MacroForm(request.POST, can_share=can_share, initial=initial)
    if form.is_valid():
        data = form.cleaned_data
        try:
            macros.save_macro(
                macro,
                actor=request.user,
                now=timezone.now(),
                name=data["name"],
                body=data["body"],
                shared=data["shared"],
                set_status=data["set_status"],
                add_tags=data["add_tags"],
                set_team=data["set_team"],
            )
        except macros.MacroPermissionDenied as exc:
            raise PermissionDenied(exc.message) from exc
        except ValidationError as exc:
            for name, problems in exc.message_dict.items():
                for problem in problems:
                    form.add_error(name if name in form.fields else None, problem)
        else:
            messages.success(request, f"Macro “{macro.name}” {'created' if creating else 'saved'}.")
            return redirect("cases:macros")
    messages.error(request, "The macro was not saved: please correct the marked fields.")
    return _form_page(request, form, None if creating else macro, status=400)


@agent_required
@require_http_methods(["GET", "HEAD", "POST"])
def macro_create(request: AuthenticatedHttpRequest) -> HttpResponse:
    if request.method == "POST":
        return _save(request, Macro(), creating=True)
    form = MacroForm(can_share=macros.can_share_macros(request.user))
    return _form_page(request, form, None)


@agent_required
@require_http_methods(["GET", "HEAD", "POST"])
def macro_edit(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    macro = _editable_or_403(request, pk)
    if request.method == "POST":
        return _save(request, macro, creating=False)
    form = MacroForm(can_share=macros.can_share_macros(request.user), initial=_initial(macro))
    return _form_page(request, form, macro)


@agent_required
@require_POST
def macro_delete(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    macro = _editable_or_403(request, pk)
    name = macro.name
    try:
        macros.delete_macro(macro, actor=request.user)
    except macros.MacroPermissionDenied as exc:
        raise PermissionDenied(exc.message) from exc
    messages.success(request, f"Macro “{name}” deleted.")
    return redirect("cases:macros")


@agent_required
@require_POST
def apply_to_case(request: AuthenticatedHttpRequest, key: str) -> HttpResponse:
    """The picker without JavaScript: send the macro's reply as it is and apply its actions."""
    case = _case_or_404(request, key)
    raw = request.POST.get("macro", "")
    macro = None
    if raw.isascii() and raw.isdigit():
        macro = macros.visible_macros(request.user).filter(pk=int(raw)).first()
    if macro is None:
        messages.error(request, "Choose one of the macros offered.")
        return redirect(f"{case.get_absolute_url()}#reply")
    try:
        result = macros.apply_macro(case, macro, actor=request.user, now=timezone.now())
    except DomainError as exc:
        messages.error(request, f"The macro was not applied: {exc.message}")
        return redirect(case)
    if result.reply is None and result.refused and result.refused[0].action == "reply":
        messages.error(request, f"Macro “{macro.name}” was not applied: {result.refused[0].reason}")
        return redirect(case)
    for change in result.changed:
        messages.success(request, f"Macro “{macro.name}”: {change.detail}.")
    for refusal in result.refused:
        messages.error(
            request, f"Macro “{macro.name}”: the {refusal.action} was not changed: {refusal.reason}"
        )
    if not result.changed and not result.refused:
        messages.info(request, f"Macro “{macro.name}” changed nothing.")
    return redirect(case)
