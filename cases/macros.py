"""Macros: reusable replies with placeholders, and the actions applied with them.

The placeholders are filled by a small substitution of our own, never by the Django template
engine: a macro is text a person typed, and a template engine would let it reach attributes, tags
and filters. Only the names in ``PLACEHOLDERS`` exist; a macro naming another is refused when it
is saved (``cases.placeholders.check_placeholders``, the model field's validator).

Applying a macro goes through the case services (the reply, the tags and team, the status with
its lifecycle checks); each change is its own timeline event, and a refused action is reported in
the result instead of undoing the others.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q, QuerySet

from supportdesk.core.errors import DomainError
from supportdesk.core.roles import is_agent, is_manager

from . import services
from . import tags as tags_rule
from .models import Case, CaseEvent, Macro, Status, Team
from .placeholders import render_text


def render_macro(macro: Macro, case: Case, *, agent: User | None) -> str:
    """The macro's reply for ``case`` as ``agent`` would send it."""
    return render_text(macro.body, case, agent=agent)


# --- Who may use and change macros ----------------------------------------------------------------


def visible_macros(user) -> QuerySet[Macro]:
    """The macros ``user`` may use: the shared ones and their own; none for non-agents."""
    if not is_agent(user):
        return Macro.objects.none()
    return (
        Macro.objects.filter(Q(owner__isnull=True) | Q(owner=user))
        .select_related("set_team", "owner")
        .order_by("name", "id")
    )


def can_use_macro(user, macro: Macro) -> bool:
    return is_agent(user) and (macro.owner_id is None or macro.owner_id == user.pk)


def can_edit_macro(user, macro: Macro) -> bool:
    """A personal macro by its owner only; a shared one by managers."""
    if not is_agent(user):
        return False
    if macro.owner_id is None:
        return is_manager(user)
    return macro.owner_id == user.pk


def can_share_macros(user) -> bool:
    return is_manager(user)


# --- Writes ----------------------------------------------------------------------------------------


class MacroPermissionDenied(DomainError):
    status_code = 403
    code = "permission_denied"


def save_macro(
    macro: Macro,
    *,
    actor: User,
    now: dt.datetime,
    name: str,
    body: str,
    shared: bool,
    set_status: str = "",
    add_tags: Iterable[str] = (),
    set_team: Team | None = None,
) -> Macro:
    """Create (``macro`` unsaved) or change a macro, checked as a whole (placeholders, names,
    status) and against who may write it; raises MacroPermissionDenied or ValidationError."""
    if shared and not can_share_macros(actor):
        raise MacroPermissionDenied("Only managers can create or change shared macros.", field="shared")
    if macro.pk is not None and not can_edit_macro(actor, macro):
        raise MacroPermissionDenied(
            "Only managers can change shared macros."
            if macro.is_shared
            else "Only its owner can change a personal macro."
        )
    macro.name = name.strip()
    macro.body = body
    macro.set_status = set_status or ""
    macro.add_tags = tags_rule.normalise_all(add_tags, keep=macro.add_tags or [], field="add_tags")
    macro.set_team = set_team
    if macro.pk is None:
        macro.created_by = actor
        macro.created_at = now
        macro.owner = None if shared else actor
    elif shared != macro.is_shared:
        # Sharing a personal macro (or taking a shared one back) is a manager's decision.
        if not can_share_macros(actor):
            raise MacroPermissionDenied("Only managers can share a macro.", field="shared")
        macro.owner = None if shared else actor
    macro.updated_at = now
    if not (macro.body.strip() or macro.has_actions):
        raise ValidationError({"body": ["Write the reply, or choose at least one action."]})
    macro.full_clean()
    macro.save()
    return macro


def delete_macro(macro: Macro, *, actor: User) -> None:
    if not can_edit_macro(actor, macro):
        raise MacroPermissionDenied(
            "Only managers can delete shared macros."
            if macro.is_shared
            else "Only its owner can delete a personal macro."
        )
    macro.delete()


# --- Applying a macro to a case --------------------------------------------------------------------


