"""Headless Chromium through Playwright for the browser flows (marked ``browser``)."""

from __future__ import annotations

import os

import pytest
from django.core.servers.basehttp import WSGIServer

from tests.infra import CHROMIUM

# Playwright's sync API runs an event loop in this thread; Django's ORM calls made by the test
# itself (creating users, reading the database) are still synchronous and safe here.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class _SerialWSGIServer(WSGIServer):
    """The live server, one request at a time (see ``_serial_live_server_on_sqlite``)."""

    def __init__(self, *args, connections_override=None, **kwargs):
        # The live-server thread already runs on the overridden connections; requests are handled
        # in that same thread, so nothing else needs them.
        super().__init__(*args, **kwargs)


@pytest.fixture(scope="session", autouse=True)
def _serial_live_server_on_sqlite():
    """On SQLite the live server shares the test's single in-memory connection with every request
    thread. Pages that fetch several API endpoints at once (the dashboard) then use that one
    connection from several threads at the same time, which can hang SQLite. Serve requests one at
    a time there (Django then answers ``Connection: close``); PostgreSQL keeps the threaded server.
    """
    from django.db import connection
    from django.test.testcases import LiveServerThread

    if connection.vendor != "sqlite":
        yield
        return
    original = LiveServerThread.server_class
    LiveServerThread.server_class = _SerialWSGIServer
    yield
    LiveServerThread.server_class = original


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        new_context = chromium.new_context

        def watched_context(*args, **kwargs):
            """Every context reports what the Content-Security-Policy refused (see below)."""
            context = new_context(*args, **kwargs)
            context.on("console", _record_csp_violation)
            return context

        chromium.new_context = watched_context
        yield chromium
        chromium.close()


CSP_VIOLATIONS: list[str] = []


def _record_csp_violation(message) -> None:
    if message.type == "error" and "Content Security Policy" in message.text:
        CSP_VIOLATIONS.append(f"{message.location.get('url', '')}: {message.text}")


@pytest.fixture(autouse=True)
def no_csp_violations():
    """The pages work under the shipped Content-Security-Policy: a browser test fails when the
    browser refused a script, a style or a style attribute of the page."""
    CSP_VIOLATIONS.clear()
    yield
    assert not CSP_VIOLATIONS, "Content-Security-Policy violations:\n" + "\n".join(CSP_VIOLATIONS)


@pytest.fixture
def page(browser):
    # A laptop screen: the pages must be usable at 1366×768.
    context = browser.new_context(viewport={"width": 1366, "height": 768}, locale="en-GB", timezone_id="UTC")
    context.set_default_timeout(15_000)
    tab = context.new_page()
    yield tab
    context.close()


@pytest.fixture(autouse=True)
def role_groups(transactional_db):
    """The role groups, which a data migration creates and each transactional test's flush removes."""
    from django.contrib.auth.models import Group

    from supportdesk.core.roles import Role

    for role in Role:
        Group.objects.get_or_create(name=role.value)
