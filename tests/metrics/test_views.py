"""The dashboard pages against the data set of conftest.py (read its docstring for the numbers).

The Berlin week 2025-03-03..09 is asked for as local dates with ``tz=Europe/Berlin``; the previous
period is the Berlin week before. The backlog is "now", so those tests freeze the clock at
2025-03-10 12:00 UTC (C 7 d 12.5 h old, D 12.5 h, E 37 d).
"""

from __future__ import annotations

import csv
import html
import io
import re

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from cases.models import Case
from metrics import selectors as m
from tests import factories
from tests.factories import at
from tests.metrics.conftest import PERIOD

pytestmark = pytest.mark.django_db

DASHBOARD = "/metrics/"
CASES = "/metrics/cases/"
MINE = "/metrics/me/"
WEEK = {"start": "2025-03-03", "end": "2025-03-09", "tz": "Europe/Berlin"}
BACKLOG_NOW = at(2025, 3, 10, 12, 0)


@pytest.fixture
def as_manager(client, manager):
    client.force_login(manager)
    return client


def export_url(table: str) -> str:
    return f"/metrics/export/{table}.csv"


def read_csv(response) -> list[dict[str, str]]:
    body = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(body)))


def kpi(response, key: str):
    return next(card for card in response.context["kpis"] if card["figure"].kpi.key == key)


# --- who may see what ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [DASHBOARD, f"{CASES}?metric=backlog", export_url("kpis"), f"{export_url('cases')}?metric=backlog"],
)
@pytest.mark.parametrize("role", ["agent", "engineer"])
def test_agents_and_engineers_cannot_open_the_manager_pages(client, request, role, url):
    client.force_login(request.getfixturevalue(role))
    assert client.get(url).status_code == 403


def test_an_engineer_has_no_own_stats_page(client, engineer):
    client.force_login(engineer)
    assert client.get(MINE).status_code == 403


