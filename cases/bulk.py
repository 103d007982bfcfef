"""Bulk changes from the queue: one action applied to many cases, each case on its own.

Every case goes through the same service a person would use on the case page
(``services.update_case`` or ``services.transition``): its own transaction, its own timeline
events, the lifecycle rules, the assignment rules (an agent does not take a colleague's case) and
the version check (a case changed since the queue was loaded is refused, not overwritten). So a
bulk change can do nothing that the same person could not do one case at a time. The result says,
per case, what changed, what was already so, and what was refused and why; one refusal never
stops the others.

The actions are a table, ``ACTIONS`` (name -> ``Action``), so another one is a single entry
(applying a macro is one: ``cases.macros.apply_macro`` per case). Reopening is not a bulk action:
it asks for the customer's reason case by case.

A selection is a list of keys (with the versions the person saw) or "every case matching this
filter", at most ``MAX_CASES`` at once: a larger selection is refused as a whole, with the number,
before anything changes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import AbstractBaseUser

from supportdesk.core.errors import Conflict, DomainError

from . import extensions, lifecycle, macros, saved_views, selectors, services
from . import tags as tags_rule
from .models import Case, Macro, Severity, Status, Team
from .permissions import can_see_case

MAX_CASES = 500


class BulkRefused(DomainError):
    """The request as a whole is refused (nothing was changed)."""

    code = "bulk_refused"


# --- What to change ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Action:
    """``apply(case, value, actor=, now=, version=)`` makes the change through the services and
    returns what changed in words, or None when the case already was so. ``parse(raw, actor=)``
    turns the submitted value into what ``apply`` takes (raising DomainError on ``value``)."""

    label: str
    apply: Callable[..., str | None]
    parse: Callable[..., Any] = lambda raw, *, actor: raw
    unchanged: str = "already so"
    # For the actions of other apps (cases.extensions.register_bulk_action): the queue bar's field
    # holding the value, the choices it offers (``choices(user)``: (value, label) pairs, one query at
    # most), a further step before anything changes (``step(request, targets, value)`` returns a
    # page to answer with, or None to apply now), and the result's heading (``describe(value)``).
    value_field: str = "value"
    choices: Callable[..., list[tuple[str, str]]] | None = None
    step: Callable[..., Any] | None = None
    describe: Callable[[Any], str] | None = None


def _person(user) -> str:
    if user is None:
        return "Unassigned"
    return user.get_full_name() or user.get_username()


def _parse_assignee(raw, *, actor):
    if raw in (None, ""):
        return None
    if not isinstance(raw, str):
        raise DomainError("Give a username, “me”, or nothing to unassign.", field="value")
    if raw == "me":
        return actor
    user = selectors.assignable_users().filter(username=raw).first()
    if user is None:
        raise DomainError(f"There is no support agent with the username “{raw}”.", field="value")
    return user


def _assign(case: Case, user, *, actor, now, version) -> str | None:
    before = _person(case.assignee)
    updated = services.update_case(case, assignee=user, actor=actor, now=now, expected_version=version)
    return None if updated.version == version else f"assignee {before} → {_person(user)}"


def _parse_team(raw, *, actor):
    if raw in (None, ""):
        return None
    team = Team.objects.filter(slug=raw).first() if isinstance(raw, str) else None
    if team is None:
        raise DomainError(f"There is no team with the slug “{raw}”.", field="value")
    return team


def _set_team(case: Case, team, *, actor, now, version) -> str | None:
    before = case.team.name if case.team else "No team"
    updated = services.update_case(case, team=team, actor=actor, now=now, expected_version=version)
    return None if updated.version == version else f"team {before} → {team.name if team else 'No team'}"


def _parse_status(raw, *, actor):
    if raw not in Status.values:
        raise DomainError(
            f"“{raw}” is not a case status; use one of {', '.join(Status.values)}.", field="value"
        )
    if lifecycle.needs_reason(raw):
        raise DomainError(
            "Reopening needs the customer's reason for each case: reopen it from the case page.",
            field="value",
        )
    return raw


def _set_status(case: Case, to: str, *, actor, now, version) -> str | None:
    if case.status == to and case.version == version:
        return None
    before = case.get_status_display()
    services.transition(case, to, actor=actor, now=now, expected_version=version)
    return f"status {before} → {Status(to).label}"


def _parse_severity(raw, *, actor):
    if raw not in Severity.values:
        raise DomainError(
            f"“{raw}” is not a severity; use one of {', '.join(Severity.values)}.", field="value"
        )
    return raw


def _set_severity(case: Case, severity: str, *, actor, now, version) -> str | None:
    before = case.severity
    updated = services.update_case(case, severity=severity, actor=actor, now=now, expected_version=version)
    return None if updated.version == version else f"severity {before} → {severity}"


def _tag_list(raw) -> list[str]:
    if isinstance(raw, str):
        raw = tags_rule.split(raw)
    if not isinstance(raw, list) or not all(isinstance(t, str) for t in raw):
        raise DomainError("Give the tags as a list or separated by commas.", field="value")
    if not any(t.strip() for t in raw):
        raise DomainError("Name at least one tag.", field="value")
    return raw


def _parse_tags(raw, *, actor) -> list[str]:
    """Tags to add, as a list or a comma-separated string, held to the tag rule (cases.tags)."""
    return tags_rule.normalise_all(_tag_list(raw), field="value")


def _parse_removed_tags(raw, *, actor) -> list[str]:
    """Tags to remove, cleaned as stored but not held to the rule: a tag stored before it can go."""
    return sorted({tags_rule.clean(t) for t in _tag_list(raw) if t.strip()})


def _change_tags(case: Case, names: list[str], *, actor, now, version, add: bool) -> str | None:
    current = {t.name for t in case.tags.all()}
    wanted = current | set(names) if add else current - set(names)
    if wanted == current:
        return None
    # The version guards this read-modify-write: a case retagged meanwhile is refused, not overwritten.
    services.update_case(case, tags=sorted(wanted), actor=actor, now=now, expected_version=version)
    diff = sorted(wanted - current) if add else sorted(current - wanted)
    return ("tags added: " if add else "tags removed: ") + ", ".join(diff)


def _add_tags(case, names, **kwargs) -> str | None:
    return _change_tags(case, names, add=True, **kwargs)


def _remove_tags(case, names, **kwargs) -> str | None:
    return _change_tags(case, names, add=False, **kwargs)


def _parse_macro(raw, *, actor) -> Macro:
    pk = str(raw or "").strip()
    macro = macros.visible_macros(actor).filter(pk=int(pk)).first() if pk.isdigit() and len(pk) < 12 else None
    if macro is None:
        raise DomainError("Choose one of your macros or a shared one.", field="value")
    return macro


def _apply_macro(case: Case, macro: Macro, *, actor, now, version) -> str | None:
    if case.version != version:
        raise Conflict(
            f"{case.key} was changed by someone else since you loaded it "
            f"(your version {version}, now {case.version}). Reload and try again."
        )
    result = macros.apply_macro(case, macro, actor=actor, now=now)
    refused = "; ".join(f"{r.action}: {r.reason}" for r in result.refused)
    if not result.changed:
        raise DomainError(refused or f"the macro {macro.name} changed nothing")
    done = "; ".join(c.detail for c in result.changed)
    return f"{done} (not done: {refused})" if refused else done


ACTIONS: dict[str, Action] = {
    "assign": Action("Assign to", _assign, parse=_parse_assignee, unchanged="already assigned so"),
    "team": Action("Move to team", _set_team, parse=_parse_team, unchanged="already in that team"),
    "status": Action(
        "Change status to", _set_status, parse=_parse_status, unchanged="already in that status"
    ),
    "severity": Action(
        "Set severity", _set_severity, parse=_parse_severity, unchanged="already that severity"
    ),
    "add_tags": Action("Add tags", _add_tags, parse=_parse_tags, unchanged="already has these tags"),
    "remove_tags": Action(
        "Remove tags", _remove_tags, parse=_parse_removed_tags, unchanged="has none of these tags"
    ),
    "macro": Action("Apply a macro", _apply_macro, parse=_parse_macro, unchanged="nothing to change"),
}
ACTION_CHOICES = [(name, spec.label) for name, spec in ACTIONS.items()]


def actions() -> dict[str, Action]:
    """The core's actions and those other apps registered (``extensions.register_bulk_action``)."""
    return {**ACTIONS, **extensions.bulk_actions()}


