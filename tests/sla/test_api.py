"""The SLA API: who may do what, field errors, the case's clocks and the preview."""

from __future__ import annotations

import datetime as dt

import pytest
from rest_framework.test import APIClient

from cases import services as case_services
from sla.models import BusinessCalendar, SlaPolicy
from tests import factories
from tests.factories import at
from tests.sla.factories import BusinessCalendarFactory

CALENDARS = "/api/sla/calendars/"
POLICIES = "/api/sla/policies/"
PREVIEW = "/api/sla/preview"
T0 = at(2026, 3, 4, 10, 0)


def client_for(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def _calendar_body(**overrides):
    body = {
        "name": "Sydney office",
        "time_zone": "Australia/Sydney",
        "opening_hours": [{"weekday": d, "start": "08:30", "end": "17:30"} for d in range(5)],
        "custom_holidays": [{"date": "2026-12-24", "name": "Christmas Eve"}],
        "holiday_country": "AU",
        "holiday_subdivision": "NSW",
    }
    body.update(overrides)
    return body


# --- Permissions ----------------------------------------------------------------------------------


@pytest.mark.parametrize("url", [CALENDARS, POLICIES, "/api/cases/CASE-1/sla/"])
def test_anonymous_callers_are_refused(db, url):
    assert client_for().get(url).status_code == 401
    assert client_for().post(PREVIEW, {}, format="json").status_code == 401


@pytest.mark.parametrize("url", [CALENDARS, POLICIES])
def test_engineers_may_not_see_sla_settings(engineer, url):
    assert client_for(engineer).get(url).status_code == 403


def test_engineers_may_not_see_a_cases_clocks_or_preview(engineer, new_case, organisation):
    assert client_for(engineer).get(f"/api/cases/{new_case.key}/sla/").status_code == 403
    body = {"organisation": organisation.pk, "severity": "P1", "start": "2026-03-06T17:30"}
    assert client_for(engineer).post(PREVIEW, body, format="json").status_code == 403


def test_agents_read_but_only_managers_change_policies_and_calendars(agent, manager):
    policy = SlaPolicy.objects.get(tier="enterprise", severity="P1")
    assert client_for(agent).get(POLICIES).status_code == 200
    assert client_for(agent).get(CALENDARS).status_code == 200
    assert (
        client_for(agent).patch(f"{POLICIES}{policy.pk}/", {"triage_minutes": 20}, format="json").status_code
        == 403
    )
    assert client_for(agent).post(CALENDARS, _calendar_body(), format="json").status_code == 403
    response = client_for(manager).patch(f"{POLICIES}{policy.pk}/", {"triage_minutes": 20}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["triage_minutes"] == 20
    assert SlaPolicy.objects.get(pk=policy.pk).triage_minutes == 20


# --- Calendars ------------------------------------------------------------------------------------


def test_a_manager_creates_and_changes_a_calendar(manager, organisation):
    response = client_for(manager).post(
        CALENDARS, _calendar_body(organisations=[organisation.pk]), format="json"
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["opening_hours"][0] == {"weekday": 0, "start": "08:30", "end": "17:30"}
    assert body["custom_holidays"] == [{"date": "2026-12-24", "name": "Christmas Eve"}]
    assert body["organisations"] == [organisation.pk]
    assert body["version"] == 1

    hours = [{"weekday": 5, "start": "10:00", "end": "24:00"}]
    response = client_for(manager).patch(f"{CALENDARS}{body['id']}/", {"opening_hours": hours}, format="json")
    assert response.status_code == 200, response.json()
    changed = response.json()
    assert changed["opening_hours"] == [{"weekday": 5, "start": "10:00", "end": "24:00"}]
    assert changed["custom_holidays"] == body["custom_holidays"]  # untouched by the PATCH
    assert changed["organisations"] == [organisation.pk]
    assert changed["version"] == 2


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        (
            {
                "opening_hours": [
                    {"weekday": 1, "start": "09:00", "end": "13:00"},
                    {"weekday": 1, "start": "12:30", "end": "17:00"},
                ]
            },
            "opening_hours",
        ),
        ({"opening_hours": [{"weekday": 7, "start": "09:00", "end": "17:00"}]}, "opening_hours"),
        ({"opening_hours": [{"weekday": 1, "start": "9am", "end": "17:00"}]}, "opening_hours"),
        ({"opening_hours": [{"weekday": 1, "start": "17:00", "end": "09:00"}]}, "opening_hours"),
        ({"opening_hours": "all week"}, "opening_hours"),
        ({"time_zone": "Moon/Base"}, "time_zone"),
        ({"holiday_country": "ZZ"}, "holiday_country"),
        ({"custom_holidays": [{"date": "24.12.2026"}]}, "custom_holidays"),
        ({"name": ""}, "name"),
        ({"name": 42}, "name"),
        ({"always_open": "yes"}, "always_open"),
        ({"organisations": [999999]}, "organisations"),
    ],
)
def test_an_invalid_calendar_is_a_400_with_the_field_named(manager, overrides, field):
    response = client_for(manager).post(CALENDARS, _calendar_body(**overrides), format="json")
    assert response.status_code == 400
    assert field in response.json(), response.json()
    assert not BusinessCalendar.objects.filter(name="Sydney office").exists()


def test_the_default_calendar_cannot_be_deleted_but_an_unused_one_can(manager):
    default = BusinessCalendar.objects.get(is_default=True)
    response = client_for(manager).delete(f"{CALENDARS}{default.pk}/")
    assert response.status_code == 400
    assert "is_default" in response.json()
    unused = BusinessCalendarFactory()
    assert client_for(manager).delete(f"{CALENDARS}{unused.pk}/").status_code == 204


def test_listing_calendars_costs_the_same_queries_for_many(agent, django_assert_max_num_queries):
    for _ in range(5):
        BusinessCalendarFactory()
    client = client_for(agent)
    with django_assert_max_num_queries(6):
        response = client.get(CALENDARS)
    assert len(response.json()) == 6


# --- Policies -------------------------------------------------------------------------------------


def test_policies_list_every_tier_and_severity(agent, django_assert_max_num_queries):
    client = client_for(agent)
    with django_assert_max_num_queries(3):
        response = client.get(POLICIES)
    rows = response.json()
    assert len(rows) == 12
    p1 = next(r for r in rows if (r["tier"], r["severity"]) == ("enterprise", "P1"))
    assert (p1["first_response_minutes"], p1["business_time"], p1["warning_ratio"]) == (15, False, 0.75)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"warning_ratio": 1.2}, "warning_ratio"),
        ({"first_response_minutes": 0}, "first_response_minutes"),
        ({"resolution_minutes": 1.5}, "resolution_minutes"),
        ({"triage_minutes": "soon"}, "triage_minutes"),
        ({"business_time": "maybe"}, "business_time"),
        ({"severity": "P9"}, "severity"),
    ],
)
def test_an_invalid_policy_change_is_a_400_with_the_field_named(manager, body, field):
    policy = SlaPolicy.objects.get(tier="business", severity="P2")
    response = client_for(manager).patch(f"{POLICIES}{policy.pk}/", body, format="json")
    assert response.status_code == 400
    assert field in response.json()