@pytest.mark.parametrize("url", [DASHBOARD, f"{CASES}?metric=backlog", export_url("kpis"), MINE])
def test_anonymous_visitors_are_sent_to_log_in(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_nav_links_by_role(client, agent, manager):
    client.force_login(agent)
    page = client.get(MINE).content.decode()
    assert 'href="/metrics/me/"' in page
    assert ">My stats<" in page
    assert ">Dashboard<" not in page
    client.force_login(manager)
    page = client.get(MINE).content.decode()
    assert ">Dashboard<" in page
    assert ">My stats<" in page


# --- the dashboard's figures ---------------------------------------------------------------------


def test_the_dashboard_shows_the_weeks_kpis_against_the_previous_week(dataset, as_manager):
    response = as_manager.get(DASHBOARD, WEEK)
    assert response.status_code == 200
    # FRT: A 600 s and C 1200 s -> median 900 s; the week before only B (7200 s): 1 h 45 min faster.
    frt = kpi(response, "first_response_time")
    assert (frt["figure"].value, frt["figure"].count, frt["figure"].previous) == (900.0, 2, 7200.0)
    assert (frt["value"], frt["previous"], frt["change"]) == ("15 min", "2 h", "−1 h 45 min")
    assert frt["figure"].verdict == "better"
    # TTT: A 1200, C 1800 -> 25 min; MTTR: A 7200, B 172800 -> median 90000 s = 1 d 1 h.
    assert kpi(response, "time_to_triage")["value"] == "25 min"
    assert kpi(response, "time_to_resolve")["value"] == "1 d 1 h"
    # First-response compliance: A on time, C late: 1 of 2.
    sla = kpi(response, "sla_first_response")["figure"]
    assert (sla.numerator, sla.count, sla.value) == (1, 2, 0.5)
    # Resolution: A's three runs and B's one, all met.
    assert kpi(response, "sla_resolution")["value"] == "100.0%"
    reopen = kpi(response, "reopen_rate")
    assert (reopen["figure"].numerator, reopen["figure"].count, reopen["value"]) == (1, 2, "50.0%")
    escalation = kpi(response, "escalation_rate")["figure"]
    assert (escalation.numerator, escalation.count) == (1, 2)
    assert kpi(response, "engineering_bounce_rate")["value"] == "100.0%"
    assert kpi(response, "knowledge_reuse")["value"] == "50.0%"
    # Cadence: 2 of 2 this week, 1 of 1 the week before: no change.
    cadence = kpi(response, "update_cadence_adherence")
    assert (cadence["value"], cadence["change"], cadence["figure"].verdict) == ("100.0%", "±0.0 pp", "same")
    assert kpi(response, "csat")["figure"].count == 0

    page = response.content.decode()
    assert "3 Mar 2025 – 9 Mar 2025" in page
    assert "24 Feb 2025 – 2 Mar 2025" in page
    assert 'data-kpi="first_response_time"' in page
    assert "Enterprise</strong> tier" in page


def test_duration_and_compliance_tables(dataset, as_manager):
    response = as_manager.get(DASHBOARD, WEEK)
    frt = next(t for t in response.context["durations"] if t["metric"] == "first_response_time")
    rows = {row["severity"]: row for row in frt["rows"]}
    # p90 of 600 and 1200: 600 + 0.9 * 600 = 1140 s = 19 min; the enterprise P1 target is 15 min.
    assert rows["All"]["cells"] == ["15 min", "19 min", "15 min"]
    assert (rows["P1"]["stats"].count, rows["P1"]["target"]) == (2, "15 min")
    assert rows["P2"]["target"] == "1 h"
    compliance = {row["target"]: row for row in response.context["compliance"]}
    p1 = compliance["first_response"]["cells"][0]
    assert (p1["severity"], p1["ratio"].numerator, p1["ratio"].denominator) == ("P1", 1, 2)
    assert p1["rate"] == "50.0%"
    triage_all = compliance["triage"]["cells"][-1]
    assert (triage_all["ratio"].numerator, triage_all["ratio"].denominator) == (2, 2)


def test_target_lines_follow_the_chosen_tier(dataset, as_manager):
    response = as_manager.get(DASHBOARD, {**WEEK, "tier": "business"})
    assert response.context["target_tier_value"] == "business"
    assert response.context["target_tier_chosen"] is True
    # Nothing of the data set is a business customer.
    assert kpi(response, "first_response_time")["figure"].count == 0


def test_backlog_table(dataset, as_manager):
    with time_machine.travel(BACKLOG_NOW, tick=False):
        response = as_manager.get(DASHBOARD, WEEK)
    rows = {row["bucket"]: [c["n"] for c in row["cells"]] for row in response.context["backlog"]}
    assert rows == {
        "0-1d": [0, 1, 0, 0],
        "1-3d": [0, 0, 0, 0],
        "3-7d": [0, 0, 0, 0],
        "7-21d": [1, 0, 0, 0],
        ">21d": [0, 0, 1, 0],
    }
    assert response.context["backlog_total"] == 3


def test_filters_apply_to_every_table(dataset, as_manager, team):
    response = as_manager.get(DASHBOARD, {**WEEK, "severity": "P2"})
    assert kpi(response, "time_to_resolve")["figure"].count == 1  # B
    assert kpi(response, "first_response_time")["figure"].count == 0
    response = as_manager.get(DASHBOARD, {**WEEK, "team": team.pk})
    assert kpi(response, "first_response_time")["figure"].count == 2  # A and C are Tier 2's
    assert kpi(response, "time_to_resolve")["figure"].count == 1  # A (B has no team)


def test_a_preset_is_the_last_days_up_to_today_in_the_viewers_zone(dataset, as_manager):
    # 2025-03-09 23:30 UTC is already Monday 03-10 in Berlin.
    with time_machine.travel(at(2025, 3, 9, 23, 30), tick=False):
        response = as_manager.get(DASHBOARD, {"preset": "7", "tz": "Europe/Berlin"})
    assert response.status_code == 200
    form = response.context["form"]
    assert (form["start"].value(), form["end"].value()) == ("2025-03-04", "2025-03-10")
    # Without any parameter: the last 30 days, in the zone the browser reported (cookie).
    as_manager.cookies["tz"] = "America/New_York"
    with time_machine.travel(at(2025, 3, 9, 23, 30), tick=False):
        response = as_manager.get(DASHBOARD)
    form = response.context["form"]
    assert (form["start"].value(), form["end"].value(), form["tz"].value()) == (
        "2025-02-08",
        "2025-03-09",
        "America/New_York",
    )


# --- every figure links to the cases it counts ---------------------------------------------------

FIGURE_LINK = re.compile(r'<a href="(/metrics/cases/\?[^"]+)"[^>]*>(\d+)</a>')


def test_every_linked_figure_on_the_page_equals_its_case_list(dataset, as_manager):
    with time_machine.travel(BACKLOG_NOW, tick=False):
        page = as_manager.get(DASHBOARD, WEEK).content.decode()
        links = [(html.unescape(url), int(n)) for url, n in FIGURE_LINK.findall(page)]
        assert len(links) > 60  # KPIs, duration rows, compliance cells, backlog cells
        for url, figure in links:
            response = as_manager.get(url)
            assert response.status_code == 200, url
            assert response.context["total"] == figure, url


@pytest.mark.parametrize(
    ("params", "keys", "total"),
    [
        ({"metric": "first_response_time"}, ["A", "C"], 2),
        ({"metric": "time_to_resolve"}, ["A", "B"], 2),
        ({"metric": "reopen_rate", "part": "reopened"}, ["A"], 1),  # reopened twice, one case
        ({"metric": "reopen_rate"}, ["A", "B"], 2),
        ({"metric": "knowledge_reuse", "part": "linked"}, ["A"], 1),
        ({"metric": "engineering_bounce_rate", "part": "bounced"}, ["C"], 1),
        # Resolution clocks: A's three runs and B's one -> 4 clocks in 2 cases.
        ({"metric": "sla_compliance", "target": "resolution", "part": "met"}, ["A", "B"], 4),
        ({"metric": "sla_compliance", "target": "first_response", "part": "breached"}, ["C"], 1),
    ],
)
def test_drilldown_lists_the_counted_cases(dataset, as_manager, params, keys, total):
    response = as_manager.get(CASES, {**WEEK, **params})
    assert response.status_code == 200
    assert response.context["total"] == total
    assert sorted(row["case"].title for row in response.context["rows"]) == keys
    page = response.content.decode()
    for title in keys:
        case = getattr(dataset, title.lower())
        assert f'href="{case.get_absolute_url()}"' in page


def test_drilldown_totals_equal_the_selectors(dataset, as_manager):
    kpis = m.period_metrics(**PERIOD)
    for metric, part in [("escalation_rate", "escalated"), ("update_cadence_adherence", "met")]:
        ratio = kpis[metric]
        numerator = as_manager.get(CASES, {**WEEK, "metric": metric, "part": part})
        assert numerator.context["total"] == ratio.numerator
        assert as_manager.get(CASES, {**WEEK, "metric": metric}).context["total"] == ratio.denominator


def test_the_drilldown_shows_the_measured_duration(dataset, as_manager):
    response = as_manager.get(CASES, {**WEEK, "metric": "first_response_time"})
    took = {row["case"].title: row["took"] for row in response.context["rows"]}
    assert took == {"A": "10 min", "C": "20 min"}
    assert "First response time" in response.content.decode()


def test_backlog_drilldown(dataset, as_manager):
    with time_machine.travel(BACKLOG_NOW, tick=False):
        response = as_manager.get(CASES, {"metric": "backlog", "bucket": ">21d"})
    assert response.status_code == 200
    assert [row["case"].title for row in response.context["rows"]] == ["E"]


def test_drilldown_pages(dataset, as_manager, organisation, contact, agent, settings):
    from cases import services

    for i in range(3):
        services.create_case(
            title=f"Extra {i}",
            organisation=organisation,
            requester=contact,
            severity="P4",
            actor=agent,
            now=at(2025, 3, 4, 9, i),
        )
    from metrics import views

    original = views.CASES_PAGE_SIZE
    views.CASES_PAGE_SIZE = 2
    try:
        first = as_manager.get(CASES, {**WEEK, "metric": "volume_created"})
        second = as_manager.get(CASES, {**WEEK, "metric": "volume_created", "page": 3})
        junk = as_manager.get(CASES, {**WEEK, "metric": "volume_created", "page": "abc"})
    finally:
        views.CASES_PAGE_SIZE = original
    # A, C and the three extras were created in the Berlin week.
    assert first.context["total"] == 5
    assert len(first.context["rows"]) == 2
    assert len(second.context["rows"]) == 1
    assert junk.status_code == 200
    assert junk.context["page"].number == 1


# --- bad input: form errors, never a 500 -------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"start": "2025-03-09", "end": "2025-03-03"}, "end"),
        ({"start": "yesterday", "end": "2025-03-03"}, "start"),
        ({"start": "2025-03-03"}, "end"),
        ({"start": "0001-01-01", "end": "2025-03-03"}, "start"),
        ({**WEEK, "tz": "Mars/Olympus"}, "tz"),
        ({**WEEK, "severity": "P9"}, "severity"),
        ({**WEEK, "tier": "gold"}, "tier"),
        ({**WEEK, "team": "x"}, "team"),
        ({**WEEK, "organisation": "99999"}, "organisation"),
        ({"preset": "365"}, "preset"),
    ],
)
def test_bad_dashboard_parameters_are_form_errors(db, as_manager, params, field):
    response = as_manager.get(DASHBOARD, params)
    assert response.status_code == 400
    assert field in response.context["form"].errors
    assert b"not valid" in response.content