def api_action_choices() -> list[tuple[str, str]]:
    """The actions the API takes: all but those that ask for a form first (the queue bar's only)."""
    return [(name, spec.label) for name, spec in actions().items() if spec.step is None]


# --- Which cases -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    key: str
    version: int | None = None  # the version the person saw; None: the current one


def targets_from_keys(keys: Iterable[str], *, versions: Mapping[str, int] | None = None) -> list[Target]:
    """Targets from keys (``CASE-7``, or ``CASE-7:3`` with the version seen), each once, in order."""
    versions = {k.upper(): v for k, v in (versions or {}).items()}
    seen: dict[str, Target] = {}
    bad = []
    for raw in keys:
        key, _, version = str(raw).strip().partition(":")
        pk = Case.pk_from_key(key)
        if pk is None or (version and not (version.isascii() and version.isdigit())):
            bad.append(str(raw))
            continue
        canonical = f"CASE-{pk}"
        seen.setdefault(canonical, Target(canonical, int(version) if version else versions.get(canonical)))
    if bad:
        raise DomainError(f"Not case keys: {', '.join(bad[:10])}.", field="keys")
    if not seen:
        raise BulkRefused("Select at least one case.", field="keys")
    if len(seen) > MAX_CASES:
        raise BulkRefused(
            f"Select at most {MAX_CASES} cases at once (you selected {len(seen)}).", field="keys"
        )
    return list(seen.values())


