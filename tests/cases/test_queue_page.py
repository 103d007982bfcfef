"""The dense queue page: one line per case with a single "next due" cell read from the case's stored
urgency, a compact filter bar with the status filter in view, and a constant number of queries."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from cases import services
from cases.models import DueState, Status
from cases.queue_views import compact_duration, next_due
from tests import factories

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 3, 4, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def agent_client(client, agent):
    client.force_login(agent)
    return client


def _row(html: str, key: str) -> str:
    match = re.search(rf'<tr class="q-row" data-key="{key}".*?</tr>', html, re.S)
    assert match, f"no row for {key}"
    return match.group(0)


def _keys(html: str) -> list[str]:
    return re.findall(r'<tr class="q-row" data-key="(CASE-\d+)"', html)


def _text(fragment: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", fragment).split())


def _due_cell(row: str) -> str:
    match = re.search(r'<td class="q-due[^"]*">(.*?)</td>', row, re.S)
    assert match, "no next-due cell"
    return match.group(1)


def _get(client, **params):
    with time_machine.travel(T0, tick=False):
        return client.get(reverse("cases:queue"), params).content.decode()


# --- The next-due cell --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("delta", "expected"),
    [
        (dt.timedelta(minutes=45), "45m"),
        (dt.timedelta(hours=3, minutes=10), "3h 10m"),
        (dt.timedelta(hours=2), "2h"),
        (dt.timedelta(days=2, hours=4, minutes=59), "2d 4h"),
        (dt.timedelta(seconds=-190), "3m"),
    ],
)
def test_countdowns_are_short(delta, expected):
    assert compact_duration(delta) == expected


def test_a_passed_deadline_is_breached_whatever_the_stored_state_says():
    case = factories.CaseFactory.build(
        next_due_at=T0 - dt.timedelta(minutes=1), next_due_target="triage", next_due_state=DueState.AT_RISK
    )
    due = next_due(case, now=T0)
    assert (due.state, due.state_label, due.target_label, due.countdown) == (
        "breached",
        "Breached",
        "Triage",
        "overdue 1m",
    )


def test_the_row_says_target_state_countdown_and_instant_in_the_viewers_zone(agent_client, organisation):
    overdue = factories.CaseFactory(
        organisation=organisation,
        title="Checkout fails",
        next_due_at=T0 - dt.timedelta(hours=3, minutes=10),
        next_due_target="first_response",
        next_due_state=DueState.BREACHED,
    )
    # The sweep has not caught up yet: stored "at risk", due a minute ago.
    late = factories.CaseFactory(
        organisation=organisation,
        next_due_at=T0 - dt.timedelta(minutes=1),
        next_due_target="triage",
        next_due_state=DueState.AT_RISK,
    )
    soon = factories.CaseFactory(
        organisation=organisation,
        next_due_at=T0 + dt.timedelta(minutes=45),
        next_due_target="update_cadence",
        next_due_state=DueState.ON_TRACK,
    )
    waiting = factories.CaseFactory(organisation=organisation, next_due_state=DueState.PAUSED)
    nothing = factories.CaseFactory(organisation=organisation)

    agent_client.cookies["tz"] = "Europe/Berlin"
    html = _get(agent_client)

    assert _keys(html) == [overdue.key, late.key, soon.key, waiting.key, nothing.key]
    assert _text(_due_cell(_row(html, overdue.key))).startswith(
        "Breached First response overdue 3h 10m 4 Mar 2026 09:50 CET"
    )
    assert '<time datetime="2026-03-04T09:50:00+01:00">' in _due_cell(_row(html, overdue.key))
    assert _text(_due_cell(_row(html, late.key))).startswith("Breached Triage overdue 1m")
    assert 'data-due-state="breached"' in _row(html, late.key)
    assert _text(_due_cell(_row(html, soon.key))).startswith(
        "On track Next update in 45m 4 Mar 2026 13:45 CET"
    )
    assert _text(_due_cell(_row(html, waiting.key))).startswith("Paused waiting on the customer")
    assert _text(_due_cell(_row(html, nothing.key))).startswith("No SLA running")


def test_one_dense_line_per_case_with_the_full_title_on_hover(agent_client, organisation, agent, team):
    long_title = "Checkout fails with 502 for every customer in the EU region since this morning's deploy"
    case = factories.CaseFactory(
        organisation=organisation,
        title=long_title,
        severity="P1",
        assignee=agent,
        team=team,
        tags=["billing"],
    )
    row = _row(_get(agent_client), case.key)
    cells = re.findall(r'<td class="q-([a-z]+)', row)
    assert cells == ["pick", "key", "title", "organisation", "severity", "status", "assignee", "due", "age"]
    assert f'title="{long_title.replace(chr(39), "&#x27;")}"' in row
    text = _text(row)
    for expected in (case.key, "Acme Corp", "Enterprise", "P1", "New", "Alice Agent", "Tier 2", "#billing"):
        assert expected in text, expected
    # No per-clock pills and no glyph icons in the line itself.
    assert "sla-badge" not in row
    assert not re.search(r"[\u2300-\u23ff\u2600-\u27bf]", row)


def test_the_other_clocks_are_on_demand_inside_the_due_cell(agent_client, organisation, contact, agent):
    with time_machine.travel(T0 - dt.timedelta(minutes=5), tick=False):
        case = services.create_case(
            title="Outage", organisation=organisation, requester=contact, severity="P1", actor=agent, now=T0
        )
    cell = _due_cell(_row(_get(agent_client), case.key))
    assert "<details" in cell
    assert "</summary>" in cell
    # Not rendered with the page: the cell names where its clocks load from (the page's script
    # fetches it when the cell is opened) and, without the script, links to the case page.
    assert "First response" not in cell.split("</summary>", 1)[1]
    assert f'href="/cases/{case.key}/">Every clock on the case page' in cell
    url = re.search(r'data-clocks-url="([^"]+)"', cell).group(1)
    clocks = agent_client.get(url)
    assert clocks.status_code == 200
    for target in ("First response", "Triage", "Next update", "Resolution"):
        assert target in clocks.content.decode(), target


def test_the_clocks_of_a_case_another_team_cannot_see_are_not_served(
    client, engineer, organisation, contact, agent
):
    case = services.create_case(
        title="Outage", organisation=organisation, requester=contact, severity="P1", actor=agent, now=T0
    )
    client.force_login(engineer)
    assert client.get(f"/cases/{case.key}/clocks/").status_code == 403


# --- The filter bar ------------------------------------------------------------------------------


def test_the_status_filter_is_in_view_and_filters(agent_client, organisation, contact, agent):
    waiting = services.create_case(
        title="Need logs", organisation=organisation, requester=contact, actor=agent, now=T0, severity="P2"
    )
    services.transition(waiting, Status.TRIAGED, actor=agent, now=T0, severity="P2", assignee=agent)
    services.transition(waiting, Status.IN_PROGRESS, actor=agent, now=T0)
    services.transition(waiting, Status.WAITING_ON_CUSTOMER, actor=agent, now=T0)
    other = services.create_case(
        title="New one", organisation=organisation, requester=contact, actor=agent, now=T0
    )

    html = _get(agent_client)
    bar = re.search(r'<form method="get" action="/cases/" class="q-filters".*?</form>', html, re.S).group(0)
    before_more = bar.split('<details class="q-more"', 1)[0]
    for status in Status.values:
        assert f'name="status" value="{status}"' in before_more, status  # not tucked away
    assert set(_keys(html)) == {waiting.key, other.key}

    filtered = _get(agent_client, status="waiting_on_customer")
    assert _keys(filtered) == [waiting.key]
    assert re.search(r'name="status" value="waiting_on_customer"[^>]*checked', filtered)


def test_more_filters_open_and_say_how_many_are_set(agent_client, team):
    html = _get(agent_client, team=team.slug, tag="billing")
    assert re.search(r'<details class="q-more" open>\s*<summary>More filters \(2 set\)</summary>', html)
    assert re.search(r'<details class="q-more">\s*<summary>More filters</summary>', _get(agent_client))


# --- Queries -------------------------------------------------------------------------------------


def test_the_page_runs_the_same_queries_for_10_or_50_cases(
    agent_client, organisation, contact, agent, other_agent, team, django_assert_num_queries
):
    def add_cases(n: int, start: int) -> None:
        for i in range(start, start + n):
            org = factories.OrganisationFactory()
            with time_machine.travel(T0 - dt.timedelta(minutes=i), tick=False):
                services.create_case(
                    title=f"Case {i}",
                    organisation=org,
                    requester=factories.ContactFactory(organisation=org),
                    severity=f"P{i % 4 + 1}",
                    assignee=agent if i % 2 else other_agent,
                    team=team,
                    tags=[f"tag-{i % 3}", "common"],
                    actor=agent,
                    now=T0 - dt.timedelta(minutes=i),
                )

    add_cases(10, 0)
    with CaptureQueriesContext(connection) as ctx:
        small = _get(agent_client)
    assert len(_keys(small)) == 10
    assert small.count("data-clocks-url=") == 10  # every row's other clocks load on demand
    queries_for_10 = len(ctx.captured_queries)

    add_cases(40, 10)
    with django_assert_num_queries(queries_for_10):
        large = _get(agent_client)
    assert len(_keys(large)) == 50
