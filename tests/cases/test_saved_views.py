"""Saved views of the queue: personal and team-shared, saved from the queue page, in its navigation
with live counts, managed in the browser and through the API, each change checked per view."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from cases import saved_views
from cases.models import SavedView
from tests import factories

pytestmark = pytest.mark.django_db

API = "/api/saved-views/"


@pytest.fixture
def payments(agent):
    team = factories.TeamFactory(name="Payments", slug="payments")
    team.members.add(agent)
    return team


def _view(owner, name="P1s", query="severity=P1", team=None, columns=()):
    return saved_views.create_view(
        owner=owner, name=name, query=query, team=team, columns=columns, now=timezone.now()
    )


def _nav(html: str) -> dict[str, str]:
    """The queue's views and the count each shows."""
    nav = re.search(r'<nav class="quick-links q-views".*?</nav>', html, re.S).group(0)
    items = re.findall(r'<a href="[^"]*"[^>]*>(.*?)<span class="q-count">(\S+?)<', nav, re.S)
    return {re.sub(r"<[^>]+>|·", " ", label).split("  ")[0].strip(): count for label, count in items}


def _keys(html: str) -> list[str]:
    return re.findall(r'<tr class="q-row" data-key="(CASE-\d+)"', html)


# --- Saving from the queue ----------------------------------------------------------------------------


def test_an_agent_saves_the_queue_they_see_and_finds_it_with_its_count(client, agent, organisation):
    p1 = factories.CaseFactory(organisation=organisation, severity="P1")
    factories.CaseFactory(organisation=organisation, severity="P3")
    client.force_login(agent)
    queue = client.get(
        reverse("cases:queue"), {"severity": "P1", "sort": "oldest", "cursor": ""}
    ).content.decode()
    query = re.search(r'name="query" value="([^"]*)"', queue).group(1)
    assert query == "severity=P1&amp;sort=oldest"

    response = client.post(
        reverse("cases:saved_view_create"),
        {"name": "Urgent", "query": "severity=P1&sort=oldest", "columns": ["severity", "due"]},
    )
    view = SavedView.objects.get(name="Urgent")
    assert (view.owner, view.team, view.query, view.columns) == (
        agent,
        None,
        "severity=P1&sort=oldest",
        ["severity", "due"],
    )
    assert response.status_code == 302
    assert response["Location"] == f"/cases/?view={view.pk}&severity=P1&sort=oldest"

    html = client.get(response["Location"]).content.decode()
    assert _keys(html) == [p1.key]
    assert _nav(html) == {"All open": "2", "Mine": "0", "Unassigned": "2", "Urgent": "1"}
    assert re.search(rf'aria-current="page" class="q-saved" data-view="{view.pk}"', html)
    # The view's columns: key, title, then only the chosen ones.
    row = re.search(r'<tr class="q-row".*?</tr>', html, re.S).group(0)
    assert re.findall(r'<td class="q-([a-z]+)', row) == ["pick", "key", "title", "severity", "due"]


def test_counts_are_live_and_capped(client, agent, organisation, monkeypatch):
    _view(agent, "P1s", "severity=P1")
    client.force_login(agent)
    assert _nav(client.get(reverse("cases:queue")).content.decode())["P1s"] == "0"
    for _ in range(3):
        factories.CaseFactory(organisation=organisation, severity="P1")
    assert _nav(client.get(reverse("cases:queue")).content.decode())["P1s"] == "3"
    monkeypatch.setattr(saved_views, "COUNT_CAP", 2)
    assert _nav(client.get(reverse("cases:queue")).content.decode())["P1s"] == "2+"


def test_all_the_counts_take_one_query_however_many_views(client, agent, organisation):
    factories.CaseFactory(organisation=organisation, severity="P1")
    client.force_login(agent)
    _view(agent, "One", "severity=P1")
    with CaptureQueriesContext(connection) as one:
        client.get(reverse("cases:queue"))
    for i in range(6):
        _view(agent, f"View {i}", f"severity=P{i % 4 + 1}&tag=billing&mine=true")
    with CaptureQueriesContext(connection) as seven:
        html = client.get(reverse("cases:queue")).content.decode()
    assert len(_nav(html)) == 3 + 7
    assert len(seven.captured_queries) == len(one.captured_queries)
    counting = [q["sql"] for q in seven.captured_queries if "AS view_0" in q["sql"]]
    assert len(counting) == 1