def test_a_second_policy_for_the_same_tier_and_severity_is_refused(manager):
    body = {"tier": "standard", "severity": "P4", "first_response_minutes": 60}
    response = client_for(manager).post(POLICIES, body, format="json")
    assert response.status_code == 400
    assert "already a policy" in response.json()["severity"][0]
    SlaPolicy.objects.filter(tier="standard", severity="P4").delete()
    response = client_for(manager).post(POLICIES, body, format="json")
    assert response.status_code == 201
    assert response.json()["triage_minutes"] is None


def test_a_target_can_be_switched_off(manager):
    policy = SlaPolicy.objects.get(tier="standard", severity="P3")
    response = client_for(manager).patch(
        f"{POLICIES}{policy.pk}/", {"update_cadence_minutes": None}, format="json"
    )
    assert response.status_code == 200
    assert SlaPolicy.objects.get(pk=policy.pk).update_cadence_minutes is None


# --- A case's clocks ------------------------------------------------------------------------------


def test_a_cases_clocks_with_their_remaining_time(agent, organisation, contact, time_machine):
    case = case_services.create_case(
        title="Down", organisation=organisation, requester=contact, severity="P2", actor=agent, now=T0
    )
    time_machine.move_to(T0 + dt.timedelta(minutes=50), tick=False)
    response = client_for(agent).get(f"/api/cases/{case.key}/sla/")
    assert response.status_code == 200
    body = response.json()
    assert body["case"] == case.key
    clocks = {c["target"]: c for c in body["clocks"]}
    assert list(clocks) == ["first_response", "triage", "update_cadence", "resolution"]
    fr = clocks["first_response"]
    assert (fr["state"], fr["display_state"], fr["remaining_seconds"], fr["target_minutes"]) == (
        "running",
        "at_risk",  # 50 of 60 minutes used: past the 75 % warning point
        600,
        60,
    )
    assert clocks["triage"]["display_state"] == "on_track"
    assert fr["due_at"] == "2026-03-04T11:00:00Z"


def test_a_paused_clock_shows_the_business_time_it_has_left(agent, organisation, contact):
    case = case_services.create_case(
        title="Down",
        organisation=organisation,
        requester=contact,
        severity="P2",
        assignee=agent,
        actor=agent,
        now=T0,
    )
    case = case_services.transition(case, "triaged", severity="P2", actor=agent, now=T0)
    case = case_services.transition(case, "in_progress", actor=agent, now=T0)
    case_services.transition(case, "waiting_on_customer", actor=agent, now=T0 + dt.timedelta(hours=1))
    clocks = {c["target"]: c for c in client_for(agent).get(f"/api/cases/{case.key}/sla/").json()["clocks"]}
    assert clocks["resolution"]["display_state"] == "paused"
    assert clocks["resolution"]["remaining_seconds"] == 23 * 3600


