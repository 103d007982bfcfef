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


@pytest.mark.parametrize(
    "url", [SUMMARY, "/api/metrics/backlog/", "/api/metrics/trends/", "/api/metrics/cases/?metric=backlog"]
)
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


def test_summary_compares_with_the_previous_period_and_carries_the_targets(dataset, manager):
    body = client_for(manager).get(SUMMARY, BERLIN_WEEK).json()
    previous = body["previous"]
    # The seven local days before: Berlin 02-24..03-02. B was answered there (FRT 7200 s) and C's
    # first response at Sunday 23:50 UTC is Monday 00:50 Berlin, so it is not.
    assert previous["start"] == "2025-02-24T00:00:00+01:00"
    assert previous["end"] == "2025-03-03T00:00:00+01:00"
    assert previous["first_response_time"]["overall"]["count"] == 1
    assert previous["first_response_time"]["overall"]["median"] == 7200.0
    assert previous["reopen_rate"]["denominator"] == 0
    assert body["targets"]["enterprise"]["P1"]["first_response"] == 15
    assert body["targets"]["enterprise"]["P2"]["resolution"] == 24 * 60


def test_trends(dataset, manager):
    body = (
        client_for(manager)
        .get("/api/metrics/trends/", {"end": "2025-03-09", "tz": "Europe/Berlin", "weeks": 2})
        .json()
    )
    assert body["weeks"] == ["2025-02-24T00:00:00+01:00", "2025-03-03T00:00:00+01:00"]
    assert [p["median"] for p in body["first_response_time"]] == [7200.0, 900.0]
    assert body["reopen_rate"][1] == {"numerator": 1, "denominator": 2, "rate": 0.5}
    assert [(v["created"], v["resolved"]) for v in body["volume"]] == [(1, 0), (2, 2)]
    assert body["volume"][1]["week"] == "2025-03-03T00:00:00+01:00"
    assert len(client_for(manager).get("/api/metrics/trends/").json()["weeks"]) == 12


@pytest.mark.parametrize(
    ("params", "field"),
    [({"weeks": 0}, "weeks"), ({"weeks": 500}, "weeks"), ({"end": "soon"}, "end"), ({"tz": "Nowhere"}, "tz")],
)
def test_trends_bad_input(manager, params, field):
    response = client_for(manager).get("/api/metrics/trends/", params)
    assert response.status_code == 400
    assert field in response.json()


def test_drilldown_lists_the_cases_a_figure_counts(dataset, manager):
    client = client_for(manager)
    body = client.get(
        "/api/metrics/cases/", {**BERLIN_WEEK, "metric": "reopen_rate", "part": "resolved"}
    ).json()
    assert body["count"] == 2
    assert sorted(row["title"] for row in body["results"]) == ["A", "B"]
    assert body["results"][0]["url"].startswith("/cases/CASE-")
    met = client.get(
        "/api/metrics/cases/",
        {
            **BERLIN_WEEK,
            "metric": "sla_compliance",
            "target": "first_response",
            "part": "met",
            "severity": "P1",
        },
    ).json()
    # P1 first responses in the week: A met (600 s of 15 min), C breached (1200 s).
    assert [row["title"] for row in met["results"]] == ["A"]
    backlog = client.get("/api/metrics/cases/", {"metric": "backlog", "bucket": ">21d"}).json()
    assert sorted(row["title"] for row in backlog["results"]) == ["C", "D", "E"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"metric": "colour"}, "metric"),
        ({**BERLIN_WEEK, "metric": "reopen_rate", "part": "met"}, "part"),
        ({"metric": "reopen_rate"}, "start"),
        ({"metric": "backlog", "bucket": "old"}, "bucket"),
        ({**BERLIN_WEEK, "metric": "sla_compliance", "target": "lunch"}, "target"),
    ],
)
def test_drilldown_bad_input(manager, params, field):
    response = client_for(manager).get("/api/metrics/cases/", params)
    assert response.status_code == 400
    assert field in response.json()


def test_summary_without_the_comparison(dataset, manager, django_assert_max_num_queries):
    client = client_for(manager)
    with django_assert_max_num_queries(20):
        body = client.get(SUMMARY, {**BERLIN_WEEK, "compare": "false"}).json()
    assert "previous" not in body
    assert body["reopen_rate"]["rate"] == 0.5
    assert client.get(SUMMARY, {**BERLIN_WEEK, "compare": "maybe"}).status_code == 400


def test_both_resolution_times_are_named_in_the_summary(dataset, manager):
    body = client_for(manager).get(SUMMARY, BERLIN_WEEK).json()
    # First resolutions in the week: A 7200 s, B 172800 s. Last: A on 03-05, two days after its
    # creation (172800 s), and B (172800 s); neither is open now.
    assert body["time_to_resolve"]["overall"]["count"] == 2
    assert body["time_to_resolve"]["overall"]["median"] == (7200 + 172800) / 2
    assert body["time_to_resolve"]["by_severity"]["P1"]["median"] == 7200.0
    final = body["time_to_final_resolution"]
    assert final["overall"]["count"] == 2
    assert final["overall"]["median"] == 172800.0
    assert final["by_severity"]["P1"]["median"] == 172800.0


def test_a_period_of_several_years_is_answered(dataset, manager):
    response = client_for(manager).get(SUMMARY, {"start": "2022-01-01", "end": "2025-12-31", "tz": "UTC"})
    assert response.status_code == 200
    body = response.json()
    assert body["time_to_resolve"]["overall"]["count"] == 2
    assert body["previous"]["start"] == "2018-01-01T00:00:00+00:00"  # 1461 days before


def test_the_whole_history_runs_from_the_first_case_and_has_no_previous_period(dataset, manager):
    from tests.schema_check import assert_matches_schema

    response = client_for(manager).get(SUMMARY, {"whole_history": "true", "tz": "Europe/Berlin"})
    assert response.status_code == 200
    body = response.json()
    # E, created 2025-02-01 09:00 UTC, is the first case.
    assert body["start"] == "2025-02-01T00:00:00+01:00"
    assert body["whole_history"] is True
    assert body["previous"] is None
    assert body["first_response_time"]["overall"]["count"] == 4
    assert_matches_schema(response, SUMMARY, "get")


def test_the_whole_history_with_dates_is_a_400(manager):
    response = client_for(manager).get(SUMMARY, {"whole_history": "true", "start": "2025-01-01"})
    assert response.status_code == 400
    assert "whole_history" in response.json()
    assert "start" in client_for(manager).get(SUMMARY, {"end": "2025-01-01"}).json()


def test_the_schema_documents_both_resolution_times(manager):
    schema = client_for(manager).get("/api/schema/", {"format": "json"}).json()
    figures = schema["components"]["schemas"]["PeriodFiguresOutput"]["properties"]
    assert "first resolution" in figures["time_to_resolve"]["description"]
    assert "last resolution" in figures["time_to_final_resolution"]["description"]
