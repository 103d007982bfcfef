"""factory-boy factories for the SLA models (one per model, realistic defaults)."""

from __future__ import annotations

import datetime as dt

import factory

from sla.models import BusinessCalendar, CustomHoliday, OpeningHours, OrganisationCalendar, SlaPolicy
from tests.factories import OrganisationFactory


class BusinessCalendarFactory(factory.django.DjangoModelFactory):
    """Monday to Friday 09:00-17:00 in Europe/Berlin unless ``hours=[(weekday, start, end), ...]``."""

    class Meta:
        model = BusinessCalendar
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"Office hours {n}")
    time_zone = "Europe/Berlin"

    @factory.post_generation
    def hours(obj, create, extracted, **kwargs):
        if not create or obj.always_open:
            return
        ranges = extracted if extracted is not None else [(d, dt.time(9), dt.time(17)) for d in range(5)]
        OpeningHours.objects.bulk_create(
            OpeningHours(calendar=obj, weekday=w, start=s, end=e) for w, s, e in ranges
        )


class OpeningHoursFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = OpeningHours

    calendar = factory.SubFactory(BusinessCalendarFactory, hours=[])
    weekday = 0
    start = dt.time(9)
    end = dt.time(17)


class CustomHolidayFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CustomHoliday

    calendar = factory.SubFactory(BusinessCalendarFactory)
    date = dt.date(2026, 12, 24)
    name = "Christmas Eve"


class OrganisationCalendarFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = OrganisationCalendar

    organisation = factory.SubFactory(OrganisationFactory)
    calendar = factory.SubFactory(BusinessCalendarFactory)


class SlaPolicyFactory(factory.django.DjangoModelFactory):
    """Updates the seeded policy of (tier, severity) rather than clashing with it."""

    class Meta:
        model = SlaPolicy
        django_get_or_create = ("tier", "severity")

    tier = "business"
    severity = "P2"
    business_time = True
    warning_ratio = 0.75
    first_response_minutes = 60
    triage_minutes = 120
    update_cadence_minutes = 240
    resolution_minutes = 1440

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        policy = super()._create(model_class, *args, **kwargs)
        for name, value in kwargs.items():
            setattr(policy, name, value)
        policy.save()
        return policy
