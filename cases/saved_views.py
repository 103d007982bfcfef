"""Saved views of the queue: who may see, share and change them, their writes, and their live counts.

A view is the queue's query string (filters and sort) plus the columns to show, kept by its owner
and optionally shared with a team:

* everyone sees their own views and the views shared with a team they belong to; managers also see
  every team's views (they look after all the queues);
* a view can be shared with a team by a member of that team or a manager;
* a view is changed or deleted by its owner, or, when it is shared with a team, by a manager.

Live counts: the queue's navigation shows, for each view, how many cases match it now. They are
counted in ONE query, whatever the number of views: a single ``SELECT`` holding one scalar
``COUNT(*)`` subquery per view, each over that view's filtered cases (so each uses the indexes its
filters allow). Each count stops at ``COUNT_CAP`` + 1 rows (``LIMIT`` inside the subquery) and shows
as "1000+" above the cap, so a broad view on a large backlog costs at most that many index entries.
At most ``MAX_NAV_VIEWS`` views are shown (and counted) in the navigation.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from django.contrib.auth.models import User
from django.core.exceptions import EmptyResultSet
from django.db import connections, router, transaction
from django.db.models import F, Q, QuerySet
from django.http import QueryDict

from supportdesk.core.errors import DomainError
from supportdesk.core.roles import is_manager

from . import extensions, selectors
from .filters import CaseFilter
from .models import Case, SavedView, Team
from .queue_views import QUEUE_COLUMNS

COUNT_CAP = 1000
MAX_NAV_VIEWS = 20
MAX_VIEWS_PER_OWNER = 50

#: Parameters of the queue URL that are positions or presentation, not part of a view's query.
IGNORED_PARAMS = ("cursor", "view")


class SavedViewError(DomainError):
    code = "invalid_saved_view"

    def __init__(
        self, message: str, *, field: str | None = None, problems: dict[str, list[str]] | None = None
    ) -> None:
        super().__init__(message, field=field)
        #: Every problem found, by field, when several were (the message is the first field's).
        self.problems = problems or {}


# --- Who may do what ------------------------------------------------------------------------------


def _member(user, team: Team | None) -> bool:
    return team is not None and team.members.filter(pk=user.pk).exists()


def can_share_to(user, team: Team) -> bool:
    """A member of the team, or a manager, may share a view with it."""
    return is_manager(user) or _member(user, team)


def can_see(user, view: SavedView) -> bool:
    if view.owner_id == user.pk:
        return True
    return view.team_id is not None and (is_manager(user) or _member(user, view.team))


def can_edit(user, view: SavedView) -> bool:
    """The owner; for a team's view, also a manager."""
    return view.owner_id == user.pk or (view.team_id is not None and is_manager(user))


def visible_views(user) -> QuerySet[SavedView]:
    """The views ``user`` sees: personal ones first, then the teams' (by team), each in their order."""
    shared = Q(team__isnull=False) if is_manager(user) else Q(team__members=user)
    return (
        SavedView.objects.filter(Q(owner=user) | shared)
        .select_related("team", "owner")
        .distinct()
        .order_by(F("team__name").asc(nulls_first=True), "position", "name", "id")
    )


def nav_views(user) -> list[SavedView]:
    """The views in the queue's navigation: personal ones, then the teams', at most MAX_NAV_VIEWS."""
    views = list(visible_views(user)[: MAX_NAV_VIEWS * 2])
    views.sort(key=lambda v: (v.team_id is not None, v.team.name if v.team else "", v.position, v.name, v.pk))
    return views[:MAX_NAV_VIEWS]


def shareable_teams(user) -> QuerySet[Team]:
    return Team.objects.all() if is_manager(user) else Team.objects.filter(members=user)


# --- The query string ----------------------------------------------------------------------------


def _allowed_params() -> list[str]:
    return [*CaseFilter.base_filters, "sort"]


def sort_names() -> list[str]:
    return [*extensions.queue_orderings(), *selectors.QUEUE_ORDERINGS]


def normalise_query(params: Mapping | str) -> str:
    """The view's query string from the queue's URL parameters: positions (``cursor``) and the view
    itself left out, empty values and the default state dropped, keys in a stable order."""
    data = QueryDict(params) if isinstance(params, str) else params
    pairs = []
    for key in sorted(data.keys()):
        if key in IGNORED_PARAMS:
            continue
        values = data.getlist(key) if hasattr(data, "getlist") else [data[key]]
        # "Open" is the queue's default state: a query without it means the same.
        pairs += [(key, v) for v in values if v not in (None, "") and (key, v) != ("state", "open")]
    return urlencode(pairs)


