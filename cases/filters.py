"""The queue's filters, shared by the browser queue and the REST API."""

from __future__ import annotations

import django_filters
from django import forms
from django.db.models import Q

from supportdesk.core import bounds

from .models import OPEN_Q, Case, Organisation, Severity, Status, Team, Tier


class EvaluatedChoiceIterator(forms.models.ModelChoiceIterator):
    """The choices from the field's queryset as evaluated once (its result cache), not through
    ``QuerySet.iterator()``, which on PostgreSQL opens a server-side cursor (three round trips) every
    time the options are listed; the view reuses the same rows for its other lists."""

    def __iter__(self):
        if self.field.empty_label is not None:
            yield ("", self.field.empty_label)
        for obj in self.queryset:
            yield self.choice(obj)


class EvaluatedChoiceField(forms.ModelChoiceField):
    iterator = EvaluatedChoiceIterator


class ModelChoiceFilter(django_filters.ModelChoiceFilter):
    field_class = EvaluatedChoiceField


class NameChoiceIterator(forms.models.ModelChoiceIterator):
    """(pk, name) pairs read as values, once per field: a choice list of hundreds of organisations
    without building (and signalling) a model instance for each."""

    def __iter__(self):
        if self.field.empty_label is not None:
            yield ("", self.field.empty_label)
        if self.field.listed is None:
            self.field.listed = list(self.queryset.values_list("pk", "name"))
        yield from self.field.listed

    def __len__(self):
        return len(list(iter(self)))


class NameChoiceField(forms.ModelChoiceField):
    iterator = NameChoiceIterator
    listed: list[tuple[int, str]] | None = None


class NameChoiceFilter(django_filters.ModelChoiceFilter):
    """A model filter whose options are the objects' names (``str(obj)`` is the name)."""

    field_class = NameChoiceField


def _staff_label(user) -> str:
    return user.get_full_name() or user.get_username()


class StaffChoiceFilter(ModelChoiceFilter):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, to_field_name="username", **kwargs)

    @property
    def field(self):
        field = super().field
        field.label_from_instance = _staff_label
        return field


def _assignable(request):
    from .selectors import assignable_users

    return assignable_users()


class CaseFilter(django_filters.FilterSet):
    STATE_CHOICES = (("open", "Open"), ("all", "All"), ("closed", "Resolved or closed"))

    state = django_filters.ChoiceFilter(
        choices=STATE_CHOICES, method="filter_state", empty_label=None, label="Open or closed"
    )
    # distinct=False: a plain IN list needs no DISTINCT (which would sort every column at scale).
    status = django_filters.MultipleChoiceFilter(choices=Status.choices, label="Status", distinct=False)
    severity = django_filters.MultipleChoiceFilter(choices=Severity.choices, label="Severity", distinct=False)
    organisation = NameChoiceFilter(queryset=Organisation.objects.order_by("name"), label="Organisation")
    tier = django_filters.ChoiceFilter(field_name="organisation__tier", choices=Tier.choices, label="Tier")
    assignee = StaffChoiceFilter(queryset=_assignable, label="Assignee")
    team = ModelChoiceFilter(queryset=Team.objects.order_by("name"), to_field_name="slug", label="Team")
    mine = django_filters.BooleanFilter(method="filter_mine", label="Assigned to me")
    unassigned = django_filters.BooleanFilter(method="filter_unassigned", label="Unassigned")
    tag = django_filters.CharFilter(field_name="tags__name", label="Tag")
    product_area = django_filters.CharFilter(field_name="product_area", label="Product area")
    q = django_filters.CharFilter(method="filter_text", label="Search")
    created_after = bounds.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = bounds.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Case
        fields: list[str] = []

    def get_form_class(self):
        """The form class, built once per filter set class: its fields are the same for every
        request (each form deep-copies them, querysets included, so no rows are shared), and
        building them cost more than the rest of a filter set's work. So no field may depend on
        the request (a queryset callable gets the first request)."""
        cls = type(self)
        form_class = cls.__dict__.get("_form_class")
        if form_class is None:
            form_class = super().get_form_class()
            cls._form_class = form_class
        return form_class

    def filter_state(self, queryset, name, value):
        if value == "open":
            return queryset.filter(OPEN_Q)
        if value == "closed":
            return queryset.exclude(OPEN_Q)
        return queryset

    def filter_mine(self, queryset, name, value):
        if value is None:
            return queryset
        user = getattr(self.request, "user", None)
        if value:
            return queryset.filter(assignee=user)
        return queryset.exclude(assignee=user)

    def filter_unassigned(self, queryset, name, value):
        if value is None:
            return queryset
        return queryset.filter(assignee__isnull=value)

    def filter_text(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        pk = Case.pk_from_key(value)
        if pk is not None:
            return queryset.filter(pk=pk)
        return queryset.filter(Q(title__icontains=value))

    @property
    def qs(self):
        queryset = super().qs
        # A tag filter joins a many-to-many table; keep each case once.
        if self.form.cleaned_data.get("tag"):
            queryset = queryset.distinct()
        return queryset