#: The parts of applying a macro that a change or a refusal names.
PART_CHOICES = [("reply", "reply"), ("tags", "tags"), ("team", "team"), ("status", "status")]


@dataclass
class MacroChange:
    action: str  # "reply", "tags", "team" or "status"
    detail: str


@dataclass
class MacroRefusal:
    action: str
    reason: str


@dataclass
class MacroResult:
    """What applying a macro to one case did: each change, and each action refused with why."""

    case: Case
    macro: Macro
    reply: CaseEvent | None = None
    changed: list[MacroChange] = field(default_factory=list)
    refused: list[MacroRefusal] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.refused

    def summary(self) -> str:
        parts = [c.detail for c in self.changed]
        parts += [f"not done — {r.action}: {r.reason}" for r in self.refused]
        return "; ".join(parts) or "nothing to do"


def apply_macro(
    case: Case,
    macro: Macro,
    *,
    actor: User,
    now: dt.datetime,
    body: str | None = None,
) -> MacroResult:
    """Apply ``macro`` to ``case`` as ``actor``: post its reply (``body`` when given, e.g. the text
    as the agent edited it, else the macro's rendered text) and apply its actions through the case
    services. A refused reply leaves everything else undone; a refused action is reported in the
    result and the other changes stay."""
    return apply_macro_parts(case, macro, actor=actor, now=now, body=body, status=macro.set_status)


def apply_macro_parts(
    case: Case,
    macro: Macro,
    *,
    actor: User,
    now: dt.datetime,
    body: str | None = None,
    status: str = "",
    attachments: Iterable[Any] = (),
) -> MacroResult:
    """``apply_macro`` with the status to set chosen by the caller (the reply box's status choice,
    prefilled with the macro's) and files sent with the reply."""
    if not can_use_macro(actor, macro):
        raise MacroPermissionDenied("You may not use this macro.", field="macro")
    result = MacroResult(case=case, macro=macro)
    text = render_macro(macro, case, agent=actor) if body is None else body
    with transaction.atomic():
        if text.strip():
            try:
                result.reply = services.add_public_reply(
                    case, body=text, actor=actor, now=now, attachments=attachments
                )
            except DomainError as exc:
                result.refused.append(MacroRefusal("reply", exc.message))
                return result
            result.changed.append(MacroChange("reply", f"reply sent to {case.requester.email}"))
        _apply_fields(case, macro, actor=actor, now=now, result=result)
        if status:
            _apply_status(case, status, actor=actor, now=now, result=result)
    return result


def _apply_fields(case: Case, macro: Macro, *, actor, now, result: MacroResult) -> None:
    """Tags and team in one update (one event each that really changes)."""
    kwargs: dict[str, Any] = {}
    current_tags = sorted(case.tags.values_list("name", flat=True))
    new_tags = [t for t in macro.add_tags if t not in current_tags]
    if new_tags:
        kwargs["tags"] = [*current_tags, *new_tags]
    new_team = macro.set_team if macro.set_team_id and macro.set_team_id != case.team_id else None
    if new_team is not None:
        kwargs["team"] = new_team
    if not kwargs:
        return
    try:
        services.update_case(case, actor=actor, now=now, **kwargs)
    except DomainError as exc:
        for action in ("team", "tags"):
            if action in kwargs:
                result.refused.append(MacroRefusal(action, exc.message))
        return
    if new_team is not None:
        result.changed.append(MacroChange("team", f"team set to {new_team.name}"))
    if new_tags:
        result.changed.append(MacroChange("tags", "tags added: " + ", ".join(new_tags)))


def _apply_status(case: Case, status: str, *, actor, now, result: MacroResult) -> None:
    fresh = Case.objects.only("status").get(pk=case.pk)
    if fresh.status == status:
        return
    try:
        moved = services.transition(case, status, actor=actor, now=now)
    except DomainError as exc:
        result.refused.append(MacroRefusal("status", exc.message))
        return
    result.changed.append(MacroChange("status", f"status set to {Status(moved.status).label.lower()}"))