def query_errors(query: str) -> list[str]:
    """What is wrong with a view's query string, in words (empty when it is a valid queue query)."""
    data = QueryDict(query)
    errors = []
    allowed = _allowed_params()
    unknown = [k for k in data if k not in allowed and k not in IGNORED_PARAMS]
    for key in unknown:
        errors.append(f"“{key}” is not a queue filter; use {', '.join(allowed)}.")
    sort = data.get("sort")
    if sort and sort not in sort_names():
        errors.append(f"“{sort}” is not a sort order; choose one of {', '.join(sort_names())}.")
    form = CaseFilter(filter_data(data), queryset=Case.objects.none()).form
    if not form.is_valid():
        for name, messages in form.errors.items():
            label = form.fields[name].label if name in form.fields else name
            errors += [f"{label} ({name}): {m}" for m in messages]
    return errors


def column_errors(columns) -> list[str]:
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        return ["Give the columns as a list of names."]
    unknown = [c for c in columns if c not in QUEUE_COLUMNS]
    if unknown:
        return [f"“{c}” is not a queue column; use {', '.join(QUEUE_COLUMNS)}." for c in unknown]
    if len(set(columns)) != len(columns):
        return ["Name each column once."]
    return []


def filter_data(params: Mapping) -> QueryDict:
    """The queue's filter input: without ticked statuses the queue shows open cases (ticked statuses
    are more specific than "open or closed", and dashboard links use them)."""
    if isinstance(params, QueryDict):
        data = params.copy()
    else:
        data = QueryDict(mutable=True)
        for key, value in params.items():
            data.setlist(key, value if isinstance(value, list) else [value])
    if data.get("status"):
        data["state"] = "all"
    elif not data.get("state"):
        data["state"] = "open"
    return data


# --- Writes ----------------------------------------------------------------------------------------


def _check(
    *, owner, name: str, query: str, columns, team: Team | None, actor, instance: SavedView | None = None
) -> None:
    problems: dict[str, list[str]] = {}
    if not name.strip():
        problems["name"] = ["A view needs a name."]
    elif len(name.strip()) > 80:
        problems["name"] = ["Keep the name to 80 characters."]
    else:
        clash = SavedView.objects.filter(owner=owner, name__iexact=name.strip())
        if instance is not None:
            clash = clash.exclude(pk=instance.pk)
        if owner is not None and clash.exists():
            problems["name"] = [f"You already have a view named “{name.strip()}”."]
    if errors := query_errors(query):
        problems["query"] = errors
    if errors := column_errors(columns):
        problems["columns"] = errors
    if (
        team is not None
        and (instance is None or team.pk != instance.team_id)
        and not can_share_to(actor, team)
    ):
        problems["team"] = [f"Only members of {team.name} and managers can share a view with it."]
    if problems:
        field, messages = next(iter(problems.items()))
        raise SavedViewError(" ".join(messages), field=field, problems=problems)


def create_view(
    *,
    owner: User,
    name: str,
    query: str,
    now: dt.datetime,
    columns: Sequence[str] = (),
    team: Team | None = None,
) -> SavedView:
    """Save a view for ``owner`` (shared with ``team`` when given), last in their navigation."""
    columns = list(columns)
    query = normalise_query(query)
    _check(owner=owner, name=name, query=query, columns=columns, team=team, actor=owner)
    with transaction.atomic():
        # The owner's views locked: two saves at once get different positions.
        positions = list(
            SavedView.objects.select_for_update().filter(owner=owner).values_list("position", flat=True)
        )
        if len(positions) >= MAX_VIEWS_PER_OWNER:
            raise SavedViewError(f"Keep at most {MAX_VIEWS_PER_OWNER} views; delete one first.", field="name")
        last = max(positions, default=None)
        return SavedView.objects.create(
            owner=owner,
            team=team,
            name=name.strip(),
            query=query,
            columns=columns,
            position=0 if last is None else last + 1,
            created_at=now,
            updated_at=now,
        )


_UNSET = object()


def update_view(
    view: SavedView,
    *,
    actor: User,
    now: dt.datetime,
    name=_UNSET,
    query=_UNSET,
    columns=_UNSET,
    team=_UNSET,
    position=_UNSET,
) -> SavedView:
    """Rename, re-share, re-filter or move a view (only the given fields change)."""
    if not can_edit(actor, view):
        raise PermissionError("Only the view's owner (or a manager, for a team's view) can change it.")
    with transaction.atomic():
        view = SavedView.objects.select_for_update(of=("self",)).select_related("team").get(pk=view.pk)
        new_name = view.name if name is _UNSET else str(name)
        new_query = view.query if query is _UNSET else normalise_query(query)
        new_columns = view.columns if columns is _UNSET else list(columns)
        new_team = view.team if team is _UNSET else team
        _check(
            owner=view.owner,
            name=new_name,
            query=new_query,
            columns=new_columns,
            team=new_team,
            actor=actor,
            instance=view,
        )
        view.name, view.query, view.columns, view.team = new_name.strip(), new_query, new_columns, new_team
        if position is not _UNSET:
            view.position = int(position)
        view.updated_at = now
        view.save()
    return view


def delete_view(view: SavedView, *, actor: User) -> None:
    if not can_edit(actor, view):
        raise PermissionError("Only the view's owner (or a manager, for a team's view) can delete it.")
    view.delete()