def targets_from_filter(params: Mapping | str, *, request) -> list[Target]:
    """Every case a queue filter matches now, oldest first; refused as a whole above MAX_CASES."""
    matching = saved_views.matching(
        params if not isinstance(params, str) else _query(params), request=request
    )
    pks = list(matching.order_by("id").values_list("pk", flat=True)[: MAX_CASES + 1])
    if len(pks) > MAX_CASES:
        total = matching.count()
        raise BulkRefused(
            f"These filters match {total} cases; a bulk change takes at most {MAX_CASES} at once. "
            "Narrow the filters (or tick the cases) and try again. Nothing was changed.",
            field="filter",
        )
    if not pks:
        raise BulkRefused("No case matches these filters. Nothing was changed.", field="filter")
    return [Target(f"CASE-{pk}") for pk in pks]


def _query(text: str):
    from django.http import QueryDict

    return QueryDict(text)


# --- Running it ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    key: str
    text: str  # what changed, or why nothing did


@dataclass
class BulkResult:
    action: str
    label: str
    changed: list[Outcome] = field(default_factory=list)
    unchanged: list[Outcome] = field(default_factory=list)
    refused: list[Outcome] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "changed": [{"key": o.key, "change": o.text} for o in self.changed],
            "unchanged": [{"key": o.key, "reason": o.text} for o in self.unchanged],
            "refused": [{"key": o.key, "reason": o.text} for o in self.refused],
        }


def parse_value(action: str, raw: Any, *, actor: AbstractBaseUser) -> Any:
    known = actions()
    if action not in known:
        raise DomainError(f"“{action}” is not a bulk action; use one of {', '.join(known)}.", field="action")
    return known[action].parse(raw, actor=actor)


def apply(
    targets: list[Target],
    action: str,
    value: Any,
    *,
    actor: AbstractBaseUser,
    now: dt.datetime,
    label: str = "",
) -> BulkResult:
    """Apply ``action`` with ``value`` (already parsed) to each target through the services, each case
    in its own transaction; never raises for one case's refusal."""
    spec = actions()[action]
    result = BulkResult(action=action, label=label or spec.label)
    pks = [Case.pk_from_key(t.key) for t in targets]
    cases = {
        c.pk: c
        for c in Case.objects.filter(pk__in=pks).select_related("assignee", "team").prefetch_related("tags")
    }
    for target, pk in zip(targets, pks, strict=True):
        case = cases.get(pk)
        if case is None:
            result.refused.append(Outcome(target.key, "There is no such case."))
            continue
        if not can_see_case(actor, case):
            result.refused.append(Outcome(target.key, "You may not see this case."))
            continue
        version = target.version if target.version is not None else case.version
        try:
            change = spec.apply(case, value, actor=actor, now=now, version=version)
        except DomainError as exc:  # lifecycle, assignment rules, version conflicts, closed cases
            result.refused.append(Outcome(target.key, exc.message))
            continue
        if change is None:
            result.unchanged.append(Outcome(target.key, spec.unchanged))
        else:
            result.changed.append(Outcome(target.key, change))
    return result
