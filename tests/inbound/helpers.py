"""Plain helpers of the inbound tests (fixtures are in conftest.py)."""

from __future__ import annotations

import datetime as dt

from cases import services as case_services
from cases.models import OrganisationDomain
from inbound import services
from tests import factories
from tests.inbound.eml import eml, new_message_id

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)  # a Monday
SUPPORT = "support@help.acme.example"


def organisation_with_domains(name: str, *domains: str, tier: str = "business"):
    org = factories.OrganisationFactory(name=name, tier=tier, time_zone="Europe/Berlin")
    for domain in domains:
        OrganisationDomain.objects.create(organisation=org, domain=domain)
    return org


def open_case(requester, *, actor=None, now=T0, title="Login loop after entering the one-time code", **kw):
    return case_services.create_case(
        title=title, organisation=requester.organisation, requester=requester, actor=actor, now=now, **kw
    )


def receive(mailbox, raw: bytes, *, now=T0):
    """Receive ``raw`` as the pipe command does; the InboundMessage, refreshed."""
    record = services.receive(mailbox, raw, now=now, via="pipe").message
    record.refresh_from_db()
    return record


def fresh(name: str, *, ours: str | None = None, **headers):
    """A fixture with a Message-ID of its own (a new mail each call), and ``headers`` (see ``eml``)."""
    headers.setdefault("message_id", new_message_id(name.removesuffix(".eml")))
    return eml(name, ours=ours, **headers)
