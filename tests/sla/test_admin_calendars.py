"""The admin keeps the one-default rule of the SLA service (``sla.services``): one calendar is always
the default, and making another the default takes it from the previous one."""

from __future__ import annotations

import pytest
from django.urls import reverse

from sla.models import BusinessCalendar
from tests.sla.factories import BusinessCalendarFactory

pytestmark = pytest.mark.django_db


def _post(calendar: BusinessCalendar, *, is_default: bool) -> dict:
    data = {
        "name": calendar.name,
        "time_zone": calendar.time_zone,
        "always_open": "on",
        "holiday_country": "",
        "holiday_subdivision": "",
        "opening_hours-TOTAL_FORMS": "0",
        "opening_hours-INITIAL_FORMS": "0",
        "custom_holidays-TOTAL_FORMS": "0",
        "custom_holidays-INITIAL_FORMS": "0",
        "organisations-TOTAL_FORMS": "0",
        "organisations-INITIAL_FORMS": "0",
    }
    if is_default:
        data["is_default"] = "on"
    return data


def test_the_admin_cannot_leave_the_install_without_a_default_calendar(admin_client):
    default = BusinessCalendar.objects.get(is_default=True)
    url = reverse("admin:sla_businesscalendar_change", args=[default.pk])
    response = admin_client.post(url, _post(default, is_default=False))
    assert response.status_code == 200
    assert "one calendar is always the default" in response.content.decode()
    default.refresh_from_db()
    assert default.is_default


def test_making_another_calendar_the_default_in_the_admin_takes_it_from_the_previous(admin_client):
    previous = BusinessCalendar.objects.get(is_default=True)
    office = BusinessCalendarFactory(name="Head office", always_open=True)
    url = reverse("admin:sla_businesscalendar_change", args=[office.pk])
    response = admin_client.post(url, _post(office, is_default=True))
    assert response.status_code == 302, response.content.decode()[:2000]
    assert list(BusinessCalendar.objects.filter(is_default=True)) == [office]
    previous.refresh_from_db()
    assert not previous.is_default
