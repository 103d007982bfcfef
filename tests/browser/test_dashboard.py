"""A manager reads the dashboard in a real browser: period, filter, charts, a figure's cases, a CSV.

The data set is the one of tests/metrics/conftest.py. The browser runs in UTC, so the week asked for
is the UTC week 2025-03-03..09; with the team "Tier 2" filter (cases A and C) that week holds A's
first response (600 s), A's first resolution (7200 s) and A reopened (1 of 1 resolved).
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest
from django.conf import settings

from tests.browser.helpers import log_in
from tests.metrics.conftest import dataset  # noqa: F401 - the data set fixture

SCREENSHOT = Path(settings.BASE_DIR) / "var" / "screenshots" / "dashboard.png"
CHARTS = ("frt", "mttr", "quality", "volume", "backlog", "compliance")


def charts_drawn(page) -> None:
    page.locator('#charts[data-rendered="6"]').wait_for()
    for name in CHARTS:
        canvas = page.locator(f'canvas[data-chart="{name}"]')
        assert canvas.get_attribute("data-rendered") == "true", name
        box = canvas.bounding_box()
        assert box is not None, name
        assert box["width"] > 100, (name, box)
        assert box["height"] > 100, (name, box)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)  # the live server runs in another thread
def test_a_manager_reads_the_dashboard_and_follows_a_figure(live_server, page, dataset, manager):  # noqa: F811
    log_in(page, live_server.url, "maria")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Dashboard").click()
    page.wait_for_url(re.compile(r".*/metrics/$"))
    page.get_by_role("heading", name="Support dashboard").wait_for()
    charts_drawn(page)  # the default period (the last 30 days) draws too, empty or not

    # Change the period and a filter.
    page.get_by_label("From").fill("2025-03-03")
    page.get_by_label("To (inclusive)").fill("2025-03-09")
    page.get_by_label("Team").select_option(label="Tier 2")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url(re.compile(r".*start=2025-03-03.*"))
    assert "3 Mar 2025 – 9 Mar 2025" in page.locator(".period-note").inner_text()
    frt = page.locator('tr[data-kpi="first_response_time"]')
    assert frt.locator("td.value").inner_text() == "10 min"
    assert page.locator('tr[data-kpi="time_to_resolve"] td.value').inner_text() == "2 h"
    charts_drawn(page)
    # The weekly series: 12 weeks of the median plus the P1 and P2 target lines.
    assert page.locator('canvas[data-chart="frt"]').get_attribute("data-points") == str(12 * 3)
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    print(f"dashboard screenshot: {SCREENSHOT}")  # noqa: T201

    # Download the headline KPIs as CSV.
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download KPIs as CSV").click()
    download = download_info.value
    assert download.suggested_filename == "supportdesk-kpis-2025-03-03_2025-03-09.csv"
    rows = {row["kpi"]: row for row in csv.DictReader(io.StringIO(Path(download.path()).read_text()))}
    assert rows["first_response_time"]["value"] == "600.0"
    assert (rows["reopen_rate"]["numerator"], rows["reopen_rate"]["count_or_denominator"]) == ("1", "1")

    # Follow a figure: the reopened case behind the reopen rate.
    page.locator('tr[data-kpi="reopen_rate"] a[data-figure="numerator"]').click()
    page.wait_for_url(re.compile(r".*/metrics/cases/\?.*metric=reopen_rate.*"))
    assert page.get_by_role("heading", level=1).inner_text() == "Reopen rate — reopened"
    assert page.locator("[data-total]").inner_text() == "1"
    page.get_by_role("link", name=dataset.a.key).wait_for()
    assert page.locator("table.drilldown tbody tr").count() == 1
    assert "Team: Tier 2" in page.locator(".figure-count").inner_text()
