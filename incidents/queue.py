"""Major incidents in the agents' queue, through the core's registry (``cases.extensions``; the
core imports nothing of this app):

* a badge after a linked case's title naming its active incident, read by the page's own query (a
  correlated subquery per line of the page, no query of its own);
* the filter ``incident``: ``yes`` (in an active major incident), ``no`` (in none), or an incident's
  key (``INC-3``, active or not), on the queue, its saved views and ``/api/cases/``;
* the bulk actions "Link to a major incident" (each ticked case through ``services.link_cases``,
  the result page saying per case what was linked and what was refused and why; also
  ``/api/cases/bulk/``) and "Declare a major incident with them…" (the declaration form, the ticked
  cases its first linked cases).
"""

from __future__ import annotations

from typing import Any

import django_filters
from django import forms
from django.db.models import Exists, OuterRef, QuerySet, Subquery
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

from cases.bulk import Action
from cases.models import Case
from supportdesk.core.errors import DomainError
from supportdesk.core.markup import escape_text as escape

from . import permissions, selectors, services
from .models import IncidentCase, IncidentStatus, MajorIncident

# --- The badge -----------------------------------------------------------------------------------


def _active_link():
    return IncidentCase.objects.filter(case=OuterRef("pk"), incident__status=IncidentStatus.ACTIVE).order_by(
        "-incident_id"
    )


def annotate_badge(queryset: QuerySet[Case]) -> QuerySet[Case]:
    """The case's active incident (at most one, ``services.link_cases`` sees to it) and its title."""
    return queryset.annotate(
        major_incident_id=Subquery(_active_link().values("incident_id")[:1]),
        major_incident_title=Subquery(_active_link().values("incident__title")[:1]),
    )


def render_badge(case: Any) -> str:
    pk = getattr(case, "major_incident_id", None)
    if pk is None:
        return ""
    key = f"{MajorIncident.KEY_PREFIX}{pk}"
    title = getattr(case, "major_incident_title", "") or ""
    href = reverse("incidents:detail", args=[key])
    return (
        f'<a class="pill bad q-badge q-incident" href="{escape(href)}" '
        f'title="Major incident {escape(key)}: {escape(title)}">{escape(key)}'
        '<span class="visually-hidden"> (major incident)</span></a>'
    )


# --- The filter ----------------------------------------------------------------------------------

FILTER_CHOICES = [("", "Any"), ("yes", "In an active major incident"), ("no", "In no active one")]


class IncidentFilterField(forms.ChoiceField):
    """``yes``, ``no`` or an incident's key; a key is offered as a choice once it is asked for."""

    def valid_value(self, value) -> bool:
        return super().valid_value(value) or selectors.pk_from_key(str(value)) is not None

    def clean(self, value):
        value = super().clean(value)
        if value and selectors.pk_from_key(value) is not None:
            value = f"{MajorIncident.KEY_PREFIX}{selectors.pk_from_key(value)}"
            if value not in dict(self.choices):
                self.choices = [*self.choices, (value, value)]  # this form's copy of the field
        return value


@extend_schema_field(OpenApiTypes.STR)
class IncidentFilter(django_filters.Filter):
    field_class = IncidentFilterField

    def filter(self, qs, value):
        if not value:
            return qs
        if value in ("yes", "no"):
            active = Exists(_active_link())
            return qs.filter(active) if value == "yes" else qs.exclude(active)
        pk = selectors.pk_from_key(value)
        return qs.filter(Exists(IncidentCase.objects.filter(case=OuterRef("pk"), incident_id=pk)))


def queue_filter() -> IncidentFilter:
    return IncidentFilter(
        choices=FILTER_CHOICES,
        label="Major incident",
        help_text="yes: in an active major incident; no: in none; or an incident's key (INC-3).",
    )


# --- Bulk actions --------------------------------------------------------------------------------


def _parse_incident(raw, *, actor) -> MajorIncident:
    incident = selectors.incident_by_key(raw) if isinstance(raw, str) else None
    if incident is None:
        raise DomainError("Choose an active major incident (its key, e.g. INC-3).", field="value")
    if not incident.is_active:
        raise DomainError(f"{incident.key} is resolved; choose an active incident.", field="value")
    if not permissions.can_work(actor, incident):
        raise DomainError("You may not link cases to major incidents.", field="value")
    return incident


def _link(case: Case, incident: MajorIncident, *, actor, now, version) -> str | None:
    outcome = services.link_cases(incident, [case], actor=actor, now=now)
    if outcome.done:
        return f"linked to {incident.key}"
    reason = outcome.refused[0][1]
    if reason == services.ALREADY_LINKED:
        return None
    raise DomainError(reason)


def _active_choices(user) -> list[tuple[str, str]]:
    """The active incidents for the bar, newest first (one query)."""
    rows = (
        MajorIncident.objects.filter(status=IncidentStatus.ACTIVE)
        .order_by("-declared_at", "-id")
        .values_list("pk", "title")[:100]
    )
    prefix = MajorIncident.KEY_PREFIX
    return [(f"{prefix}{pk}", f"{prefix}{pk} {title}") for pk, title in rows]


def _declare_step(request, targets, value):
    """The declaration form, with the ticked cases as its first linked cases."""
    from .views import declare_form_for

    return declare_form_for(request, [t.key for t in targets])


def _no_value(raw, *, actor) -> None:
    return None


def _never(case, value, **kwargs) -> str | None:
    raise DomainError("Declare the incident on its form first.")


LINK = Action(
    "Link to a major incident",
    _link,
    parse=_parse_incident,
    unchanged=services.ALREADY_LINKED,
    value_field="incident",
    choices=_active_choices,
    describe=lambda incident: f"Link to {incident.key} {incident.title}",
)
DECLARE = Action(
    "Declare a major incident with them…",
    _never,
    parse=_no_value,
    value_field="",
    step=_declare_step,
    describe=lambda value: "Declare a major incident",
)


def register() -> None:
    from cases import extensions

    extensions.register_queue_badge("major_incident", annotate=annotate_badge, render=render_badge)
    extensions.register_queue_filter("incident", queue_filter())
    extensions.register_bulk_action("link_incident", LINK)
    extensions.register_bulk_action("declare_incident", DECLARE)