def test_the_clock_history_lists_every_update_run(agent, new_case, now):
    case_services.add_public_reply(new_case, body="Hello", actor=agent, now=now)
    current = client_for(agent).get(f"/api/cases/{new_case.key}/sla/").json()["clocks"]
    history = client_for(agent).get(f"/api/cases/{new_case.key}/sla/?history=true").json()["clocks"]
    assert [c["run"] for c in current if c["target"] == "update_cadence"] == [2]
    assert [c["run"] for c in history if c["target"] == "update_cadence"] == [1, 2]


@pytest.mark.parametrize("key", ["CASE-999999", "nonsense", "CASE-"])
def test_an_unknown_case_is_a_404(agent, key):
    assert client_for(agent).get(f"/api/cases/{key}/sla/").status_code == 404


# --- Preview --------------------------------------------------------------------------------------


def test_preview_if_a_p2_arrives_friday_1730_when_is_it_due(agent):
    org = factories.OrganisationFactory(name="Initech", tier="standard")
    body = {"organisation": org.pk, "severity": "P2", "start": "2026-03-06T17:30"}
    response = client_for(agent).post(PREVIEW, body, format="json")
    assert response.status_code == 200, response.json()
    result = response.json()
    assert (result["tier"], result["business_time"], result["time_zone"]) == ("standard", True, "UTC")
    due = {t["target"]: t["due_at"] for t in result["targets"]}
    # Standard P2: first response 4 business hours -> Monday 13:00 in the default calendar (UTC).
    assert due["first_response"] == "2026-03-09T13:00:00Z"
    assert due["resolution"] == "2026-03-13T17:00:00Z"  # 40 business hours = the whole next week


def test_preview_answers_with_a_trailing_slash_too(agent, organisation):
    body = {"organisation": organisation.pk, "severity": "P1", "start": "2026-03-06T23:50:00Z"}
    assert client_for(agent).post(PREVIEW + "/", body, format="json").status_code == 200


def test_preview_with_a_calendar_and_tier_and_an_explicit_offset(agent):
    calendar = BusinessCalendarFactory(time_zone="Europe/Berlin")
    body = {
        "calendar": calendar.pk,
        "tier": "enterprise",
        "severity": "P4",
        "start": "2026-03-06T16:30:00+01:00",
    }
    result = client_for(agent).post(PREVIEW, body, format="json").json()
    due = {t["target"]: t for t in result["targets"]}
    assert due["first_response"]["due_at"] == "2026-03-09T15:30:00Z"  # 8 bh: Fri 30 min + Mon 7 h 30
    assert due["update_cadence"] == {
        "target": "update_cadence",
        "minutes": None,
        "warn_at": None,
        "due_at": None,
    }


def test_preview_of_a_24x7_policy_ignores_the_calendar(agent, organisation):
    body = {"organisation": organisation.pk, "severity": "P1", "start": "2026-03-06T23:50:00Z"}
    result = client_for(agent).post(PREVIEW, body, format="json").json()
    assert result["business_time"] is False
    assert result["targets"][0]["due_at"] == "2026-03-07T00:05:00Z"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"severity": "P2", "start": "2026-03-06T17:30"}, "organisation"),
        ({"organisation": 1, "calendar": 1, "severity": "P2", "start": "2026-03-06T17:30"}, "organisation"),
        ({"calendar": "CAL", "severity": "P2", "start": "2026-03-06T17:30", "tier": "standard"}, "calendar"),
        ({"calendar": "SELF", "severity": "P2", "start": "2026-03-06T17:30"}, "tier"),
        ({"organisation": "ORG", "severity": "P7", "start": "2026-03-06T17:30"}, "severity"),
        ({"organisation": "ORG", "severity": "P2", "start": "Friday at half five"}, "start"),
        ({"organisation": "ORG", "severity": "P2", "start": 12}, "start"),
        ({"organisation": 999999, "severity": "P2", "start": "2026-03-06T17:30"}, "organisation"),
    ],
)
def test_an_invalid_preview_is_a_400_with_the_field_named(agent, organisation, body, field):
    calendar = BusinessCalendar.objects.get(is_default=True)
    body = {k: organisation.pk if v == "ORG" else calendar.pk if v == "SELF" else v for k, v in body.items()}
    response = client_for(agent).post(PREVIEW, body, format="json")
    assert response.status_code == 400
    assert field in response.json(), response.json()


def test_the_schema_documents_the_sla_endpoints(agent, settings):
    response = client_for(agent).get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert {"/api/sla/calendars/", "/api/sla/policies/", "/api/sla/preview", "/api/cases/{key}/sla/"} <= set(
        paths
    )
