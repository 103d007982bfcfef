"""Managers manage engineering teams in the app: list, create, edit (name, minimum quality score,
components, engineers); everyone else gets 403; bad input is a form error."""

from __future__ import annotations

import pytest
from django.urls import reverse

from escalations import selectors, services
from escalations.models import EngineeringTeam, EngineerScope
from tests import factories

pytestmark = pytest.mark.django_db


def _data(**overrides) -> dict:
    data = {"name": "Search", "slug": "", "components": "indexer\nquery-api", "min_quality_score": "3"}
    data.update(overrides)
    return data


@pytest.mark.parametrize("who", ["agent", "engineer"])
def test_only_managers_reach_the_team_pages(client, request, payments, who):
    client.force_login(request.getfixturevalue(who))
    for method, url in [
        ("get", reverse("escalations:teams")),
        ("get", reverse("escalations:team-create")),
        ("post", reverse("escalations:team-create")),
        ("get", reverse("escalations:team-edit", args=["payments"])),
        ("post", reverse("escalations:team-edit", args=["payments"])),
    ]:
        response = getattr(client, method)(url, _data(name="Hijacked") if method == "post" else None)
        assert response.status_code == 403, url
    payments.refresh_from_db()
    assert payments.name == "Payments"
    assert not EngineeringTeam.objects.filter(name="Hijacked").exists()


def test_anonymous_is_sent_to_login(client):
    response = client.get(reverse("escalations:teams"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_the_list_shows_each_team_with_its_rules_and_engineers(
    client, manager, payments, identity, engineer, scope_to, escalation_in
):
    scope_to(engineer, payments)
    escalation_in("submitted")
    client.force_login(manager)
    response = client.get(reverse("escalations:teams"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Payments" in html
    assert "Identity" in html
    assert "checkout-api" in html
    assert "Erik Engineer" in html
    rows = {t.slug: t for t in response.context["teams"]}
    assert rows["payments"].open_count == 1
    assert rows["identity"].open_count == 0


def test_the_board_links_the_team_pages_for_managers_only(client, manager, agent):
    client.force_login(manager)
    assert reverse("escalations:teams") in client.get(reverse("escalations:board")).content.decode()
    client.force_login(agent)
    assert reverse("escalations:teams") not in client.get(reverse("escalations:board")).content.decode()


def test_a_manager_creates_a_team_with_engineers(client, manager, engineer):
    pia = factories.EngineerFactory(username="pia")
    factories.AgentFactory(username="not-an-engineer")
    client.force_login(manager)
    form = client.get(reverse("escalations:team-create")).content.decode()
    assert "not-an-engineer" not in form
    response = client.post(reverse("escalations:team-create"), {**_data(), "members": [engineer.pk, pia.pk]})
    assert response.status_code == 302
    assert response["Location"] == reverse("escalations:teams")
    team = EngineeringTeam.objects.get(name="Search")
    assert (team.slug, team.min_quality_score, team.component_list) == ("search", 3, ["indexer", "query-api"])
    assert {u.username for u in selectors.team_engineers(team.pk)} == {"erik", "pia"}
    # a member now sees this team's escalations only
    assert selectors.engineer_team_ids(type(engineer).objects.get(pk=engineer.pk)) == {team.pk}


def test_a_manager_edits_a_team_and_its_members(client, manager, payments, identity, engineer, scope_to):
    pia = factories.EngineerFactory(username="pia")
    scope_to(engineer, payments, identity)
    client.force_login(manager)
    page = client.get(reverse("escalations:team-edit", args=["payments"]))
    assert page.context["form"]["members"].value() == [engineer.pk]
    response = client.post(
        reverse("escalations:team-edit", args=["payments"]),
        {
            "name": "Payments & Billing",
            "slug": "ignored",
            "components": "checkout-api",
            "min_quality_score": "4",
            "members": [pia.pk],
        },
    )
    assert response.status_code == 302
    payments.refresh_from_db()
    assert (payments.name, payments.slug, payments.min_quality_score) == ("Payments & Billing", "payments", 4)
    assert [u.username for u in selectors.team_engineers(payments.pk)] == ["pia"]
    # erik left Payments but is still in Identity
    assert set(EngineerScope.objects.get(user=engineer).teams.all()) == {identity}


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"name": ""}, "name", "This field is required."),
        ({"name": "Payments"}, "name", "already exists"),
        ({"name": "Payments2", "slug": "payments"}, "slug", "already exists"),
        ({"slug": "not a slug!"}, "slug", "Enter a valid"),
        ({"min_quality_score": "6"}, "min_quality_score", "less than or equal to 5"),
        ({"min_quality_score": "-1"}, "min_quality_score", "greater than or equal to 0"),
        ({"min_quality_score": "many"}, "min_quality_score", "Enter a whole number."),
        ({"name": "!!!"}, "slug", "Give a slug"),
        ({"members": ["999999"]}, "members", "Select a valid choice"),
    ],
)
def test_bad_input_is_a_form_error(client, manager, payments, data, field, message):
    client.force_login(manager)
    response = client.post(reverse("escalations:team-create"), _data(**data))
    assert response.status_code == 400
    form = response.context["form"]
    assert any(message in e for e in form.errors[field]), form.errors
    assert 'class="field has-error"' in response.content.decode() or field == "members"
    assert EngineeringTeam.objects.count() == 1


def test_the_service_refuses_non_managers_and_non_engineers(agent, manager, payments):
    from django.core.exceptions import PermissionDenied

    from supportdesk.core.errors import DomainError

    with pytest.raises(PermissionDenied):
        services.save_team(actor=agent, team=payments, name="X")
    with pytest.raises(DomainError, match="not an engineer"):
        services.save_team(actor=manager, team=payments, members=[agent])
