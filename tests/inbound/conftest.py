"""Inbound mail tests: the support mailbox, customer organisations with their e-mail domains, and one
way to receive a fixture as the pipe command does."""

from __future__ import annotations

import pytest
import time_machine

from inbound.models import Mailbox, MailboxMode
from tests import factories
from tests.inbound.helpers import SUPPORT, T0, organisation_with_domains


@pytest.fixture(autouse=True)
def _inbound_settings(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.VAR_DIR = tmp_path / "var"
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.DEFAULT_FROM_EMAIL = "SupportDesk <noreply@help.acme.example>"
    settings.SERVER_EMAIL = "SupportDesk <noreply@help.acme.example>"
    settings.MAIL_MESSAGE_ID_DOMAIN = "help.acme.example"
    settings.INBOUND_MAX_BYTES = 25 * 1024 * 1024
    settings.INBOUND_SENDER_LIMIT_PER_HOUR = 30
    settings.ATTACHMENT_MAX_BYTES = 10 * 1024 * 1024


@pytest.fixture
def travel():
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


@pytest.fixture
def mailbox(db, team):
    return Mailbox.objects.create(
        name="support",
        address=SUPPORT,
        display_name="Acme Support",
        team=team,
        default_severity="P2",
        mode=MailboxMode.PIPE,
    )


@pytest.fixture
def brightwave(db):
    """The customer behind gmail_reply.eml (tomas.ferreira@brightwave.example)."""
    return organisation_with_domains("Brightwave", "brightwave.example")


@pytest.fixture
def northwind(db):
    """The customer behind outlook_desktop_reply.eml (renee.obrien@northwind-traders.example)."""
    return organisation_with_domains("Northwind Traders", "northwind-traders.example", tier="enterprise")


@pytest.fixture
def tomas(brightwave):
    return factories.ContactFactory(
        organisation=brightwave, name="Tomás Ferreira", email="tomas.ferreira@brightwave.example"
    )


@pytest.fixture
def renee(northwind):
    return factories.ContactFactory(
        organisation=northwind, name="Renée O’Brien", email="renee.obrien@northwind-traders.example"
    )
