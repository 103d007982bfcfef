"""The managers' SLA pages and the clock badges other pages include."""

from __future__ import annotations

import datetime as dt

import pytest
from django.template import Context, Template
from django.urls import reverse

from cases import services as case_services
from sla.models import BusinessCalendar, OrganisationCalendar, SlaClock, SlaPolicy
from tests import factories
from tests.factories import at
from tests.sla.factories import BusinessCalendarFactory

T0 = at(2026, 3, 4, 10, 0)


def _policy_post(policies, **changes):
    """The policies form as the page renders it, with ``changes`` for (tier, severity, field)."""
    data = {"p-TOTAL_FORMS": str(len(policies)), "p-INITIAL_FORMS": str(len(policies))}
    for i, p in enumerate(policies):
        row = {
            "policy_id": p.pk,
            "warning_percent": round(p.warning_ratio * 100),
            "first_response_minutes": p.first_response_minutes or "",
            "triage_minutes": p.triage_minutes or "",
            "update_cadence_minutes": p.update_cadence_minutes or "",
            "resolution_minutes": p.resolution_minutes or "",
        }
        if p.business_time:
            row["business_time"] = "on"
        row.update(changes.get(f"{p.tier}_{p.severity}", {}))
        data.update({f"p-{i}-{k}": v for k, v in row.items() if v is not None})
    return data


def test_only_managers_see_the_policies_page(client, agent, engineer, manager):
    url = reverse("sla:policies")
    assert client.get(url).status_code == 302  # to the login page
    for user in (agent, engineer):
        client.force_login(user)
        assert client.get(url).status_code == 403
    client.force_login(manager)
    response = client.get(url)
    assert response.status_code == 200
    assert "Standard business hours" in response.content.decode()


def test_a_manager_edits_policies_in_the_table(client, manager):
    client.force_login(manager)
    policies = list(SlaPolicy.objects.order_by("tier", "severity"))
    data = _policy_post(
        policies,
        enterprise_P1={"first_response_minutes": 10, "warning_percent": 80, "update_cadence_minutes": ""},
    )
    response = client.post(reverse("sla:policies"), data)
    assert response.status_code == 302
    p1 = SlaPolicy.objects.get(tier="enterprise", severity="P1")
    assert (p1.first_response_minutes, p1.warning_ratio, p1.update_cadence_minutes) == (10, 0.8, None)
    assert SlaPolicy.objects.get(tier="standard", severity="P4").resolution_minutes == 160 * 60  # untouched


