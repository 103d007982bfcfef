"""Steps the browser tests share."""

from __future__ import annotations

import re
from pathlib import Path

from django.conf import settings


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


SCREENSHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"


def screenshot_widths(page, name: str, *, fits_width: bool = False) -> None:
    """Full-page screenshots at desktop (1440) and phone (390) width under var/screenshots/; with
    ``fits_width`` each must have no horizontal scroll. Leaves the viewport at 1366x768."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for width, height in ((1440, 900), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        page.screenshot(path=str(SCREENSHOTS / f"{name}-{width}.png"), full_page=True)
        if fits_width:
            assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), width
    page.set_viewport_size({"width": 1366, "height": 768})
