"""Organisations and contacts change only through ``cases.organisations``: the rules checked once,
the change on the audit trail, and a tier change announced (the metrics rollup listens)."""

from __future__ import annotations

import contextlib

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from cases import organisations
from cases.models import Contact, Organisation
from cases.signals import organisation_changed
from supportdesk.core.errors import DomainError
from tests.factories import at

pytestmark = pytest.mark.django_db

NOW = at(2025, 4, 1, 12, 0)


@contextlib.contextmanager
def announced():
    """The ``changes`` of every ``organisation_changed`` sent inside the block."""
    heard: list[dict] = []

    def listener(sender, *, changes, **kwargs):
        heard.append(changes)

    organisation_changed.connect(listener, dispatch_uid="tests.announced")
    try:
        yield heard
    finally:
        organisation_changed.disconnect(dispatch_uid="tests.announced")


def _latest_record(organisation: Organisation):
    return organisation.history.order_by("-history_id").first()


def test_a_new_organisation_is_recorded_with_its_author(manager):
    globex = organisations.create_organisation(
        name="  Globex ", tier="business", time_zone="Europe/Paris", actor=manager, now=NOW
    )
    assert globex.name == "Globex"
    record = globex.history.get()
    assert (record.history_type, record.history_user_id, record.tier) == ("+", manager.pk, "business")


def test_a_tier_change_is_recorded_and_announced_once(manager, organisation):
    with announced() as heard:
        organisations.update_organisation(organisation, tier="business", actor=manager, now=NOW)
        organisations.update_organisation(
            organisation, tier="business", name="Acme Corp", actor=manager, now=NOW
        )
    assert heard == [{"tier": ("enterprise", "business")}]
    record = _latest_record(organisation)
    assert (record.history_type, record.history_user_id, record.tier) == ("~", manager.pk, "business")
    assert organisation.history.filter(history_type="~").count() == 1  # the unchanged save wrote nothing


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"name": "acme corp"}, "name"),  # another organisation's name, in other letters
        ({"name": "  "}, "name"),
        ({"tier": "gold"}, "tier"),
        ({"time_zone": "Mars/Olympus_Mons"}, "time_zone"),
    ],
)
def test_bad_organisation_values_are_refused_with_their_field(manager, organisation, values, field):
    globex = organisations.create_organisation(name="Globex", actor=manager, now=NOW)
    with announced() as heard, pytest.raises(DomainError) as refused:
        organisations.update_organisation(globex, actor=manager, now=NOW, **values)
    assert refused.value.field == field
    assert heard == []
    globex.refresh_from_db()
    assert (globex.name, globex.tier, globex.time_zone) == ("Globex", "standard", "UTC")


def test_a_contact_stays_with_its_organisation_and_its_address_is_unique_there(agent, organisation, contact):
    globex = organisations.create_organisation(name="Globex", actor=None, now=NOW)
    with pytest.raises(DomainError) as refused:
        organisations.update_contact(contact, organisation=globex, actor=agent)
    assert refused.value.field == "organisation"
    with pytest.raises(DomainError) as refused:
        organisations.create_contact(
            organisation=organisation, name="Carla Again", email="CARLA@acme.example", actor=agent
        )
    assert refused.value.field == "email"
    assert "Acme Corp" in refused.value.message
    # The same address at another organisation is another person record.
    organisations.create_contact(organisation=globex, name="Carla", email="carla@acme.example", actor=agent)
    renamed = organisations.update_contact(contact, name=" Carla C. ", actor=agent)
    assert (renamed.name, renamed.organisation_id) == ("Carla C.", organisation.pk)


def test_the_api_changes_a_tier_through_the_service(manager, organisation):
    client = APIClient()
    client.force_authenticate(manager)
    with announced() as heard:
        response = client.patch(f"/api/organisations/{organisation.pk}/", {"tier": "business"}, format="json")
    assert response.status_code == 200, response.json()
    assert heard == [{"tier": ("enterprise", "business")}]
    assert _latest_record(organisation).history_user_id == manager.pk
    clash = client.post("/api/organisations/", {"name": "ACME CORP"}, format="json")
    assert clash.status_code == 400
    assert "already an organisation" in clash.json()["name"][0]


def _organisation_form(name: str, tier: str, time_zone: str = "UTC", *domains: str) -> dict:
    data = {
        "name": name,
        "tier": tier,
        "time_zone": time_zone,
        "email_domains-TOTAL_FORMS": str(len(domains)),
        "email_domains-INITIAL_FORMS": "0",
        "email_domains-MIN_NUM_FORMS": "0",
        "email_domains-MAX_NUM_FORMS": "1000",
    }
    for i, domain in enumerate(domains):
        data[f"email_domains-{i}-domain"] = domain
    return data


def test_the_admin_changes_a_tier_through_the_service(admin_client, admin_user, organisation):
    url = reverse("admin:cases_organisation_change", args=[organisation.pk])
    with announced() as heard:
        response = admin_client.post(url, _organisation_form("Acme Corp", "standard", "Europe/Berlin"))
    assert response.status_code == 302, response.content.decode()[:2000]
    assert heard == [{"tier": ("enterprise", "standard")}]
    assert _latest_record(organisation).history_user_id == admin_user.pk


def test_the_admin_adds_an_organisation_with_its_domains_and_refuses_a_taken_name(admin_client, organisation):
    add = reverse("admin:cases_organisation_add")
    taken = admin_client.post(add, _organisation_form("ACME corp", "business"))
    assert taken.status_code == 200
    assert "There is already an organisation called" in taken.content.decode()
    response = admin_client.post(add, _organisation_form("Globex", "business", "UTC", "globex.example"))
    assert response.status_code == 302, response.content.decode()[:2000]
    globex = Organisation.objects.get(name="Globex")
    assert list(globex.email_domains.values_list("domain", flat=True)) == ["globex.example"]


def test_the_admin_adds_and_renames_contacts_through_the_service(admin_client, organisation, contact):
    add = reverse("admin:cases_contact_add")
    taken = admin_client.post(
        add, {"organisation": organisation.pk, "name": "C", "email": "Carla@Acme.example"}
    )
    assert taken.status_code == 200
    assert "already has a contact with this address" in taken.content.decode()
    added = admin_client.post(
        add, {"organisation": organisation.pk, "name": " Dan ", "email": "dan@acme.example"}
    )
    assert added.status_code == 302
    assert Contact.objects.get(email="dan@acme.example").name == "Dan"
    change = reverse("admin:cases_contact_change", args=[contact.pk])
    renamed = admin_client.post(change, {"name": "Carla Customer-Smith", "email": "carla@acme.example"})
    assert renamed.status_code == 302
    contact.refresh_from_db()
    assert (contact.name, contact.organisation_id) == ("Carla Customer-Smith", organisation.pk)