def test_an_invalid_policy_value_is_shown_next_to_its_field(client, manager):
    client.force_login(manager)
    policies = list(SlaPolicy.objects.order_by("tier", "severity"))
    response = client.post(
        reverse("sla:policies"),
        _policy_post(policies, business_P2={"triage_minutes": "-5", "warning_percent": "150"}),
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert "Ensure this value is greater than or equal to 1" in page
    assert "-5" in page  # what the manager typed is kept
    assert SlaPolicy.objects.get(tier="business", severity="P2").triage_minutes == 240


def test_the_policies_page_previews_when_a_case_would_be_due(client, manager):
    client.force_login(manager)
    org = factories.OrganisationFactory(name="Initech", tier="standard")
    response = client.get(
        reverse("sla:policies"), {"organisation": org.pk, "severity": "P2", "start": "2026-03-06T17:30"}
    )
    assert response.status_code == 200
    preview = response.context["preview"]
    due = {t.target: t.due_at for t in preview.targets}
    assert due["first_response"] == at(2026, 3, 9, 13, 0)
    page = response.content.decode()
    assert "Mon 9 Mar 2026 13:00" in page  # shown in the calendar's zone (UTC)


def test_an_invalid_preview_is_a_form_error_not_a_crash(client, manager):
    client.force_login(manager)
    response = client.get(reverse("sla:policies"), {"organisation": "x", "severity": "P2", "start": "soon"})
    assert response.status_code == 200
    assert response.context["preview"] is None
    assert set(response.context["preview_form"].errors) == {"organisation", "start"}


def test_a_manager_creates_a_calendar_with_hours_holidays_and_organisations(client, manager):
    client.force_login(manager)
    org = factories.OrganisationFactory(name="Globex")
    data = {
        "name": "Berlin office",
        "time_zone": "Europe/Berlin",
        "holiday_country": "DE",
        "hours_0": "09:00-12:00, 13:00-17:00",
        "hours_4": "09:00-24:00",
        "custom_holidays": "2026-12-24 Christmas Eve\n\n2026-12-31",
        "organisations": [org.pk],
    }
    response = client.post(reverse("sla:calendar-new"), data)
    assert response.status_code == 302
    calendar = BusinessCalendar.objects.get(name="Berlin office")
    assert [(h.weekday, h.start, h.end) for h in calendar.opening_hours.all()] == [
        (0, dt.time(9), dt.time(12)),
        (0, dt.time(13), dt.time(17)),
        (4, dt.time(9), dt.time(0)),
    ]
    assert list(calendar.custom_holidays.values_list("name", flat=True)) == ["Christmas Eve", ""]
    assert OrganisationCalendar.objects.get(organisation=org).calendar == calendar
    # The edit page shows it back as entered.
    page = client.get(reverse("sla:calendar-edit", args=[calendar.pk])).content.decode()
    assert 'value="09:00-12:00, 13:00-17:00"' in page
    assert 'value="09:00-24:00"' in page


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"hours_1": "09:00-13:00, 12:00-17:00"}, "overlap on Tuesday"),
        ({"hours_2": "nine to five"}, "not a range like 09:00-17:00"),
        ({"hours_2": "09:00-25:00"}, "valid times"),
        ({"time_zone": "Europe/Atlantis"}, "not a known time zone"),
        ({"custom_holidays": "Christmas 2026-12-24"}, "Line 1"),
        ({"hours_0": ""}, "at least one opening range"),
    ],
)
def test_an_invalid_calendar_is_a_form_error(client, manager, data, message):
    client.force_login(manager)
    body = {"name": "Broken", "time_zone": "UTC", "hours_0": "09:00-17:00", **data}
    response = client.post(reverse("sla:calendar-new"), body)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not BusinessCalendar.objects.filter(name="Broken").exists()


def test_deleting_a_calendar(client, manager):
    client.force_login(manager)
    unused = BusinessCalendarFactory(name="Old office")
    assert client.post(reverse("sla:calendar-delete", args=[unused.pk])).status_code == 302
    assert not BusinessCalendar.objects.filter(pk=unused.pk).exists()
    default = BusinessCalendar.objects.get(is_default=True)
    response = client.post(reverse("sla:calendar-delete", args=[default.pk]), follow=True)
    assert "cannot be deleted" in response.content.decode()
    assert BusinessCalendar.objects.filter(pk=default.pk).exists()


def test_agents_cannot_change_calendars(client, agent):
    client.force_login(agent)
    calendar = BusinessCalendar.objects.get(is_default=True)
    assert client.get(reverse("sla:calendar-edit", args=[calendar.pk])).status_code == 403
    assert client.post(reverse("sla:calendar-delete", args=[calendar.pk])).status_code == 403


# --- Badges ---------------------------------------------------------------------------------------


def _render(source: str, **context) -> str:
    return Template("{% load sla %}" + source).render(Context(context))


