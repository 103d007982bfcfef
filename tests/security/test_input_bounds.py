"""Malformed and oversized input is a 400 naming the problem, never a 500."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from cases.models import Case
from supportdesk.core.parsers import MAX_JSON_DEPTH, depth

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(agent) -> APIClient:
    client = APIClient()
    client.force_login(agent)
    return client


def nested(levels: int) -> str:
    return "[" * levels + "]" * levels


@pytest.mark.parametrize("levels", [MAX_JSON_DEPTH + 1, 50_000])
@pytest.mark.parametrize("url", ["/api/cases/", "/api/sla/preview", "/api/knowledge/articles/"])
def test_a_deeply_nested_json_body_is_a_400(api, url, levels):
    response = api.post(url, data=nested(levels), content_type="application/json")
    assert response.status_code == 400
    assert "nested more than 32 levels" in response.json()["detail"]


def test_a_reasonably_nested_body_still_reaches_validation(api, organisation, contact, team):
    payload = (
        '{"title": "Export fails", "description": "x", "severity": "P3", '
        f'"organisation": {organisation.pk}, "requester": {contact.pk}, "team": "{team.slug}", '
        '"tags": [["deep"]]}'
    )
    response = api.post("/api/cases/", data=payload, content_type="application/json")
    # The nesting is allowed; the nested tag list is refused by the field, not by the parser.
    assert response.status_code == 400
    assert "tags" in response.json()
    assert not Case.objects.exists()


def test_depth_counts_levels_without_recursion():
    assert depth(1) == 0
    assert depth({"a": [1, {"b": []}]}) == 4
    deep: list = []
    for _ in range(9_999):
        deep = [deep]
    assert depth(deep) == 10_000


@pytest.fixture
def manager_api(manager) -> APIClient:
    client = APIClient()
    client.force_login(manager)
    return client


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("/api/metrics/summary/?start=0001-01-01&end=0001-01-05", "start"),
        ("/api/metrics/summary/?start=2026-01-01&end=9999-12-31", "end"),
        ("/api/metrics/summary/?start=9999-12-25&end=9999-12-31", "start"),
        ("/api/metrics/trends/?end=0001-01-05", "end"),
        ("/api/metrics/summary/?start=2026-01-01&end=2026-01-31&organisation=" + "9" * 20, "organisation"),
        ("/api/cases/?created_after=0001-01-01T00:00:00%2B14:00", "created_after"),
        ("/api/cases/?created_before=9999-12-31T23:59:59", "created_before"),
    ],
)
def test_dates_and_ids_out_of_range_are_a_400_naming_the_field(manager_api, url, field):
    response = manager_api.get(url)
    assert response.status_code == 400, response.content
    assert field in response.json()


@pytest.mark.parametrize(
    "start", ["9999-12-31T23:59:00", "0001-01-01T00:00:00+14:00", "1900-01-01T09:00:00Z"]
)
def test_the_sla_preview_refuses_an_instant_out_of_range(api, organisation, start):
    response = api.post(
        "/api/sla/preview", {"organisation": organisation.pk, "severity": "P2", "start": start}, format="json"
    )
    assert response.status_code == 400
    assert "between 1970-01-01 and 2199-12-31" in response.json()["start"][0]


def test_the_sla_preview_still_answers_in_range(api, organisation):
    response = api.post(
        "/api/sla/preview",
        {"organisation": organisation.pk, "severity": "P2", "start": "2026-12-02T09:00:00Z"},
        format="json",
    )
    assert response.status_code == 200


def test_the_dashboard_form_refuses_a_date_out_of_range(client, manager):
    client.force_login(manager)
    response = client.get("/metrics/?start=0001-01-01&end=0001-01-05")
    assert response.status_code == 400  # the page with the form's message
    assert "Give a date between 1970-01-01 and 2199-12-31." in response.content.decode()