@pytest.mark.parametrize(
    "params",
    [
        {"metric": "colour"},
        {"metric": "reopen_rate", "part": "met"},
        {"metric": "sla_compliance", "target": "lunch"},
        {"metric": "backlog", "bucket": "ancient"},
        {},
    ],
)
def test_bad_drilldown_parameters_are_form_errors(db, as_manager, params):
    response = as_manager.get(CASES, {**WEEK, **params})
    assert response.status_code == 400
    assert response.context["form"].errors
    assert b"does not name a figure" in response.content


def test_bad_export_parameters_are_a_400_and_an_unknown_table_a_404(db, as_manager):
    response = as_manager.get(export_url("kpis"), {"start": "2025-03-09", "end": "2025-03-01"})
    assert response.status_code == 400
    assert b"end:" in response.content
    assert as_manager.get(export_url("cases"), {**WEEK, "metric": "nope"}).status_code == 400
    assert as_manager.get(export_url("passwords"), WEEK).status_code == 404


# --- CSV -----------------------------------------------------------------------------------------


def test_kpi_csv_matches_the_page(dataset, as_manager):
    response = as_manager.get(export_url("kpis"), WEEK)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"] == (
        'attachment; filename="supportdesk-kpis-2025-03-03_2025-03-09.csv"'
    )
    rows = {row["kpi"]: row for row in read_csv(response)}
    assert rows["first_response_time"]["value"] == "900.0"
    assert rows["first_response_time"]["previous_value"] == "7200.0"
    assert rows["first_response_time"]["count_or_denominator"] == "2"
    assert (rows["reopen_rate"]["numerator"], rows["reopen_rate"]["count_or_denominator"]) == ("1", "2")
    assert rows["reopen_rate"]["value"] == "0.5"
    assert rows["csat"]["value"] == ""


