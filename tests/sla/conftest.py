from __future__ import annotations

import pytest

from sla import calendars


@pytest.fixture(autouse=True)
def _fresh_calendar_cache():
    """Each test's calendars are built from its own rows (ids and versions repeat across rollbacks)."""
    calendars.clear_cache()
    yield
    calendars.clear_cache()


@pytest.fixture
def office_hours(db):
    """Monday to Friday 09:00-17:00 in Berlin, no holidays."""
    from tests.sla.factories import BusinessCalendarFactory

    return BusinessCalendarFactory(name="Berlin office", time_zone="Europe/Berlin")


@pytest.fixture
def globex(office_hours):
    """A business-tier customer counting business hours of the Berlin office."""
    from tests.factories import OrganisationFactory
    from tests.sla.factories import OrganisationCalendarFactory

    org = OrganisationFactory(name="Globex", tier="business", time_zone="Europe/Berlin")
    OrganisationCalendarFactory(organisation=org, calendar=office_hours)
    return org


@pytest.fixture
def globex_contact(globex):
    from tests.factories import ContactFactory

    return ContactFactory(organisation=globex, name="Gus Globex", email="gus@globex.example")


@pytest.fixture
def business_p2(db):
    """Business P2 in business hours: first response 1 h, triage 2 h, update every 4 h, resolve in 24 h."""
    from tests.sla.factories import SlaPolicyFactory

    return SlaPolicyFactory(
        tier="business",
        severity="P2",
        business_time=True,
        warning_ratio=0.75,
        first_response_minutes=60,
        triage_minutes=120,
        update_cadence_minutes=240,
        resolution_minutes=1440,
    )