# --- Live counts -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Count:
    value: int

    @property
    def capped(self) -> bool:
        return self.value > COUNT_CAP

    def __str__(self) -> str:
        return f"{COUNT_CAP}+" if self.capped else str(self.value)


def matching(params: Mapping, *, request) -> QuerySet[Case]:
    """The cases a queue query matches, for ``request``'s user (``mine`` is theirs)."""
    return CaseFilter(filter_data(params), queryset=Case.objects.all(), request=request).qs


#: How long the SQL of a view's count is reused, per (user, query string), in one process.
COUNT_SQL_SECONDS = 60.0
_COUNT_SQL_ENTRIES = 2048
_count_sql: OrderedDict[tuple[int | None, str], tuple[float, tuple[str, tuple] | None]] = OrderedDict()
_count_sql_lock = threading.Lock()


def _count_statement(query: Mapping | str, *, request) -> tuple[str, tuple] | None:
    """The SQL (and parameters) counting a view's cases, or None when it can match nothing.

    Building it runs the queue's filter set (its form, its validation), several milliseconds a
    view on every queue page; the same query string for the same user gives the same statement,
    so it is kept for ``COUNT_SQL_SECONDS`` (a filter naming an object that was deleted since is
    noticed after that)."""
    key = (getattr(request.user, "pk", None), query) if isinstance(query, str) else None
    now = time.monotonic()
    if key is not None:
        with _count_sql_lock:
            cached = _count_sql.get(key)
            if cached is not None and now - cached[0] < COUNT_SQL_SECONDS:
                _count_sql.move_to_end(key)
                return cached[1]
    data = QueryDict(query) if isinstance(query, str) else query
    qs = matching(data, request=request).order_by().values("pk")[: COUNT_CAP + 1]
    try:
        statement: tuple[str, tuple] | None = qs.query.sql_with_params()
    except EmptyResultSet:
        statement = None
    if key is not None:
        with _count_sql_lock:
            _count_sql[key] = (now, statement)
            _count_sql.move_to_end(key)
            while len(_count_sql) > _COUNT_SQL_ENTRIES:
                _count_sql.popitem(last=False)
    return statement


def counts(queries: Mapping[str, Mapping | str], *, request) -> dict[str, Count]:
    """How many cases each named query matches now (capped at COUNT_CAP + 1), in ONE query."""
    parts: list[str] = []
    params: list[Any] = []
    names: list[str] = []
    result: dict[str, Count] = {}
    for name, query in queries.items():
        statement = _count_statement(query, request=request)
        if statement is None:
            result[name] = Count(0)
            continue
        sql, sql_params = statement
        # The ORM's own SQL with its parameters kept apart: nothing typed is pasted into the string.
        parts.append(f"(SELECT COUNT(*) FROM ({sql}) AS view_{len(names)})")  # noqa: S608
        params.extend(sql_params)
        names.append(name)
    if parts:
        with connections[router.db_for_read(Case)].cursor() as cursor:
            cursor.execute("SELECT " + ", ".join(parts), params)
            row = cursor.fetchone()
        result.update({name: Count(int(value)) for name, value in zip(names, row, strict=True)})
    return result


def queue_url(query: str, *, view: SavedView | None = None) -> str:
    from django.urls import reverse

    parts = ([f"view={view.pk}"] if view is not None else []) + ([query] if query else [])
    return reverse("cases:queue") + ("?" + "&".join(parts) if parts else "")


def views_by_id(user, ids: Iterable[int]) -> dict[int, SavedView]:
    return {v.pk: v for v in visible_views(user).filter(pk__in=list(ids))}


# --- The queue's navigation ----------------------------------------------------------------------

#: The built-in views: name -> (label, query).
QUICK_VIEWS = {
    "open": ("All open", ""),
    "mine": ("Mine", "mine=true"),
    "unassigned": ("Unassigned", "unassigned=true"),
}


@dataclass(frozen=True)
class NavItem:
    label: str
    url: str
    count: Count | None
    current: bool
    view: SavedView | None = None

    @property
    def team(self) -> str:
        return self.view.team.name if self.view is not None and self.view.team else ""


def navigation(request, *, quick: str, current: SavedView | None) -> list[NavItem]:
    """The quick views and the user's saved views, each with its live count (one query for all)."""
    views = nav_views(request.user)
    queries: dict[str, str] = {f"quick:{name}": query for name, (_, query) in QUICK_VIEWS.items()}
    queries.update({f"view:{v.pk}": v.query for v in views})
    live = counts(queries, request=request)
    items = [
        NavItem(
            label=label,
            url=queue_url(query),
            count=live.get(f"quick:{name}"),
            current=current is None and quick == name,
        )
        for name, (label, query) in QUICK_VIEWS.items()
    ]
    items += [
        NavItem(
            label=v.name,
            url=queue_url(v.query, view=v),
            count=live.get(f"view:{v.pk}"),
            current=current is not None and current.pk == v.pk,
            view=v,
        )
        for v in views
    ]
    return items