def test_duration_compliance_backlog_and_trend_csvs(dataset, as_manager):
    durations = read_csv(as_manager.get(export_url("durations"), WEEK))
    frt = {r["severity"]: r for r in durations if r["metric"] == "first_response_time"}
    assert (frt["all"]["count"], frt["all"]["median_seconds"]) == ("2", "900.0")
    assert frt["all"]["p90_seconds"] == "1140.0"
    assert frt["P1"]["target_minutes"] == "15"
    mttr = {r["severity"]: r for r in durations if r["metric"] == "time_to_resolve"}
    assert mttr["P2"]["median_seconds"] == "172800.0"

    compliance = read_csv(as_manager.get(export_url("compliance"), WEEK))
    cell = next(r for r in compliance if (r["target"], r["severity"]) == ("first_response", "P1"))
    assert (cell["met_on_time"], cell["completed"], cell["rate"]) == ("1", "2", "0.5")

    with time_machine.travel(BACKLOG_NOW, tick=False):
        response = as_manager.get(export_url("backlog"), WEEK)
    assert response["Content-Disposition"] == 'attachment; filename="supportdesk-backlog-2025-03-10.csv"'
    backlog = {r["age"]: r for r in read_csv(response)}
    assert (backlog["7-21d"]["P1"], backlog[">21d"]["P3"], backlog["0-1d"]["total"]) == ("1", "1", "1")

    trends = read_csv(as_manager.get(export_url("trends"), WEEK))
    assert len(trends) == 12
    last = trends[-1]
    assert last["week_start"] == "2025-03-03"
    assert (last["frt_count"], last["frt_median_seconds"]) == ("2", "900.0")
    assert last["mttr_median_seconds"] == "90000.0"
    assert (last["reopened"], last["resolved"]) == ("1", "2")
    assert (last["created"], last["first_resolved"]) == ("2", "2")


def test_case_list_csv_and_formula_cells(dataset, as_manager):
    Case.objects.filter(pk=dataset.a.pk).update(title='=HYPERLINK("http://evil.example","Click")')
    response = as_manager.get(export_url("cases"), {**WEEK, "metric": "reopen_rate"})
    assert response.status_code == 200
    assert response["Content-Disposition"] == (
        'attachment; filename="supportdesk-cases-reopen_rate-2025-03-03_2025-03-09.csv"'
    )
    rows = {row["key"]: row for row in read_csv(response)}
    assert set(rows) == {dataset.a.key, dataset.b.key}
    assert rows[dataset.a.key]["title"] == '\'=HYPERLINK("http://evil.example","Click")'
    assert rows[dataset.a.key]["first_resolved_at"] == "2025-03-03T13:00:00+01:00"  # 12:00 UTC in Berlin
    assert rows[dataset.b.key]["title"] == "B"


