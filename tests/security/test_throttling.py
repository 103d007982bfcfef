"""Password guessing is throttled per account and per address, and the API per caller."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.core.cache import cache
from drf_spectacular.views import SpectacularAPIView
from rest_framework.permissions import AllowAny
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle

from tests import factories

pytestmark = pytest.mark.django_db

START = dt.datetime(2026, 12, 3, 9, 0, tzinfo=dt.UTC)


def login(client, username: str, password: str, address: str = "198.51.100.7"):
    return client.post("/login/", {"username": username, "password": password}, REMOTE_ADDR=address)


def logged_in(client) -> bool:
    return "_auth_user_id" in client.session


def test_wrong_passwords_lock_the_account_until_the_cool_off_passes(client, agent, settings):
    agent.set_password("right-password")
    agent.save()
    with time_machine.travel(START, tick=False) as clock:
        for _ in range(settings.AXES_FAILURE_LIMIT - 1):
            assert login(client, agent.username, "guess").status_code == 200
        # The fifth failure locks the account; then even the right password is refused.
        assert login(client, agent.username, "guess").status_code == 429
        locked = login(client, agent.username, "right-password")
        assert locked.status_code == 429
        assert "Too many failed logins" in locked.content.decode()
        assert int(locked["Retry-After"]) == 15 * 60
        assert not logged_in(client)
        # Another address does not unlock the account.
        assert login(client, agent.username, "right-password", address="203.0.113.9").status_code == 429

        # Each refused try counts: the cool-off runs from the latest one.
        clock.move_to(START + dt.timedelta(minutes=14))
        assert login(client, agent.username, "right-password").status_code == 429
        clock.move_to(START + dt.timedelta(minutes=14 + 14))
        assert login(client, agent.username, "right-password", address="203.0.113.9").status_code == 429
        clock.move_to(START + dt.timedelta(minutes=14 + 14 + 16))
        assert login(client, agent.username, "right-password").status_code == 302
        assert logged_in(client)


def test_one_address_guessing_many_accounts_is_locked_out(client, agent, other_agent, settings):
    with time_machine.travel(START, tick=False):
        for number in range(settings.AXES_FAILURE_LIMIT):
            login(client, f"someone-{number}", "guess")
        other_agent.set_password("right-password")
        other_agent.save()
        assert login(client, other_agent.username, "right-password").status_code == 429
        # The same account from elsewhere logs in: it was the address that was locked.
        assert login(client, other_agent.username, "right-password", address="203.0.113.9").status_code == 302


def test_a_successful_login_resets_the_count(client, agent, settings):
    agent.set_password("right-password")
    agent.save()
    with time_machine.travel(START, tick=False):
        for _ in range(settings.AXES_FAILURE_LIMIT - 1):
            login(client, agent.username, "guess")
        assert login(client, agent.username, "right-password").status_code == 302
        client.logout()
        for _ in range(settings.AXES_FAILURE_LIMIT - 1):
            login(client, agent.username, "guess")
        assert login(client, agent.username, "right-password").status_code == 302


@pytest.fixture
def rates(monkeypatch):
    """Small rates for these tests (DRF reads its rates once, into the throttle class)."""
    cache.clear()
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {"anon": "3/min", "user": "5/min"})
    yield
    cache.clear()


def test_a_token_over_its_rate_gets_429_with_retry_after(rates, agent):
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {factories.api_token_key(agent)}")
    with time_machine.travel(START, tick=False) as clock:
        assert [api.get("/api/cases/").status_code for _ in range(5)] == [200] * 5
        refused = api.get("/api/cases/")
        assert refused.status_code == 429
        assert int(refused["Retry-After"]) == 60
        assert "throttled" in refused.json()["detail"].lower()
        clock.move_to(START + dt.timedelta(seconds=61))
        assert api.get("/api/cases/").status_code == 200


def test_anonymous_callers_of_an_open_endpoint_are_limited_per_address(rates, monkeypatch):
    # Every endpoint needs a login (an anonymous call is a 401 before any work); an operator may
    # open the schema to anyone (API_SCHEMA_PUBLIC, read when the view is built), and then the
    # anonymous rate applies.
    monkeypatch.setattr(SpectacularAPIView, "permission_classes", [AllowAny])
    api = APIClient()
    with time_machine.travel(START, tick=False):
        statuses = [api.get("/api/schema/", REMOTE_ADDR="198.51.100.7").status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        assert api.get("/api/schema/", REMOTE_ADDR="203.0.113.9").status_code == 200


def test_the_schema_and_docs_need_a_login(client, engineer):
    assert APIClient().get("/api/schema/").status_code == 401
    assert APIClient().get("/api/docs/").status_code == 401
    client.force_login(engineer)
    assert client.get("/api/schema/", {"format": "json"}).status_code == 200
    assert client.get("/api/docs/").status_code == 200


def test_each_user_has_their_own_allowance(rates, agent, other_agent):
    first, second = APIClient(), APIClient()
    first.force_authenticate(agent)
    second.force_authenticate(other_agent)
    with time_machine.travel(START, tick=False):
        for _ in range(5):
            first.get("/api/cases/")
        assert first.get("/api/cases/").status_code == 429
        assert second.get("/api/cases/").status_code == 200
