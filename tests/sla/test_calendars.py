"""Seeded defaults, and stored calendars turned into the arithmetic's calendars."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from sla import calendars, clock, defaults, services
from sla.models import BusinessCalendar, OpeningHours, OrganisationCalendar, SlaPolicy
from tests import factories
from tests.factories import at
from tests.sla.factories import BusinessCalendarFactory, CustomHolidayFactory, OrganisationCalendarFactory

MON_FRI_9_17 = [(d, dt.time(9), dt.time(17)) for d in range(5)]


def _save(calendar=None, **overrides):
    values = {
        "name": "Munich office",
        "time_zone": "Europe/Berlin",
        "always_open": False,
        "holiday_country": "",
        "holiday_subdivision": "",
        "is_default": False,
        "opening_hours": [services.OpeningRangeInput(*r) for r in MON_FRI_9_17],
        "custom_holidays": [],
        "organisations": None,
        "now": at(2026, 3, 1),
    }
    values.update(overrides)
    return services.save_calendar(calendar, **values)


# --- Seeds ----------------------------------------------------------------------------------------


def test_every_tier_and_severity_has_a_seeded_policy(db):
    policies = {(p.tier, p.severity): p for p in SlaPolicy.objects.all()}
    assert len(policies) == 12
    p1 = policies["enterprise", "P1"]
    assert (p1.first_response_minutes, p1.triage_minutes, p1.update_cadence_minutes, p1.business_time) == (
        15,
        30,
        30,
        False,
    )
    p2 = policies["enterprise", "P2"]
    assert (p2.first_response_minutes, p2.triage_minutes, p2.business_time) == (60, 120, False)
    p3 = policies["enterprise", "P3"]
    assert (p3.first_response_minutes, p3.business_time) == (240, True)  # 4 business hours
    assert all(p.warning_ratio == 0.75 for p in policies.values())
    assert all(p.update_cadence_minutes is None for (_, sev), p in policies.items() if sev == "P4")


def test_the_default_calendar_is_weekday_office_hours_in_utc(db):
    calendar = BusinessCalendar.objects.get(is_default=True)
    assert (calendar.name, calendar.time_zone, calendar.always_open) == (
        "Standard business hours",
        "UTC",
        False,
    )
    assert [(h.weekday, h.start, h.end) for h in calendar.opening_hours.all()] == MON_FRI_9_17


def test_seeding_again_keeps_what_managers_changed(db):
    SlaPolicy.objects.filter(tier="standard", severity="P1").update(first_response_minutes=45)
    defaults.seed(calendar_model=BusinessCalendar, opening_hours_model=OpeningHours, policy_model=SlaPolicy)
    assert SlaPolicy.objects.count() == 12
    assert SlaPolicy.objects.get(tier="standard", severity="P1").first_response_minutes == 45
    assert BusinessCalendar.objects.filter(is_default=True).count() == 1


def test_at_most_one_calendar_is_the_default(db):
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        BusinessCalendar.objects.create(name="Second default", is_default=True)


# --- Conversion -----------------------------------------------------------------------------------


def test_a_calendar_becomes_zone_hours_and_holidays(db):
    calendar = BusinessCalendarFactory(
        time_zone="Europe/Berlin", holiday_country="DE", holiday_subdivision="BY"
    )
    CustomHolidayFactory(calendar=calendar, date=dt.date(2026, 12, 24), name="Christmas Eve")
    result = calendars.clock_calendar(
        calendar, business_time=True, since=at(2026, 6, 1), until=at(2026, 6, 1)
    )
    assert result.tz == "Europe/Berlin"
    assert [(r.weekday, r.start, r.end) for r in result.ranges] == MON_FRI_9_17
    assert dt.date(2026, 12, 24) in result.holidays  # custom
    assert dt.date(2026, 12, 25) in result.holidays  # German public holiday
    assert dt.date(2026, 1, 6) in result.holidays  # Epiphany: Bavaria only
    assert dt.date(2027, 12, 25) in result.holidays  # the years after are included too
    # Wednesday 2026-12-23 16:30 + 1 business hour: 30 min, then the holidays and the weekend.
    due = clock.add_business_minutes(result, at(2026, 12, 23, 16, 30, tz="Europe/Berlin"), 60)
    assert due == at(2026, 12, 28, 9, 30, tz="Europe/Berlin")


def test_a_24x7_policy_or_calendar_counts_every_hour(db):
    calendar = BusinessCalendarFactory()
    instant = at(2026, 6, 1)
    assert calendars.clock_calendar(calendar, business_time=False, since=instant, until=instant).always_open
    open_all_day = BusinessCalendarFactory(always_open=True)
    assert calendars.clock_calendar(
        open_all_day, business_time=True, since=instant, until=instant
    ).always_open


def test_an_organisation_uses_its_calendar_or_else_the_default(db):
    org = factories.OrganisationFactory()
    assert calendars.calendar_for_organisation(org.pk).is_default
    link = OrganisationCalendarFactory(organisation=org)
    assert calendars.calendar_for_organisation(org.pk) == link.calendar


def test_an_edited_calendar_is_never_served_from_the_cache(db, time_machine):
    time_machine.move_to(at(2026, 3, 2, 8), tick=False)  # updated_at does not move: the version does
    calendar = _save()
    before = calendars.clock_calendar(
        calendar, business_time=True, since=at(2026, 3, 2), until=at(2026, 3, 2)
    )
    calendar = _save(
        calendar, opening_hours=[services.OpeningRangeInput(d, dt.time(8), dt.time(12)) for d in range(5)]
    )
    after = calendars.clock_calendar(calendar, business_time=True, since=at(2026, 3, 2), until=at(2026, 3, 2))
    assert before.ranges[0].end == dt.time(17)
    assert after.ranges[0].end == dt.time(12)
    assert calendar.version == 2


def test_a_calendar_without_hours_that_slipped_past_validation_counts_24x7(db):
    calendar = BusinessCalendarFactory(hours=[])
    result = calendars.clock_calendar(
        calendar, business_time=True, since=at(2026, 1, 1), until=at(2026, 1, 1)
    )
    assert result.always_open


# --- Saving calendars -----------------------------------------------------------------------------


def test_saving_a_calendar_replaces_hours_holidays_and_organisations(db):
    acme, globex = factories.OrganisationFactory(name="Acme"), factories.OrganisationFactory(name="Globex")
    other = BusinessCalendarFactory()
    OrganisationCalendarFactory(organisation=globex, calendar=other)
    calendar = _save(
        custom_holidays=[(dt.date(2026, 12, 31), "New Year's Eve")],
        holiday_country="de",
        organisations=[acme, globex],
    )
    assert calendar.holiday_country == "DE"
    assert list(calendar.custom_holidays.values_list("date", "name")) == [
        (dt.date(2026, 12, 31), "New Year's Eve")
    ]
    assert set(
        OrganisationCalendar.objects.filter(calendar=calendar).values_list("organisation__name", flat=True)
    ) == {
        "Acme",
        "Globex",  # moved from the other calendar
    }
    calendar = _save(calendar, organisations=[acme], custom_holidays=[])
    assert not calendar.custom_holidays.exists()
    assert calendars.calendar_for_organisation(globex.pk).is_default


def test_making_a_calendar_the_default_unsets_the_previous_one(db):
    calendar = _save(is_default=True)
    assert list(BusinessCalendar.objects.filter(is_default=True)) == [calendar]
    with pytest.raises(ValidationError) as exc:
        _save(calendar, is_default=False)
    assert "is_default" in exc.value.message_dict


@pytest.mark.parametrize(
    ("overrides", "field", "fragment"),
    [
        ({"name": "  "}, "name", "needs a name"),
        ({"name": "standard BUSINESS hours"}, "name", "already a calendar"),
        ({"time_zone": "Mars/Olympus"}, "time_zone", "not a known time zone"),
        ({"holiday_country": "XX"}, "holiday_country", "not a country"),
        ({"holiday_country": "DE", "holiday_subdivision": "ZZ"}, "holiday_subdivision", "not a subdivision"),
        ({"holiday_subdivision": "BY"}, "holiday_subdivision", "country"),
        ({"opening_hours": []}, "opening_hours", "at least one"),
        (
            {
                "opening_hours": [
                    services.OpeningRangeInput(0, dt.time(9), dt.time(13)),
                    services.OpeningRangeInput(0, dt.time(12), dt.time(17)),
                ]
            },
            "opening_hours",
            "overlap on Monday",
        ),
        (
            {"opening_hours": [services.OpeningRangeInput(2, dt.time(17), dt.time(9))]},
            "opening_hours",
            "before",
        ),
        ({"always_open": True}, "opening_hours", "24x7"),
        (
            {"custom_holidays": [(dt.date(2026, 1, 2), "a"), (dt.date(2026, 1, 2), "b")]},
            "custom_holidays",
            "only once",
        ),
    ],
)
def test_an_invalid_calendar_is_refused_with_a_message_per_field(db, overrides, field, fragment):
    with pytest.raises(ValidationError) as exc:
        _save(**overrides)
    assert fragment in " ".join(exc.value.message_dict[field])
    assert not BusinessCalendar.objects.filter(name="Munich office").exists()


def test_a_calendar_in_use_or_the_default_cannot_be_deleted(db):
    calendar = _save(organisations=[factories.OrganisationFactory()])
    with pytest.raises(ValidationError):
        services.delete_calendar(calendar)
    with pytest.raises(ValidationError):
        services.delete_calendar(BusinessCalendar.objects.get(is_default=True))
    _save(calendar, organisations=[])
    services.delete_calendar(calendar)
    assert not BusinessCalendar.objects.filter(pk=calendar.pk).exists()


def test_a_policy_is_validated_and_unique_per_tier_and_severity(db):
    policy = SlaPolicy.objects.get(tier="business", severity="P3")
    terms = {
        "business_time": True,
        "warning_ratio": 0.8,
        "first_response_minutes": 30,
        "triage_minutes": None,
        "update_cadence_minutes": 600,
        "resolution_minutes": 2400,
    }
    saved = services.save_policy(policy, tier="business", severity="P3", **terms)
    assert (saved.warning_ratio, saved.triage_minutes) == (0.8, None)
    with pytest.raises(ValidationError) as exc:
        services.save_policy(None, tier="business", severity="P3", **terms)
    assert "severity" in exc.value.message_dict
    with pytest.raises(ValidationError) as exc:
        services.save_policy(
            policy, tier="gold", severity="P9", **{**terms, "warning_ratio": 1.5, "first_response_minutes": 0}
        )
    assert set(exc.value.message_dict) == {"tier", "severity", "warning_ratio", "first_response_minutes"}
    assert timezone.is_aware(SlaPolicy.objects.get(pk=policy.pk).updated_at)
