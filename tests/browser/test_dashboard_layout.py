"""The dashboard fits the screen: at 1440x900 the three duration tables sit side by side without
overlapping, at 390x844 (a phone) nothing scrolls sideways; better/worse is said in words; the
breached cases and the per-agent figures are one click away.

The data set is the one of tests/metrics/conftest.py (the browser runs in UTC): the UTC week
2025-03-03..09 compared with the week before, where the first response time went from 20 to 10 min.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings

from cases import services as cases
from tests.browser.helpers import log_in
from tests.factories import at
from tests.metrics.conftest import dataset  # noqa: F401 - the data set fixture

SHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"
WEEK = "/metrics/?start=2025-03-03&end=2025-03-09"


def _open(page, base_url: str, *, width: int, height: int, url: str = WEEK) -> None:
    page.set_viewport_size({"width": width, "height": height})
    page.goto(base_url + url)
    page.get_by_role("heading", name="Support dashboard").wait_for()
    page.locator("#charts[data-rendered]").wait_for()


def _overlap(a: dict, b: dict) -> bool:
    return not (
        a["x"] + a["width"] <= b["x"]
        or b["x"] + b["width"] <= a["x"]
        or a["y"] + a["height"] <= b["y"]
        or b["y"] + b["height"] <= a["y"]
    )


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_dashboard_fits_a_desktop_and_a_phone(live_server, page, dataset, manager):  # noqa: F811
    SHOTS.mkdir(parents=True, exist_ok=True)
    log_in(page, live_server.url, "maria")

    _open(page, live_server.url, width=1440, height=900)
    tables = page.locator(".duration-tables table.durations")
    assert tables.count() == 4  # FRT, TTT, time to first and to final resolution
    boxes = [tables.nth(i).bounding_box() for i in range(4)]
    for i in range(4):
        for j in range(i + 1, 4):
            assert not _overlap(boxes[i], boxes[j]), (boxes[i], boxes[j])
    # Two by two, each whole inside its own column (nothing cut off or scrolled away).
    assert len({round(b["y"]) for b in boxes}) == 2, boxes
    assert page.evaluate(
        "[...document.querySelectorAll('.duration-tables > .table-scroll')]"
        ".every(box => box.scrollWidth <= box.clientWidth)"
    )
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

    page.screenshot(path=str(SHOTS / "dashboard-1440.png"), full_page=True)

    # Better / worse in words, not colour alone.
    frt = page.locator('tr[data-kpi="first_response_time"] td.change')
    assert "better than the previous period" in frt.inner_text()
    assert page.locator("td.change svg.icon").count() >= 1  # the arrows are SVG, not font glyphs

    _open(page, live_server.url, width=390, height=844)
    widths = page.evaluate(
        "[document.documentElement.scrollWidth, document.body.scrollWidth, window.innerWidth]"
    )
    assert widths[0] <= widths[2], widths
    assert widths[1] <= widths[2], widths
    assert "better than the previous period" in frt.inner_text()
    page.screenshot(path=str(SHOTS / "dashboard-390.png"), full_page=True)
    page.screenshot(path=str(SHOTS / "dashboard-390-top.png"))
    for section in ("kpis", "durations", "compliance", "agents"):  # one phone screen each, readable
        page.locator(f"#{section}-h").scroll_into_view_if_needed()
        page.evaluate(f"document.getElementById('{section}-h').scrollIntoView()")
        page.screenshot(path=str(SHOTS / f"dashboard-390-{section}.png"))


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_figure_that_got_worse_says_so_in_words(live_server, page, dataset, manager, agent):  # noqa: F811
    # The week after: one case answered after 5 h, against 10 min the week before.
    case = cases.create_case(
        title="Slow",
        organisation=dataset.a.organisation,
        requester=dataset.a.requester,
        severity="P3",
        actor=agent,
        now=at(2025, 3, 11, 10, 0),
    )
    cases.add_public_reply(case, body="Sorry for the wait.", actor=agent, now=at(2025, 3, 11, 15, 0))
    log_in(page, live_server.url, "maria")
    _open(page, live_server.url, width=1440, height=900, url="/metrics/?start=2025-03-10&end=2025-03-16")

    change = page.locator('tr[data-kpi="first_response_time"] td.change')
    assert change.get_attribute("data-verdict") == "worse"
    assert "worse than the previous period" in change.inner_text()
    assert change.locator("svg.icon-up").count() == 1
    change.scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / "dashboard-worse.png"))


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_from_the_dashboard_to_the_breached_cases_and_an_agents_figures(
    live_server,
    page,
    dataset,  # noqa: F811
    manager,
):
    log_in(page, live_server.url, "maria")
    # The Berlin week holds case C's late first response (due 23:45 UTC on Sunday = 00:45 Monday).
    _open(page, live_server.url, width=1440, height=900, url=WEEK + "&tz=Europe/Berlin")

    alice = page.locator('table.agents tr[data-agent="alice"]')
    assert alice.locator("th").inner_text() == "Alice Agent"
    # A (answered and resolved) and B (resolved); D is answered on Monday 10 March in Berlin.
    assert alice.locator('td[data-label="Cases handled"]').inner_text() == "2"

    page.locator(".breach-note a[data-figure='breached']").click()
    page.wait_for_url(re.compile(r".*/metrics/cases/\?.*part=breached.*"))
    assert page.get_by_role("heading", level=1).inner_text() == "SLA compliance — breached (late or missed)"
    assert page.locator("table.drilldown tbody tr").count() >= 1
    page.screenshot(path=str(SHOTS / "dashboard-breached.png"), full_page=True)
