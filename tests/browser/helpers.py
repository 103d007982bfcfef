"""Steps the browser tests share."""

from __future__ import annotations

import re


def log_in(page, base_url: str, username: str) -> None:
    """Log in through the login form (a fresh session: earlier cookies are dropped first)."""
    page.context.clear_cookies()
    page.goto(f"{base_url}/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill("pw-for-tests-1")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r".*/cases/$"))


def expect_message(page, text: str) -> None:
    page.locator(".messages").get_by_text(text).wait_for()