def test_safe_cell():
    from metrics.exports import safe_cell

    assert [safe_cell(v) for v in ("=1+1", "+1", "-1", "@SUM(A1)", "\tx", "ok", -1, 2.5)] == [
        "'=1+1",
        "'+1",
        "'-1",
        "'@SUM(A1)",
        "'\tx",
        "ok",
        -1,
        2.5,
    ]


# --- no N+1 ----------------------------------------------------------------------------------------


def test_the_dashboard_takes_a_fixed_number_of_queries(dataset, as_manager, organisation, contact, agent):
    as_manager.get(DASHBOARD, WEEK)  # warm up (session, content types)
    with CaptureQueriesContext(connection) as small:
        assert as_manager.get(DASHBOARD, WEEK).status_code == 200
    # More cases, teams, organisations and staff: the page still costs the same.
    from cases import services

    for i in range(5):
        team = factories.TeamFactory(name=f"Team {i}", slug=f"team-{i}")
        org = factories.OrganisationFactory(name=f"Org {i}", tier="business")
        person = factories.ContactFactory(organisation=org)
        factories.AgentFactory(username=f"agent-x{i}")
        for j in range(3):
            case = services.create_case(
                title=f"More {i}-{j}",
                organisation=org,
                requester=person,
                severity="P3",
                actor=agent,
                team=team,
                now=at(2025, 3, 4, 10, j),
            )
            services.add_public_reply(case, body="On it.", actor=agent, now=at(2025, 3, 4, 11, j))
    with CaptureQueriesContext(connection) as large:
        response = as_manager.get(DASHBOARD, WEEK)
    assert kpi(response, "first_response_time")["figure"].count == 17
    assert len(large) == len(small)
    assert len(small) <= 40, [q["sql"][:120] for q in small.captured_queries]


# --- an agent's own week -------------------------------------------------------------------------


def test_an_agent_sees_their_week_and_open_cases(dataset, client, agent):
    client.force_login(agent)
    client.cookies["tz"] = "Europe/Berlin"
    with time_machine.travel(at(2025, 3, 7, 12, 0), tick=False):
        response = client.get(MINE)
    assert response.status_code == 200
    # Alice's cases answered this Berlin week: A (600 s). Cadence: A's P1 run, met.
    assert response.context["frt"].count == 1
    assert response.context["frt_cells"]["median"] == "10 min"
    assert (response.context["cadence"].numerator, response.context["cadence"].denominator) == (1, 1)
    assert response.context["cadence_rate"] == "100.0%"
    page = response.content.decode()
    # Her open case is D (A and B are resolved; C and E are not hers).
    assert f'href="{dataset.d.get_absolute_url()}"' in page
    assert dataset.a.key not in page
    assert dataset.c.key not in page
    assert "since Monday 3 Mar 2025" in page


def test_a_manager_may_see_their_own_stats(db, client, manager):
    client.force_login(manager)
    response = client.get(MINE)
    assert response.status_code == 200
    assert b"You have no open cases." in response.content


def test_backlog_case_list_csv(dataset, as_manager):
    with time_machine.travel(BACKLOG_NOW, tick=False):
        response = as_manager.get(export_url("cases"), {**WEEK, "metric": "backlog", "bucket": ">21d"})
    # The bucket's ">" stays out of the file name.
    assert response["Content-Disposition"] == (
        'attachment; filename="supportdesk-cases-backlog-over21d-2025-03-03_2025-03-09.csv"'
    )
    assert [row["key"] for row in read_csv(response)] == [dataset.e.key]


def test_a_period_of_several_years_is_shown(dataset, as_manager):
    response = as_manager.get(DASHBOARD, {"start": "2022-01-01", "end": "2025-12-31", "tz": "UTC"})
    assert response.status_code == 200
    assert kpi(response, "time_to_resolve")["figure"].count == 2
    assert b"Time to final resolution" in response.content


def test_the_whole_history_says_there_is_no_previous_period(dataset, as_manager):
    with time_machine.travel(at(2025, 3, 20, 12, 0), tick=False):
        response = as_manager.get(DASHBOARD, {"preset": "all", "tz": "Europe/Berlin"})
    assert response.status_code == 200
    page = response.content.decode()
    assert "1 Feb 2025 – 20 Mar 2025" in page  # E, the first case, to today
    assert "There is no previous period" in page
    assert response.context["kpis"][0]["figure"].previous is None
    # The figures' links keep the whole history.
    assert "preset=all" in response.context["kpis"][0]["count_url"]
