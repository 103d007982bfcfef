"""The Django admin of mail: mailboxes (password never shown, the same rules as the pages), received
mail read-only with a retry and the .eml, and organisations' e-mail domains inline."""

from __future__ import annotations

import sys
import types

import pytest
from django.urls import reverse

from cases.models import Case, OrganisationDomain
from inbound.models import InboundMessage, InboundStatus, Mailbox
from tests.inbound.mail_admin import *  # noqa: F403 (its fixtures)
from tests.inbound.mail_admin import stored_message

pytestmark = pytest.mark.django_db

PASSWORD = "s3cret-imap-password"


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


def _change_data(mailbox: Mailbox, **changes) -> dict:
    data = {
        "name": mailbox.name,
        "address": mailbox.address,
        "display_name": mailbox.display_name,
        "is_active": "on" if mailbox.is_active else "",
        "team": mailbox.team_id or "",
        "default_severity": mailbox.default_severity,
        "default_organisation": "",
        "mode": mailbox.mode,
        "imap_host": mailbox.imap_host,
        "imap_port": "",
        "imap_security": mailbox.imap_security,
        "imap_username": mailbox.imap_username,
        "imap_password": "",
        "imap_folder": mailbox.imap_folder,
        "processed_folder": mailbox.processed_folder,
        "maildir_path": mailbox.maildir_path,
    }
    data.update(changes)
    return data


# --- Mailboxes ---------------------------------------------------------------------------------