def test_a_bad_name_is_a_form_error_with_the_form_kept(client, agent):
    _view(agent, "Mine too")
    client.force_login(agent)
    response = client.post(reverse("cases:saved_view_create"), {"name": "mine TOO", "query": "severity=P2"})
    assert response.status_code == 400
    html = response.content.decode()
    assert "You already have a view named" in html
    assert 'value="severity=P2"' in html
    assert SavedView.objects.count() == 1


def test_a_tampered_query_is_refused(client, agent):
    client.force_login(agent)
    response = client.post(
        reverse("cases:saved_view_create"), {"name": "X", "query": "status=nope&colour=red"}
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert "“colour” is not a queue filter" in html
    assert "nope is not one of the available choices" in html
    assert not SavedView.objects.exists()


# --- Sharing and permissions -------------------------------------------------------------------------


def test_only_members_and_managers_share_with_a_team(client, agent, other_agent, manager, payments):
    client.force_login(other_agent)  # not in Payments
    response = client.post(reverse("cases:saved_view_create"), {"name": "Theirs", "team": "payments"})
    assert response.status_code == 400
    assert not SavedView.objects.exists()

    client.force_login(agent)  # a member
    client.post(
        reverse("cases:saved_view_create"),
        {"name": "Payments P1", "team": "payments", "query": "severity=P1"},
    )
    client.force_login(manager)
    client.post(reverse("cases:saved_view_create"), {"name": "Escalated", "team": "payments"})
    assert set(SavedView.objects.values_list("name", "team__slug")) == {
        ("Payments P1", "payments"),
        ("Escalated", "payments"),
    }


def test_who_sees_which_view(client, agent, other_agent, manager, payments):
    personal = _view(agent, "Alice only")
    shared = _view(agent, "Payments queue", team=payments)
    client.force_login(other_agent)
    nav = _nav(client.get(reverse("cases:queue")).content.decode())
    assert "Alice only" not in nav
    assert "Payments queue" not in nav
    response = client.get(reverse("cases:queue"), {"view": personal.pk})
    assert f'data-view="{personal.pk}"' not in response.content.decode()  # ignored, not shown

    payments.members.add(other_agent)
    assert "Payments queue" in _nav(client.get(reverse("cases:queue")).content.decode())
    client.force_login(manager)
    nav = _nav(client.get(reverse("cases:queue")).content.decode())
    assert "Payments queue" in nav
    assert "Alice only" not in nav
    assert {v.pk for v in saved_views.visible_views(manager)} == {shared.pk}


def test_only_the_owner_or_a_manager_changes_a_team_view(client, agent, other_agent, manager, payments):
    shared = _view(agent, "Payments queue", team=payments)
    personal = _view(agent, "Alice only")
    payments.members.add(other_agent)
    url = reverse("cases:saved_view_update", args=[shared.pk])
    delete = reverse("cases:saved_view_delete", args=[shared.pk])

    client.force_login(other_agent)  # sees it, may not change it
    assert client.post(url, {"name": "Hijacked", "team": "payments"}).status_code == 403
    assert client.post(delete).status_code == 403
    assert client.post(reverse("cases:saved_view_delete", args=[personal.pk])).status_code == 404
    page = client.get(reverse("cases:saved_views")).content.decode()
    assert "Only its owner or a manager can change it" in page

    client.force_login(manager)
    response = client.post(
        url, {"name": "Payments backlog", "team": "payments", "columns": ["due"], "position": "3"}
    )
    assert response.status_code == 302
    shared.refresh_from_db()
    assert (shared.name, shared.columns, shared.position) == ("Payments backlog", ["due"], 3)
    assert (
        client.post(reverse("cases:saved_view_update", args=[personal.pk]), {"name": "x"}).status_code == 404
    )

    client.force_login(agent)
    assert client.post(delete).status_code == 302
    assert not SavedView.objects.filter(pk=shared.pk).exists()


def test_the_owner_keeps_new_filters_in_a_view(client, agent):
    view = _view(agent, "P1s", "severity=P1")
    client.force_login(agent)
    html = client.get(reverse("cases:queue"), {"view": view.pk, "severity": ["P1", "P2"]}).content.decode()
    assert "Keep these filters in “P1s”" in html
    response = client.post(
        reverse("cases:saved_view_filters", args=[view.pk]), {"query": "severity=P1&severity=P2"}
    )
    assert response["Location"] == f"/cases/?view={view.pk}&severity=P1&severity=P2"
    view.refresh_from_db()
    assert view.query == "severity=P1&severity=P2"


def test_engineers_have_no_saved_views(client, engineer):
    client.force_login(engineer)
    assert client.get(reverse("cases:saved_views")).status_code == 403
    assert client.post(reverse("cases:saved_view_create"), {"name": "x"}).status_code == 403
    assert client.get(API).status_code == 403


# --- API ------------------------------------------------------------------------------------------------


def test_api_creates_lists_changes_and_deletes_a_view(client, agent, organisation, payments):
    factories.CaseFactory(organisation=organisation, severity="P1", team=payments)
    client.force_login(agent)
    created = client.post(
        API,
        {
            "name": "Payments P1",
            "team": "payments",
            "query": "team=payments&severity=P1&cursor=abc",
            "columns": ["due"],
        },
        content_type="application/json",
    )
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["query"] == "severity=P1&team=payments"
    assert (body["team"], body["owner"], body["count"], body["count_capped"], body["editable"]) == (
        "payments",
        "alice",
        1,
        False,
        True,
    )
    assert body["url"] == f"/cases/?view={body['id']}&severity=P1&team=payments"

    listed = client.get(API).json()
    assert [v["name"] for v in listed["results"]] == ["Payments P1"]

    url = f"{API}{body['id']}/"
    patched = client.patch(url, {"name": "Renamed", "position": 4}, content_type="application/json")
    assert patched.status_code == 200
    assert (patched.json()["name"], patched.json()["position"]) == ("Renamed", 4)
    assert client.delete(url).status_code == 204
    assert not SavedView.objects.exists()


@pytest.mark.parametrize(
    ("payload", "field", "message"),
    [
        ({"name": "x", "query": "colour=red"}, "query", "“colour” is not a queue filter"),
        ({"name": "x", "query": "status=nope"}, "query", "nope is not one of the available choices"),
        ({"name": "x", "query": "sort=sideways"}, "query", "“sideways” is not a sort order"),
        ({"name": "x", "query": "created_after=yesterday"}, "query", "created_after"),
        ({"name": "x", "columns": ["colour"]}, "columns", "“colour” is not a queue column"),
        ({"name": "x", "columns": "due"}, "columns", "list"),
        ({"name": "  "}, "name", "A view needs a name."),
        ({"name": "x", "team": "nowhere"}, "team", "There is no team with the slug “nowhere”."),
        ({"name": "x", "team": "payments"}, "team", "Only members of Payments and managers"),
    ],
)
def test_api_says_what_is_wrong_per_field(client, other_agent, payments, payload, field, message):
    client.force_login(other_agent)
    response = client.post(API, payload, content_type="application/json")
    assert response.status_code == 400
    assert message in " ".join(response.json()[field])
    assert not SavedView.objects.exists()


def test_api_checks_each_view(client, agent, other_agent, payments):
    shared = _view(agent, "Payments queue", team=payments)
    personal = _view(agent, "Alice only")
    payments.members.add(other_agent)
    client.force_login(other_agent)
    assert client.get(f"{API}{shared.pk}/").status_code == 200
    assert client.get(f"{API}{personal.pk}/").status_code == 404
    refused = client.patch(f"{API}{shared.pk}/", {"name": "Mine now"}, content_type="application/json")
    assert refused.status_code == 403
    assert client.delete(f"{API}{shared.pk}/").status_code == 403
    assert [v["name"] for v in client.get(API).json()["results"]] == ["Payments queue"]
    assert client.get(API).json()["results"][0]["editable"] is False


def test_api_patch_refuses_fields_it_cannot_change(client, agent):
    view = _view(agent)
    client.force_login(agent)
    response = client.patch(
        f"{API}{view.pk}/", {"owner": "bob", "colour": "red"}, content_type="application/json"
    )
    assert response.status_code == 400
    assert set(response.json()) == {"owner", "colour"}


def test_the_default_state_and_positions_are_not_part_of_a_view():
    assert saved_views.normalise_query("state=open&sort=due&q=&cursor=abc&view=3&severity=P1") == (
        "severity=P1&sort=due"
    )
    assert saved_views.normalise_query("state=all&status=closed") == "state=all&status=closed"
