"""The configuration audit trail: each change to the settings that decide service levels and access
is recorded with who, when, before and after, and shown to managers and admins only."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from cases.models import Organisation
from escalations import services as escalation_services
from escalations.models import EngineeringTeam, WebhookSubscription
from sla.models import BusinessCalendar, CustomHoliday, SlaPolicy
from supportdesk.core import audit
from supportdesk.core.audit_selectors import change_index, describe
from supportdesk.core.models import ApiToken
from supportdesk.core.roles import Role
from tests import factories
from tests.factories import at

PAGE = reverse("core:config-changes")
API = reverse("core:api-config-changes")


def api_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def browser_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def latest(kind: str, **match):
    """The newest recorded change of ``kind`` (as the page shows it)."""
    rows = list(change_index(kind=kind)[:20])
    for change in describe(rows):
        if all(getattr(change, k) == v for k, v in match.items()):
            return change
    raise AssertionError(f"no {kind} change matching {match}")


def fields(change) -> dict[str, tuple[str | None, str | None]]:
    return {
        f.field: (f.before.as_json() if f.before else None, f.after.as_json() if f.after else None)
        for f in change.changes
    }


# --- What is recorded ----------------------------------------------------------------------------


def test_a_policy_change_is_recorded_with_who_when_before_and_after(manager, time_machine):
    time_machine.move_to(at(2026, 3, 4, 10, 0), tick=False)
    policy = SlaPolicy.objects.get(tier="enterprise", severity="P1")
    before = policy.triage_minutes
    response = api_for(manager).patch(
        f"/api/sla/policies/{policy.pk}/", {"triage_minutes": 20}, format="json"
    )
    assert response.status_code == 200, response.json()

    change = latest("sla.slapolicy", object_id=policy.pk, action="changed")
    assert change.user_id == manager.pk
    assert change.actor == "Maria Manager"
    assert change.at == at(2026, 3, 4, 10, 0)
    assert change.object_label == "Enterprise P1"
    assert fields(change) == {"triage_minutes": (str(before), "20")}


def test_adding_a_holiday_to_a_calendar_records_that_holiday_and_nothing_else(manager):
    calendar = BusinessCalendar.objects.get(is_default=True)
    hours_before = calendar.opening_hours.count()
    body = {
        "name": calendar.name,
        "time_zone": calendar.time_zone,
        "opening_hours": [
            {"weekday": h.weekday, "start": f"{h.start:%H:%M}", "end": f"{h.end:%H:%M}"}
            for h in calendar.opening_hours.all()
        ],
        "custom_holidays": [{"date": "2026-12-24", "name": "Christmas Eve"}],
        "is_default": True,
    }
    response = api_for(manager).put(f"/api/sla/calendars/{calendar.pk}/", body, format="json")
    assert response.status_code == 200, response.json()

    holiday = CustomHoliday.objects.get(calendar=calendar)
    change = latest("sla.customholiday", object_id=holiday.pk)
    assert (change.action, change.user_id) == ("created", manager.pk)
    assert change.object_label == f"{calendar.name} · 2026-12-24 Christmas Eve"
    assert fields(change) == {
        "calendar": (None, calendar.name),
        "date": (None, "2026-12-24"),
        "name": (None, "Christmas Eve"),
    }
    # The unchanged opening hours were neither deleted nor re-created.
    assert calendar.opening_hours.count() == hours_before
    assert not change_index(kind="sla.openinghours").exists()


def test_an_organisation_tier_change_is_recorded(manager, organisation):
    response = api_for(manager).patch(
        f"/api/organisations/{organisation.pk}/", {"tier": "business"}, format="json"
    )
    assert response.status_code == 200, response.json()
    change = latest("cases.organisation", object_id=organisation.pk, action="changed")
    assert change.user_id == manager.pk
    assert change.object_label == "Acme Corp"
    assert fields(change) == {"tier": ("Enterprise", "Business")}


def test_a_contact_renamed_and_readdressed_is_recorded_with_who_before_and_after(agent, contact):
    response = api_for(agent).patch(
        f"/api/contacts/{contact.pk}/",
        {"name": "Carla Client-Jones", "email": "carla.jones@acme.example"},
        format="json",
    )
    assert response.status_code == 200, response.json()
    change = latest("cases.contact", object_id=contact.pk, action="changed")
    assert change.user_id == agent.pk
    assert change.object_label == "Carla Client-Jones <carla.jones@acme.example> · Acme Corp"
    assert fields(change) == {
        "name": (contact.name, "Carla Client-Jones"),
        "email": (contact.email, "carla.jones@acme.example"),
    }


def test_an_engineering_team_change_and_its_members_are_recorded(manager, engineer):
    team = escalation_services.save_team(actor=manager, name="Payments", components="billing")
    escalation_services.save_team(actor=manager, team=team, members=[engineer], min_quality_score=4)

    change = latest("escalations.engineeringteam", object_id=team.pk, action="changed")
    assert change.user_id == manager.pk  # a service given its actor, no request
    assert fields(change) == {"min_quality_score": ("3", "4")}
    scope = latest("escalations.engineerscope", action="changed")
    assert scope.user_id == manager.pk
    assert fields(scope) == {"teams": ("—", "Payments")}


def test_a_team_edit_through_the_page_is_the_managers(manager):
    team = EngineeringTeam.objects.create(name="Search", slug="search")
    response = browser_for(manager).post(
        reverse("escalations:team-edit", args=[team.slug]),
        {"name": "Search", "slug": "search", "components": "search-api", "min_quality_score": 3},
    )
    assert response.status_code == 302
    change = latest("escalations.engineeringteam", object_id=team.pk, action="changed")
    assert change.user_id == manager.pk
    assert fields(change) == {"components": ("—", "search-api")}


def test_a_webhook_change_is_recorded_without_its_secret(admin_user):
    team = EngineeringTeam.objects.create(name="Payments", slug="payments")
    hook = WebhookSubscription.objects.create(team=team, url="https://hooks.example.com/a")
    old_secret = hook.secret
    new_secret = "whsec_" + "A" * 43 + "="
    response = browser_for(admin_user).post(
        reverse("admin:escalations_webhooksubscription_change", args=[hook.pk]),
        {
            "team": team.pk,
            "url": "https://hooks.example.com/b",
            "secret": new_secret,
            "events": "[]",
            "active": "on",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]

    change = latest("escalations.webhooksubscription", object_id=hook.pk, action="changed")
    assert change.user_id == admin_user.pk
    assert fields(change) == {
        "url": ("https://hooks.example.com/a", "https://hooks.example.com/b"),
        "secret": ("(not kept)", "changed (not kept)"),
    }
    stored = WebhookSubscription.history.model.objects.filter(id=hook.pk)
    assert stored.count() == 2
    assert not any(hasattr(row, "secret") for row in stored)
    # Nowhere in the history tables, nor on the page or in the API.
    dumped = repr(list(stored.values()))
    assert old_secret not in dumped
    assert new_secret not in dumped
    page = browser_for(admin_user).get(PAGE).content.decode()
    api = api_for(admin_user).get(API).content.decode()
    for secret in (old_secret, new_secret):
        assert secret not in page
        assert secret not in api


def test_a_role_grant_and_removal_are_recorded(admin_user, agent):
    manager_group = Group.objects.get(name=Role.MANAGER)
    agent_group = Group.objects.get(name=Role.AGENT)
    change_url = reverse("admin:auth_user_change", args=[agent.pk])
    form = browser_for(admin_user).get(change_url).context["adminform"].form
    data = {
        "username": agent.username,
        "first_name": agent.first_name,
        "last_name": agent.last_name,
        "email": agent.email,
        "is_active": "on",
        "groups": [agent_group.pk, manager_group.pk],
        "date_joined_0": form.initial["date_joined"].strftime("%Y-%m-%d"),
        "date_joined_1": form.initial["date_joined"].strftime("%H:%M:%S"),
    }
    response = browser_for(admin_user).post(change_url, data)
    assert response.status_code == 302, response.content.decode()[:2000]

    grant = latest("auth.user", object_id=agent.pk, action="changed")
    assert grant.user_id == admin_user.pk
    assert fields(grant) == {"groups": ("agent", "agent, manager")}

    with audit.acting_as(admin_user):
        agent.groups.remove(manager_group)
    removal = latest("auth.user", object_id=agent.pk, action="changed")
    assert removal.id != grant.id
    assert fields(removal) == {"groups": ("agent, manager", "agent")}


def test_logins_and_password_changes_are_not_configuration_changes(agent):
    before = change_index(kind="auth.user").count()
    response = Client().post(reverse("login"), {"username": "alice", "password": "pw-for-tests-1"})
    assert response.status_code == 302  # logged in: last_login saved
    agent.set_password("another-pw-2")
    agent.save()
    assert change_index(kind="auth.user").count() == before
    assert "password" not in {f.name for f in type(agent).history.model._meta.get_fields()}


def test_a_token_made_and_revoked_is_recorded_with_name_and_owner_never_the_digest(agent):
    client = browser_for(agent)
    response = client.post(reverse("core:tokens"), {"name": "Nightly export", "days": "30"})
    assert response.status_code == 200
    token = ApiToken.objects.get(user=agent)
    digest = token.digest
    response = client.post(reverse("core:token-revoke", args=[token.pk]))
    assert response.status_code == 302

    made = latest("core.apitoken", object_id=token.pk, action="created")
    revoked = latest("core.apitoken", object_id=token.pk, action="deleted")
    for change in (made, revoked):
        assert change.user_id == agent.pk
        assert change.object_label.startswith("Nightly export (")
        assert change.object_label.endswith(" of alice")
    assert fields(made)["name"] == (None, "Nightly export")
    assert fields(made)["user"] == (None, "alice")
    assert fields(revoked)["name"] == ("Nightly export", None)
    history = ApiToken.history.model
    assert "digest" not in {f.name for f in history._meta.get_fields()}
    assert digest not in repr(list(history.objects.values()))


def test_a_command_s_changes_are_the_system_s_with_its_name(db):
    from django.core.management import call_command

    call_command("create_api_token", "robot", "--role", "engineer", stdout=open("/dev/null", "w"))  # noqa: SIM115
    made = latest("core.apitoken", action="created")
    assert (made.user_id, made.actor, made.reason) == (None, "System", "manage.py create_api_token")
    grant = latest("auth.user", action="changed")
    assert grant.actor == "System"
    assert fields(grant) == {"groups": ("—", "engineer")}


def test_a_deleted_author_keeps_their_changes(manager, organisation):
    api_for(manager).patch(f"/api/organisations/{organisation.pk}/", {"tier": "standard"}, format="json")
    manager.delete()
    change = latest("cases.organisation", object_id=organisation.pk, action="changed")
    assert change.actor == "Maria Manager (deleted)"


# --- Who sees it ---------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["agent", "engineer"])
def test_agents_and_engineers_may_not_see_the_trail(request, role):
    user = request.getfixturevalue(role)
    assert browser_for(user).get(PAGE).status_code == 403
    assert api_for(user).get(API).status_code == 403
    assert Client().get(PAGE).status_code == 302  # to the login page


def test_the_page_lists_a_managers_change_with_its_diff(manager, organisation):
    api_for(manager).patch(f"/api/organisations/{organisation.pk}/", {"tier": "business"}, format="json")
    response = browser_for(manager).get(PAGE)
    assert response.status_code == 200
    html = response.content.decode()
    assert "Acme Corp" in html
    assert "<del>Enterprise</del>" in html
    assert "<ins>Business</ins>" in html
    assert "Maria Manager" in html
    # The newest first; the seeded policies of the data migration are older.
    first = response.context["changes"][0]
    assert (first.kind, first.object_id) == ("cases.organisation", organisation.pk)


def test_the_page_filters_by_kind_and_by_person(manager, admin_user, organisation):
    api_for(manager).patch(f"/api/organisations/{organisation.pk}/", {"tier": "business"}, format="json")
    policy = SlaPolicy.objects.get(tier="business", severity="P2")
    api_for(admin_user).patch(f"/api/sla/policies/{policy.pk}/", {"triage_minutes": 90}, format="json")
    client = browser_for(manager)

    by_kind = client.get(PAGE, {"kind": "sla.slapolicy"}).context["changes"]
    assert by_kind
    assert {c.kind for c in by_kind} == {"sla.slapolicy"}
    by_admin = client.get(PAGE, {"user": str(admin_user.pk)}).context["changes"]
    assert [(c.kind, c.object_id) for c in by_admin] == [("sla.slapolicy", policy.pk)]
    by_system = client.get(PAGE, {"user": "system"}).context["changes"]
    assert by_system
    assert all(c.user_id is None for c in by_system)

    refused = client.get(PAGE, {"kind": "auth.permission"})
    assert refused.status_code == 400
    assert "Select a valid choice" in refused.content.decode()
    assert api_for(manager).get(API, {"user": "nobody"}).status_code == 400


def test_the_api_lists_changes_newest_first(manager, organisation):
    api_for(manager).patch(f"/api/organisations/{organisation.pk}/", {"tier": "business"}, format="json")
    body = api_for(manager).get(API, {"kind": "cases.organisation"}).json()
    first = body["results"][0]
    assert first["kind"] == "cases.organisation"
    assert first["action"] == "changed"
    assert first["user_id"] == manager.pk
    assert {"field": "tier", "label": "Tier", "before": "Enterprise", "after": "Business"} in first["changes"]
    dt.datetime.fromisoformat(first["at"])


def _changes(manager, count: int) -> None:
    """``count`` recorded changes of several kinds, by several people."""
    org = factories.OrganisationFactory(name="Many Changes Ltd", tier="standard")
    team = EngineeringTeam.objects.create(name="Core", slug="core")
    for i in range(count):
        with audit.acting_as(manager if i % 2 else None):
            org.tier = ["business", "enterprise"][i % 2]
            org.save()
            team.min_quality_score = i % 5
            team.save()
            WebhookSubscription.objects.create(team=team, url=f"https://hooks.example.com/{i}")


def test_the_page_costs_the_same_queries_whatever_its_size(manager, monkeypatch):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from supportdesk.core import audit_views

    _changes(manager, 20)
    client = browser_for(manager)
    client.get(PAGE)  # the session is loaded once

    def queries(page_size: int) -> int:
        monkeypatch.setattr(audit_views, "PAGE_SIZE", page_size)
        with CaptureQueriesContext(connection) as captured:
            response = client.get(PAGE)
        assert len(response.context["changes"]) == page_size
        return len(captured.captured_queries)

    assert queries(5) == queries(50)


def test_the_documented_retention_command_removes_old_changes(manager, organisation, time_machine):
    from django.core.management import call_command

    time_machine.move_to(at(2024, 1, 10, 9, 0), tick=False)
    with audit.acting_as(manager):
        organisation.tier = "business"
        organisation.save()
    time_machine.move_to(at(2026, 3, 4, 10, 0), tick=False)
    with audit.acting_as(manager):
        organisation.tier = "standard"
        organisation.save()

    call_command("clean_old_history", "--auto", "--days", "730", stdout=open("/dev/null", "w"))  # noqa: SIM115
    kept = describe(list(change_index(kind="cases.organisation", user=str(manager.pk))))
    assert [c.at for c in kept] == [at(2026, 3, 4, 10, 0)]


def test_what_an_import_creates_is_the_work_of_whoever_started_it(manager):
    from imports import services as import_services
    from tests.imports.conftest import DATA, IMPORTED_AT, default_mapping_text

    job = import_services.create_job(
        format="servicenow-csv",
        mapping_text=default_mapping_text("servicenow-csv"),
        mapping_name="test",
        now=IMPORTED_AT,
        path=str(DATA / "servicenow.csv"),
        strict=False,
        time_zone="Europe/Berlin",
        created_by=manager,
    )
    import_services.run_import(job, now=IMPORTED_AT)
    org = Organisation.objects.get(name="Imported from ServiceNow")
    made = latest("cases.organisation", object_id=org.pk, action="created")
    assert (made.user_id, made.reason) == (manager.pk, f"import job {job.pk}")
    teams = describe(list(change_index(kind="cases.team")))
    assert "Group 56" in {t.object_label for t in teams}
    assert {(t.action, t.user_id) for t in teams} == {("created", manager.pk)}