def test_the_mailbox_change_page_never_shows_the_password(admin_client, imap_mailbox):
    response = admin_client.get(reverse("admin:inbound_mailbox_change", args=[imap_mailbox.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="imap_password"' in html
    assert PASSWORD not in html


def test_saving_in_the_admin_with_an_empty_password_keeps_it(admin_client, imap_mailbox):
    url = reverse("admin:inbound_mailbox_change", args=[imap_mailbox.pk])
    response = admin_client.post(url, _change_data(imap_mailbox, display_name="Support desk"))
    assert response.status_code == 302, response.content.decode()[:2000]
    imap_mailbox.refresh_from_db()
    assert imap_mailbox.display_name == "Support desk"
    assert imap_mailbox.imap_password == PASSWORD


def test_a_new_password_in_the_admin_replaces_it(admin_client, imap_mailbox):
    url = reverse("admin:inbound_mailbox_change", args=[imap_mailbox.pk])
    assert admin_client.post(url, _change_data(imap_mailbox, imap_password="rotated")).status_code == 302
    imap_mailbox.refresh_from_db()
    assert imap_mailbox.imap_password == "rotated"


def test_the_admin_applies_the_mailbox_rules(admin_client, imap_mailbox):
    body = _change_data(imap_mailbox, name="second", address="IMAP@help.example", imap_host="")
    response = admin_client.post(reverse("admin:inbound_mailbox_add"), body)
    assert response.status_code == 200  # the form again, with its errors
    html = response.content.decode()
    assert "Another mailbox already has the address imap@help.example." in html
    assert "An IMAP mailbox needs the server" in html
    assert Mailbox.objects.count() == 1


def test_a_mailbox_with_mail_cannot_be_deleted_in_the_admin(admin_client, provider_mailbox):
    stored_message(provider_mailbox, status=InboundStatus.INGESTED)
    response = admin_client.get(reverse("admin:inbound_mailbox_delete", args=[provider_mailbox.pk]))
    assert response.status_code == 403
    assert Mailbox.objects.filter(pk=provider_mailbox.pk).exists()


def test_the_admin_actions_test_the_connection_and_poll(
    admin_client, imap_mailbox, monkeypatch, django_capture_on_commit_callbacks
):
    from inbound import tasks

    module = types.ModuleType("inbound.imap")
    module.check_connection = lambda mailbox: "Logged in."
    monkeypatch.setitem(sys.modules, "inbound.imap", module)
    sent = []
    monkeypatch.setattr(tasks.poll_mailbox, "delay", sent.append)
    url = reverse("admin:inbound_mailbox_changelist")

    page = admin_client.post(
        url, {"action": "test_connection", "_selected_action": [imap_mailbox.pk]}, follow=True
    ).content.decode()
    assert "Imap-support: Logged in." in page  # (the admin capitalises its messages)
    with django_capture_on_commit_callbacks(execute=True):
        page = admin_client.post(
            url, {"action": "poll_now", "_selected_action": [imap_mailbox.pk]}, follow=True
        ).content.decode()
    assert "A poll of imap-support is queued." in page
    assert sent == [imap_mailbox.pk]


# --- Received mail -----------------------------------------------------------------------------


def test_received_mail_is_listed_with_filters_a_case_link_and_the_eml(
    admin_client, provider_mailbox, new_case
):
    record = stored_message(provider_mailbox, status=InboundStatus.INGESTED, case_id=new_case.pk)
    response = admin_client.get(
        reverse("admin:inbound_inboundmessage_changelist"), {"status__exact": "ingested"}
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert reverse("cases:detail", args=[new_case.key]) in html
    assert reverse("inbound:raw", args=[record.pk]) in html


def test_a_received_mail_is_read_only_and_never_deleted(admin_client, provider_mailbox):
    record = stored_message(provider_mailbox, status=InboundStatus.FAILED, reason="boom")
    change = reverse("admin:inbound_inboundmessage_change", args=[record.pk])
    page = admin_client.get(change)
    assert page.status_code == 200
    assert 'name="status"' not in page.content.decode()  # shown, not editable
    assert admin_client.post(change, {"status": "ingested"}).status_code == 403
    assert admin_client.get(reverse("admin:inbound_inboundmessage_add")).status_code == 403
    assert (
        admin_client.get(reverse("admin:inbound_inboundmessage_delete", args=[record.pk])).status_code == 403
    )
    record.refresh_from_db()
    assert record.status == InboundStatus.FAILED


def test_the_retry_action_processes_failed_mail_and_leaves_the_rest(admin_client, provider_mailbox):
    failed = stored_message(provider_mailbox, status=InboundStatus.FAILED, reason="boom")
    refused = stored_message(provider_mailbox, status=InboundStatus.REFUSED, reason="rate limit")

    page = admin_client.post(
        reverse("admin:inbound_inboundmessage_changelist"),
        {"action": "retry", "_selected_action": [failed.pk, refused.pk]},
        follow=True,
    ).content.decode()

    assert "1 mail(s) processed again." in page
    assert "1 not failed, left as they are." in page
    assert InboundMessage.objects.get(pk=failed.pk).status == InboundStatus.INGESTED
    assert InboundMessage.objects.get(pk=refused.pk).status == InboundStatus.REFUSED
    assert Case.objects.count() == 1


# --- Organisations' e-mail domains ---------------------------------------------------------------


def _organisation_data(organisation, *domains: str, existing: list[OrganisationDomain] = ()) -> dict:
    data = {
        "name": organisation.name,
        "tier": organisation.tier,
        "time_zone": organisation.time_zone,
        "email_domains-TOTAL_FORMS": str(len(existing) + len(domains)),
        "email_domains-INITIAL_FORMS": str(len(existing)),
        "email_domains-MIN_NUM_FORMS": "0",
        "email_domains-MAX_NUM_FORMS": "1000",
    }
    for i, row in enumerate(existing):
        data[f"email_domains-{i}-id"] = str(row.pk)
        data[f"email_domains-{i}-organisation"] = str(organisation.pk)
        data[f"email_domains-{i}-domain"] = row.domain
    for j, domain in enumerate(domains, start=len(existing)):
        data[f"email_domains-{j}-organisation"] = str(organisation.pk)
        data[f"email_domains-{j}-domain"] = domain
    return data


def test_an_organisation_gets_e_mail_domains_inline(admin_client, organisation):
    url = reverse("admin:cases_organisation_change", args=[organisation.pk])
    assert "E-mail domains" in admin_client.get(url).content.decode()

    response = admin_client.post(url, _organisation_data(organisation, " @Acme.Example. "))

    assert response.status_code == 302, response.content.decode()[:3000]
    assert list(organisation.email_domains.values_list("domain", flat=True)) == ["acme.example"]
    listing = admin_client.get(reverse("admin:cases_organisation_changelist")).content.decode()
    assert "acme.example" in listing


@pytest.mark.parametrize(
    ("domain", "message"),
    [
        ("ACME.example", "already exists"),
        ("not a domain.example", "Give a domain"),
        ("localhost", "full domain"),
    ],
)
def test_bad_or_taken_domains_are_form_errors_not_server_errors(
    admin_client, organisation, acme_domain, domain, message
):
    other = type(organisation).objects.create(name="Other Org")
    response = admin_client.post(
        reverse("admin:cases_organisation_change", args=[other.pk]), _organisation_data(other, domain)
    )
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not other.email_domains.exists()
