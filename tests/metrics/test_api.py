from __future__ import annotations

import pytest
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

SUMMARY = "/api/metrics/summary/"
BERLIN_WEEK = {"start": "2025-03-03", "end": "2025-03-09", "tz": "Europe/Berlin"}


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.mark.parametrize("url", [SUMMARY, "/api/metrics/backlog/"])
@pytest.mark.parametrize("role", ["agent", "engineer"])
def test_agents_and_engineers_get_403(request, role, url):
    response = client_for(request.getfixturevalue(role)).get(url, BERLIN_WEEK)
    assert response.status_code == 403


def test_anonymous_is_refused():
    assert APIClient().get(SUMMARY, BERLIN_WEEK).status_code in (401, 403)


def test_manager_gets_the_same_numbers_as_the_selectors(dataset, manager):
    response = client_for(manager).get(SUMMARY, BERLIN_WEEK)
    assert response.status_code == 200
    body = response.json()
    # See tests/metrics/conftest.py: the local dates 03-03..03-09 are the Berlin week.
    assert body["first_response_time"]["overall"] == {
        "count": 2,
        "median": 900.0,
        "p90": 1140.0,
        "mean": 900.0,
    }
    assert body["reopen_rate"] == {"numerator": 1, "denominator": 2, "rate": 0.5}
    assert body["sla_compliance"]["first_response"]["P1"]["rate"] == 0.5


def test_filters_apply(dataset, manager):
    body = client_for(manager).get(SUMMARY, {**BERLIN_WEEK, "severity": "P2"}).json()
    assert body["time_to_resolve"]["overall"]["count"] == 1


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"start": "2025-03-09", "end": "2025-03-03"}, "end"),
        ({"start": "yesterday", "end": "2025-03-03"}, "start"),
        ({**BERLIN_WEEK, "tz": "Mars/Olympus"}, "tz"),
        ({**BERLIN_WEEK, "severity": "P9"}, "severity"),
        ({**BERLIN_WEEK, "team": "x"}, "team"),
    ],
)
def test_bad_input_is_a_400_with_field_messages(manager, params, field):
    response = client_for(manager).get(SUMMARY, params)
    assert response.status_code == 400
    assert field in response.json()


def test_backlog(dataset, manager):
    body = client_for(manager).get("/api/metrics/backlog/").json()
    # Open now: C (P1), D (P2), E (P3), all older than 21 days by the time this runs (2025 data).
    assert body["buckets"][">21d"] == {"P1": 1, "P2": 1, "P3": 1, "P4": 0}
