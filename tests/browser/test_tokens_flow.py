"""An agent makes an API token on the tokens page, copies the key shown once, uses it, and revokes it."""

from __future__ import annotations

import re

import pytest

from tests import factories
from tests.browser.helpers import expect_message, log_in, screenshot_widths

pytestmark = pytest.mark.browser


def test_make_use_and_revoke_a_token(live_server, page):
    factories.AgentFactory(username="alice", first_name="Alice", last_name="Agent")
    log_in(page, live_server.url, "alice")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="API tokens").click()
    page.wait_for_url(re.compile(r".*/tokens/$"))
    assert page.get_by_text("You have no tokens.").is_visible()

    page.get_by_label("Name").fill("Nightly export")
    page.get_by_label("Expires after").select_option("30")
    page.get_by_role("button", name="Make token").click()

    key = page.get_by_label("Key (select it and copy)").input_value()
    assert re.fullmatch(r"[0-9a-f]{64}", key)
    assert page.get_by_text("it is shown only this once").is_visible()
    assert page.locator("#tokens").get_by_role("rowheader", name="Nightly export").is_visible()
    screenshot_widths(page, "tokens-new-key")

    api = page.context.request
    answer = api.get(f"{live_server.url}/api/cases/", headers={"Authorization": f"Bearer {key}"})
    assert answer.status == 200

    page.goto(f"{live_server.url}/tokens/")
    assert key not in page.content()
    row = page.locator("#tokens tr", has_text="Nightly export")
    assert "never" not in row.inner_text()  # the call above is its last use
    screenshot_widths(page, "tokens-list")

    row.get_by_role("button", name="Revoke the token Nightly export").click()
    expect_message(page, "Revoked the token “Nightly export”")
    page.context.clear_cookies()
    answer = api.get(f"{live_server.url}/api/cases/", headers={"Authorization": f"Token {key}"})
    assert answer.status == 401
