"""The metrics API's ``team`` and ``assignee`` filters take what /api/teams/ and /api/staff/ show (a
slug, a username), ids still work, and an unknown one is a 400 naming the filter (issue 15)."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

SUMMARY = "/api/metrics/summary/"
BERLIN_WEEK = {"start": "2025-03-03", "end": "2025-03-09", "tz": "Europe/Berlin", "compare": "false"}


@pytest.fixture
def api(manager) -> APIClient:
    client = APIClient()
    client.force_login(manager)
    return client


def _resolved(api: APIClient, url: str = SUMMARY, **filters) -> int:
    response = api.get(url, {**BERLIN_WEEK, **filters})
    assert response.status_code == 200, response.json()
    return response.json()["time_to_resolve"]["overall"]["count"]


def test_team_by_slug_as_the_teams_api_lists_it(api, dataset, team):
    [listed] = api.get("/api/teams/").json()["results"]
    assert listed["slug"] == "tier-2"

    # Of the cases first resolved in the week (A and B) only A belongs to Tier 2.
    assert _resolved(api) == 2
    assert _resolved(api, team=listed["slug"]) == 1
    assert _resolved(api, team=str(team.pk)) == 1


def test_assignee_by_username_as_the_staff_api_lists_it(api, dataset, agent, other_agent):
    usernames = [row["username"] for row in api.get("/api/staff/").json()["results"]]
    assert "alice" in usernames

    assert _resolved(api, assignee="alice") == 2
    assert _resolved(api, assignee=str(agent.pk)) == 2
    assert _resolved(api, assignee="bob") == 0


@pytest.mark.parametrize(
    ("params", "field", "words"),
    [
        ({"team": "no-such-team"}, "team", "no team"),
        ({"team": "999999"}, "team", "no team"),
        ({"assignee": "nobody"}, "assignee", "no staff member"),
        ({"assignee": "999999"}, "assignee", "no staff member"),
    ],
)
@pytest.mark.parametrize("url", [SUMMARY, "/api/metrics/backlog/", "/api/metrics/trends/"])
def test_unknown_team_or_assignee_is_a_400_naming_the_filter(api, dataset, url, params, field, words):
    response = api.get(url, {**BERLIN_WEEK, **params})

    assert response.status_code == 400
    body = response.json()
    assert list(body) == [field]
    assert words in body[field][0]
    assert params[field] in body[field][0]


def test_backlog_and_drilldown_take_the_slug_too(api, dataset, team):
    by_slug = api.get("/api/metrics/backlog/", {"team": "tier-2"}).json()["buckets"]
    by_id = api.get("/api/metrics/backlog/", {"team": team.pk}).json()["buckets"]
    assert by_slug == by_id
    # C is Tier 2's only open case.
    assert sum(sum(row.values()) for row in by_slug.values()) == 1

    cases = api.get("/api/metrics/cases/", {"metric": "backlog", "team": "tier-2"}).json()["results"]
    assert [row["title"] for row in cases] == ["C"]


def test_the_schema_documents_slug_and_username(api, admin_user):
    client = APIClient()
    client.force_login(admin_user)
    schema = client.get("/api/schema/", {"format": "json"}).json()
    parameters = {p["name"]: p for p in schema["paths"]["/api/metrics/summary/"]["get"]["parameters"]}

    assert parameters["team"]["schema"]["type"] == "string"
    assert "slug" in parameters["team"]["description"]
    assert parameters["assignee"]["schema"]["type"] == "string"
    assert "username" in parameters["assignee"]["description"]