def test_the_badges_say_each_state_in_words(organisation, contact, agent):
    case = case_services.create_case(
        title="Down",
        organisation=organisation,
        requester=contact,
        severity="P2",
        assignee=agent,
        actor=agent,
        now=T0,
    )
    case_services.add_public_reply(case, body="Hi", actor=agent, now=T0 + dt.timedelta(minutes=5))
    SlaClock.objects.filter(case=case, target="triage").update(
        state="breached", due_at=T0 + dt.timedelta(minutes=60), breached_at=T0 + dt.timedelta(minutes=61)
    )
    html = _render(
        "{% case_clocks case now=now as clocks %}{% sla_badges clocks %}",
        case=case,
        now=T0 + dt.timedelta(minutes=100),
    )
    assert "First response: <strong>Met</strong>" in html
    assert "Triage: <strong>Breached</strong>" in html
    assert "Triage: <strong>Breached</strong> · overdue by 40 min" in html
    assert "Next update: <strong>At risk</strong> · due in 25 min" in html  # 95 of 120 min used
    assert "Resolution: <strong>On track</strong> · due in 22 h 20 min" in html
    assert '<svg class="icon icon-warning"' in html  # an icon besides the colour, in any font


def test_a_list_page_gets_every_cases_badges_in_one_query(
    organisation, contact, agent, django_assert_num_queries
):
    cases = [
        case_services.create_case(
            title=f"Case {i}",
            organisation=organisation,
            requester=contact,
            severity="P2",
            actor=agent,
            now=T0,
        )
        for i in range(4)
    ]
    case_services.transition(cases[0], "resolved", actor=agent, now=T0)
    with django_assert_num_queries(1):
        html = _render(
            "{% sla_clocks_for cases now=now as sla %}"
            "{% for c in cases %}<tr>{% sla_badges sla|for_case:c compact=True %}</tr>{% endfor %}",
            cases=cases,
            now=T0,
        )
    rows = html.split("<tr>")[1:]
    assert "sla-badge" not in rows[0]  # resolved: nothing left to count
    assert all(row.count('class="pill sla-badge') == 4 for row in rows[1:])


# --- Admin ----------------------------------------------------------------------------------------


def test_admins_manage_calendars_and_policies_and_read_clocks(client, admin_user, new_case):
    client.force_login(admin_user)
    calendar = BusinessCalendar.objects.get(is_default=True)
    for url in (
        reverse("admin:sla_businesscalendar_changelist"),
        reverse("admin:sla_businesscalendar_change", args=[calendar.pk]),
        reverse("admin:sla_slapolicy_changelist"),
        reverse("admin:sla_slaclock_changelist"),
        reverse("admin:sla_slaclock_change", args=[new_case.sla_clocks.first().pk]),
    ):
        assert client.get(url).status_code == 200, url
    assert client.get(reverse("admin:sla_slaclock_add")).status_code == 403


def _admin_calendar_post(calendar, hours):
    data = {
        "name": calendar.name,
        "time_zone": calendar.time_zone,
        "holiday_country": "",
        "holiday_subdivision": "",
        "is_default": "on",
        "opening_hours-TOTAL_FORMS": str(len(hours)),
        "opening_hours-INITIAL_FORMS": "0",
        "custom_holidays-TOTAL_FORMS": "0",
        "custom_holidays-INITIAL_FORMS": "0",
        "organisations-TOTAL_FORMS": "0",
        "organisations-INITIAL_FORMS": "0",
    }
    for i, (weekday, start, end) in enumerate(hours):
        data |= {
            f"opening_hours-{i}-weekday": weekday,
            f"opening_hours-{i}-start": start,
            f"opening_hours-{i}-end": end,
        }
    return data


def test_the_admin_refuses_overlapping_hours_and_bumps_the_version(client, admin_user):
    client.force_login(admin_user)
    calendar = BusinessCalendarFactory(name="Admin office", hours=[])
    url = reverse("admin:sla_businesscalendar_change", args=[calendar.pk])
    overlapping = _admin_calendar_post(calendar, [(0, "09:00", "13:00"), (0, "12:00", "17:00")])
    response = client.post(url, overlapping)
    assert response.status_code == 200
    assert "overlap on Monday" in response.content.decode()
    assert not calendar.opening_hours.exists()
    response = client.post(url, _admin_calendar_post(calendar, [(0, "09:00", "13:00")]))
    assert response.status_code == 302
    calendar.refresh_from_db()
    assert calendar.version == 2
    assert calendar.is_default
    assert BusinessCalendar.objects.filter(is_default=True).count() == 1
