"""The shipped Content-Security-Policy holds on the pages that are not ours to write: the Django
admin and the API docs work under it (every browser test also fails on any CSP refusal)."""

from __future__ import annotations

import re

import pytest

from tests.browser.helpers import log_in


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_api_docs_render_under_the_policy(live_server, page, agent):
    log_in(page, live_server.url, "alice")
    response = page.goto(f"{live_server.url}/api/docs/")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "script-src 'self' 'unsafe-inline'" not in policy
    # Swagger UI built the operation list from the schema: its scripts ran.
    page.locator(".opblock-tag").first.wait_for()
    assert page.locator(".opblock").count() > 20


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_admin_works_under_the_policy(live_server, page, admin_user):
    admin_user.set_password("pw-for-tests-1")
    admin_user.save()
    page.goto(f"{live_server.url}/admin/login/")
    page.get_by_label("Username").fill(admin_user.username)
    page.get_by_label("Password").fill("pw-for-tests-1")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r".*/admin/$"))
    page.goto(f"{live_server.url}/admin/cases/organisation/add/")
    page.get_by_role("button", name="Save", exact=True).wait_for()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_our_pages_allow_no_inline_script_or_style(live_server, page, agent):
    log_in(page, live_server.url, "alice")
    response = page.goto(f"{live_server.url}/cases/")
    policy = response.headers["content-security-policy"]
    assert "'unsafe-inline'" not in policy
    assert "frame-ancestors 'none'" in policy
    # A style attribute slipped into a page would be refused (and fail the test through the fixture).
    assert page.evaluate("getComputedStyle(document.querySelector('.topbar')).display") != "none"
