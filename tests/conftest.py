from __future__ import annotations

import os

import pytest
from django.utils import timezone

from tests import factories

# The local S3-compatible server (object_store, s3_storage) and a private IMAP server (dovecot).
pytest_plugins = ["tests.objectstore", "tests.dovecot"]


def _missing(marker: str) -> str | None:
    from tests.infra import browser_missing_reason, services_missing_reason

    return services_missing_reason() if marker == "services" else browser_missing_reason()


def _skip_unavailable(items):
    """Service and browser tests need real infrastructure.

    Where they are not required they are skipped with the reason; where they are required a missing
    service is a failure, never a skip (see pytest_runtest_setup): browser tests under CI=true,
    service tests when REQUIRE_SERVICES=true (the service run of .ci/run and `make test-services`).
    """
    reasons: dict[str, str | None] = {}
    for item in items:
        for marker in ("services", "browser"):
            if marker in item.keywords and not _required(marker):
                if marker not in reasons:
                    reasons[marker] = _missing(marker)
                if reasons[marker]:
                    item.add_marker(pytest.mark.skip(reason=reasons[marker]))


def pytest_collection_modifyitems(items):
    _skip_unavailable(items)


def _required(marker: str) -> bool:
    flag = "REQUIRE_SERVICES" if marker == "services" else "CI"
    return os.environ.get(flag, "").lower() == "true"


def pytest_runtest_setup(item):
    for marker in ("services", "browser"):
        if marker in item.keywords and _required(marker) and (reason := _missing(marker)):
            pytest.fail(f"{marker} tests are required here but cannot run: {reason}", pytrace=False)


@pytest.fixture(autouse=True)
def _fast_password_hasher(request, settings):
    """Hashing a password per factory user would dominate the run time. Service tests start real
    servers with the production hashers, so they keep them."""
    if "services" not in request.keywords:
        settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _seed_data_after_flush(request):
    """Transactional tests (live servers, worker processes) end with a flush that also removes what
    the data migrations wrote; put the roles and the default SLA calendar and policies back."""
    marker = request.node.get_closest_marker("django_db")
    transactional = bool(marker and marker.kwargs.get("transaction")) or bool(
        {"live_server", "transactional_db"} & set(request.fixturenames)
    )
    if not transactional:
        return
    request.getfixturevalue("transactional_db")
    from django.contrib.auth.models import Group

    from sla import defaults
    from sla.models import BusinessCalendar, OpeningHours, SlaPolicy
    from supportdesk.core.roles import Role

    for role in Role:
        Group.objects.get_or_create(name=role.value)
    defaults.seed(calendar_model=BusinessCalendar, opening_hours_model=OpeningHours, policy_model=SlaPolicy)


@pytest.fixture
def now():
    return timezone.now()


@pytest.fixture
def agent(db):
    return factories.AgentFactory(username="alice", first_name="Alice", last_name="Agent")


@pytest.fixture
def other_agent(db):
    return factories.AgentFactory(username="bob", first_name="Bob", last_name="Builder")


@pytest.fixture
def manager(db):
    return factories.ManagerFactory(username="maria", first_name="Maria", last_name="Manager")


@pytest.fixture
def engineer(db):
    return factories.EngineerFactory(username="erik", first_name="Erik", last_name="Engineer")


@pytest.fixture
def admin_user(db):
    return factories.AdminFactory(username="root-admin")


@pytest.fixture
def organisation(db):
    return factories.OrganisationFactory(name="Acme Corp", tier="enterprise", time_zone="Europe/Berlin")


@pytest.fixture
def contact(organisation):
    return factories.ContactFactory(
        organisation=organisation, name="Carla Customer", email="carla@acme.example"
    )


@pytest.fixture
def team(db):
    return factories.TeamFactory(name="Tier 2", slug="tier-2")


@pytest.fixture
def new_case(organisation, contact, agent, now):
    from cases import services

    return services.create_case(
        title="Checkout fails with 502",
        description="Since 09:00 every checkout returns 502.",
        organisation=organisation,
        requester=contact,
        severity="P2",
        actor=agent,
        now=now,
    )
