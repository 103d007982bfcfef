"""Reads of escalations, with visibility and joins decided here.

Support (agents, managers, admins) sees every escalation. An engineer sees escalations that reached
engineering (not drafts) of the teams in their scope, or of every team when they have no scope.
Anyone else sees none.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.db.models import Count, Prefetch, Q, QuerySet

from cases.models import Case, CaseEvent, EventKind, Status
from supportdesk.core.roles import is_agent, is_engineer

from . import attribution
from .models import (
    ClockKind,
    EngineeringClock,
    EngineeringTarget,
    EngineeringTeam,
    EngineerScope,
    Escalation,
    InfoRequest,
)
from .states import OPEN_STATES, EscalationState

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User

# Read once per user object (a request asks for every escalation it shows).
_CACHED_TEAM_IDS = "_escalation_team_ids"


def engineer_team_ids(user: User) -> set[int] | None:
    """The teams an engineer is limited to, or None for "every team" (no scope set)."""
    if hasattr(user, _CACHED_TEAM_IDS):
        cached: set[int] | None = getattr(user, _CACHED_TEAM_IDS)
        return cached
    scope = EngineerScope.objects.filter(user=user).prefetch_related("teams").first()
    ids = None if scope is None else {t.pk for t in scope.teams.all()}
    setattr(user, _CACHED_TEAM_IDS, ids)
    return ids


def engineer_may_see_team(user: User, team_id: int) -> bool:
    ids = engineer_team_ids(user)
    return ids is None or team_id in ids


def team_engineers(team_id: int) -> list[User]:
    """The active engineers of a team: those whose scope names it (engineers without a scope, who see
    every team, are nobody's members and are not notified)."""
    from django.contrib.auth import get_user_model

    from supportdesk.core.roles import Role

    return list(
        get_user_model()
        .objects.filter(is_active=True, groups__name=Role.ENGINEER, engineer_scope__teams__id=team_id)
        .distinct()
        .order_by("username")
    )


def visible_escalations(user: User | AnonymousUser) -> QuerySet[Escalation]:
    qs = Escalation.objects.all()
    if is_agent(user):
        return qs
    if is_engineer(user):
        qs = qs.exclude(state=EscalationState.DRAFT)
        ids = engineer_team_ids(user)
        return qs if ids is None else qs.filter(team_id__in=ids)
    return qs.none()


def escalation_list(user: User | AnonymousUser) -> QuerySet[Escalation]:
    """What a list row shows: the case, its organisation, the team, joined."""
    return visible_escalations(user).select_related("case", "case__organisation", "team", "created_by")


#: Where ``escalation_detail`` puts the case entries attached for engineering (a list, in order).
ATTACHED_EVENTS = "attached_event_list"


def _events_engineering_may_read() -> Prefetch[str, QuerySet[CaseEvent], str]:
    return Prefetch(
        "attached_events",
        queryset=CaseEvent.objects.order_by("created_at", "id"),
        to_attr=ATTACHED_EVENTS,
    )


def escalation_detail(user: User | AnonymousUser, *, pk: int) -> Escalation | None:
    """One escalation with its files, questions and the case entries attached for engineering."""
    return (
        escalation_list(user)
        .select_related("override_by")
        .prefetch_related(
            "attachments",
            Prefetch("info_requests", queryset=InfoRequest.objects.select_related("asked_by", "answered_by")),
            _events_engineering_may_read(),
            "clocks",
        )
        .filter(pk=pk)
        .first()
    )


def escalations_for_case(case: Case) -> list[Escalation]:
    """A case's escalations, newest first, with their open questions, for the case page."""
    return list(
        Escalation.objects.filter(case=case)
        .select_related("team")
        .prefetch_related(
            Prefetch("info_requests", queryset=InfoRequest.objects.select_related("asked_by", "answered_by"))
        )
        .order_by("-created_at", "-id")
    )


def open_info_request(escalation: Escalation) -> InfoRequest | None:
    """The unanswered questions (from prefetched rows when available)."""
    for request in escalation.info_requests.all():
        if request.answered_at is None:
            return request
    return None


@dataclass
class Board:
    rows: list[Escalation]
    teams: list[EngineeringTeam]
    states: list[tuple[str, str]]
    counts: dict[tuple[int, str], int] = field(default_factory=dict)
    total_by_state: Counter[str] = field(default_factory=Counter)
    total_by_team: Counter[int] = field(default_factory=Counter)

    def matrix(self) -> list[tuple[EngineeringTeam, list[tuple[str, int]], int]]:
        """Per team: (team, [(state, count) for each open state], total)."""
        return [
            (
                team,
                [(s, self.counts.get((team.pk, s), 0)) for s, _ in self.states],
                self.total_by_team[team.pk],
            )
            for team in self.teams
        ]


def board(
    user: User | AnonymousUser,
    *,
    team: EngineeringTeam | None = None,
    state: str | None = None,
    limit: int = 200,
) -> Board:
    """Open escalations (the oldest waiting first) and how many sit in each state per team."""
    visible = visible_escalations(user).filter(state__in=OPEN_STATES)
    counts: dict[tuple[int, str], int] = {}
    by_state: Counter[str] = Counter()
    by_team: Counter[int] = Counter()
    for row in visible.order_by().values("team_id", "state").annotate(n=Count("id")):
        counts[(row["team_id"], row["state"])] = row["n"]
        by_state[row["state"]] += row["n"]
        by_team[row["team_id"]] += row["n"]
    rows = escalation_list(user).filter(state__in=OPEN_STATES)
    if team is not None:
        rows = rows.filter(team=team)
    if state:
        rows = rows.filter(state=state)
    team_ids = set(by_team) | ({team.pk} if team is not None else set())
    labels = dict(EscalationState.choices)
    return Board(
        rows=list(rows.order_by("submitted_at", "id")[:limit]),
        teams=list(EngineeringTeam.objects.filter(pk__in=team_ids)),
        states=[(s, labels[s]) for s in OPEN_STATES],
        counts=counts,
        total_by_state=by_state,
        total_by_team=by_team,
    )


def age(escalation: Escalation, *, now: dt.datetime) -> dt.timedelta:
    """How long the escalation has been with engineering (or, as a draft, since it was started)."""
    return now - (escalation.submitted_at or escalation.created_at)


_MEMBER_LIST = "member_list"  # what the teams page reads (not a field of the model)


def teams_overview() -> list[EngineeringTeam]:
    """Every engineering team with ``open_count`` (open escalations) and ``member_list`` (engineers)."""
    teams: list[EngineeringTeam] = list(
        EngineeringTeam.objects.annotate(
            open_count=Count("escalations", filter=Q(escalations__state__in=OPEN_STATES), distinct=True)
        ).prefetch_related(
            Prefetch(
                "engineer_scopes",
                queryset=EngineerScope.objects.select_related("user").order_by("user__username"),
            )
        )
    )
    for team in teams:
        setattr(team, _MEMBER_LIST, [scope.user for scope in team.engineer_scopes.all()])
    return teams


# --- Engineering clocks and where the time went ------------------------------------------------------


def escalation_clocks(escalation: Escalation) -> list[EngineeringClock]:
    """The escalation's engineering clocks in a stable order (acknowledge, first response, resolve)."""

    order = {kind: i for i, kind in enumerate(ClockKind.values)}
    return sorted(escalation.clocks.all(), key=lambda c: order[c.kind])


def team_targets(team: EngineeringTeam) -> list[EngineeringTarget]:
    """The team's targets, by severity."""
    return list(EngineeringTarget.objects.filter(team=team).order_by("severity"))


def _escalation_changes(escalations: Iterable[Escalation]) -> dict[int, list[attribution.Change]]:
    """Per case, the escalation changes of ``attribution``: with engineering, needs info, finished.

    From the escalation rows, written in the same transactions as the timeline's escalation events:
    the first submission, each question (asked, answered) and the end.
    """
    a = attribution
    changes: dict[int, list[attribution.Change]] = {}
    for escalation in escalations:
        if escalation.submitted_at is None:
            continue  # a draft (or one withdrawn as a draft) never reached engineering
        rows = changes.setdefault(escalation.case_id, [])

        def add(
            at: dt.datetime, value: str, escalation: Escalation = escalation, rows: list[a.Change] = rows
        ) -> None:
            rows.append(a.Change(at, "escalation", value, escalation=escalation.pk, team=escalation.team_id))

        add(escalation.submitted_at, a.WITH_ENGINEERING)
        for request in escalation.info_requests.all():
            add(request.asked_at, a.NEEDS_INFO)
            if request.answered_at is not None:
                add(request.answered_at, a.WITH_ENGINEERING)
        if escalation.finished_at is not None:
            add(escalation.finished_at, a.FINISHED)
    return changes


def _attribute_cases(cases: list[Case], *, now: dt.datetime) -> dict[int, attribution.Attribution]:
    a = attribution
    ids = [case.pk for case in cases]
    changes: dict[int, list[a.Change]] = {pk: [] for pk in ids}
    for case_id, at, value in (
        CaseEvent.objects.filter(case_id__in=ids, kind=EventKind.STATUS_CHANGED, field="status")
        .order_by("created_at", "id")
        .values_list("case_id", "created_at", "new_value")
    ):
        changes[case_id].append(a.Change(at, "status", value))
    escalations = Escalation.objects.filter(case_id__in=ids).prefetch_related("info_requests")
    for case_id, rows in _escalation_changes(escalations).items():
        changes[case_id].extend(rows)
    result = {}
    for case in cases:
        finished = case.status in (Status.RESOLVED, Status.CLOSED) and case.last_resolved_at is not None
        end = case.last_resolved_at if finished and case.last_resolved_at else max(now, case.created_at)
        initial = [a.Change(case.created_at, "status", Status.NEW.value)]
        result[case.pk] = a.attribute(initial + changes[case.pk], start=case.created_at, end=end)
    return result


def case_time_attribution(case: Case, *, now: dt.datetime) -> attribution.Attribution:
    """Where the case's time went (``attribution.Attribution``): up to its last resolution, or ``now``
    while it is open (the time so far). Three queries."""
    return _attribute_cases([case], now=now)[case.pk]


def time_attribution_by_team(start: dt.datetime, end: dt.datetime) -> dict[str, Any]:
    """For the cases whose last resolution lies in ``[start, end)`` and that are not open now: the
    support, engineering and customer-wait seconds in all, and per engineering team the engineering
    seconds it held and how many of those cases it held any. Plain data, in three queries.

    ``{"cases": n, "support_seconds": s, "engineering_seconds": e, "customer_wait_seconds": c,
    "teams": [{"team_id", "team", "cases", "engineering_seconds"}, ...]}`` (teams by name).
    """
    cases = list(
        Case.objects.filter(
            last_resolved_at__gte=start, last_resolved_at__lt=end, status__in=(Status.RESOLVED, Status.CLOSED)
        ).only("pk", "status", "created_at", "last_resolved_at")
    )
    per_case = _attribute_cases(cases, now=end) if cases else {}
    totals = {"support": dt.timedelta(0), "engineering": dt.timedelta(0), "customer_wait": dt.timedelta(0)}
    by_team: dict[int, dt.timedelta] = {}
    team_cases: Counter[int] = Counter()
    for result in per_case.values():
        totals["support"] += result.support
        totals["engineering"] += result.engineering
        totals["customer_wait"] += result.customer_wait
        for team_id, held in result.by_team.items():
            by_team[team_id] = by_team.get(team_id, dt.timedelta(0)) + held
            team_cases[team_id] += 1
    names = dict(EngineeringTeam.objects.filter(pk__in=by_team).values_list("pk", "name"))
    return {
        "cases": len(cases),
        "support_seconds": totals["support"].total_seconds(),
        "engineering_seconds": totals["engineering"].total_seconds(),
        "customer_wait_seconds": totals["customer_wait"].total_seconds(),
        "teams": sorted(
            (
                {
                    "team_id": team_id,
                    "team": names.get(team_id, ""),
                    "cases": team_cases[team_id],
                    "engineering_seconds": held.total_seconds(),
                }
                for team_id, held in by_team.items()
            ),
            key=lambda row: (row["team"], row["team_id"]),
        ),
    }
