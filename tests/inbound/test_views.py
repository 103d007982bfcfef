"""The admins' mail pages (mailboxes, received mail, retry) and the raw .eml download: who may,
what they show, form errors instead of 500s, and the download's headers."""

from __future__ import annotations

import sys
import types

import pytest
from django.core.files.storage import default_storage
from django.urls import reverse

from cases.models import Case
from inbound.models import InboundStatus, Mailbox
from tests.inbound.mail_admin import *  # noqa: F403 (its fixtures)
from tests.inbound.mail_admin import customer_mail, stored_message

pytestmark = pytest.mark.django_db

PASSWORD = "s3cret-imap-password"


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.fixture
def failed(provider_mailbox):
    return stored_message(
        provider_mailbox, status=InboundStatus.FAILED, reason="OperationalError: database is locked"
    )


def page_urls(mailbox, record) -> list[tuple[str, str]]:
    return [
        ("get", reverse("inbound:mailboxes")),
        ("get", reverse("inbound:mailbox-new")),
        ("get", reverse("inbound:mailbox-edit", args=[mailbox.pk])),
        ("post", reverse("inbound:mailbox-new")),
        ("post", reverse("inbound:mailbox-edit", args=[mailbox.pk])),
        ("post", reverse("inbound:mailbox-test", args=[mailbox.pk])),
        ("post", reverse("inbound:mailbox-poll", args=[mailbox.pk])),
        ("get", reverse("inbound:received")),
        ("post", reverse("inbound:retry", args=[record.pk])),
    ]


# --- Who may -----------------------------------------------------------------------------------


def test_anonymous_visitors_are_sent_to_the_login_page(client, imap_mailbox, failed):
    for method, url in page_urls(imap_mailbox, failed):
        response = getattr(client, method)(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("login")), url


def test_staff_who_are_not_admins_are_refused_everywhere(
    client, agent, manager, engineer, imap_mailbox, failed
):
    for user in (agent, manager, engineer):
        client.force_login(user)
        for method, url in page_urls(imap_mailbox, failed):
            assert getattr(client, method)(url).status_code == 403, (user.username, url)
    imap_mailbox.refresh_from_db()
    assert imap_mailbox.imap_password == PASSWORD
    failed.refresh_from_db()
    assert failed.status == InboundStatus.FAILED


def test_the_mail_link_is_in_the_navigation_for_admins_only(client, admin_user, manager):
    client.force_login(manager)
    assert reverse("inbound:mailboxes") not in client.get(reverse("core:status")).content.decode()
    client.force_login(admin_user)
    assert f'href="{reverse("inbound:mailboxes")}"' in client.get(reverse("core:status")).content.decode()


# --- Mailboxes ---------------------------------------------------------------------------------


def test_the_mailbox_list_shows_mode_team_last_poll_and_problem_counts(
    admin_client, imap_mailbox, provider_mailbox, now
):
    Mailbox.objects.filter(pk=imap_mailbox.pk).update(
        last_polled_at=now, last_poll_error="LoginError: authentication failed"
    )
    stored_message(provider_mailbox, status=InboundStatus.FAILED, reason="boom")
    for _ in range(2):
        stored_message(provider_mailbox, status=InboundStatus.REFUSED, reason="rate limit")

    html = admin_client.get(reverse("inbound:mailboxes")).content.decode()

    assert "IMAP polling" in html
    assert "E-mail provider webhook" in html
    assert "Tier 2" in html
    assert "LoginError: authentication failed" in html
    assert (
        f'href="{reverse("inbound:received")}?status=failed&amp;mailbox={provider_mailbox.pk}">1</a>' in html
    )
    assert (
        f'href="{reverse("inbound:received")}?status=refused&amp;mailbox={provider_mailbox.pk}">2</a>' in html
    )
    assert reverse("inbound:mailbox-test", args=[imap_mailbox.pk]) in html
    assert reverse("inbound:mailbox-poll", args=[imap_mailbox.pk]) in html
    assert reverse("inbound:mailbox-test", args=[provider_mailbox.pk]) not in html  # nothing to connect to
    assert PASSWORD not in html


def test_the_mailbox_list_costs_the_same_queries_for_many_mailboxes(
    admin_client, team, django_assert_max_num_queries
):
    for n in range(12):
        mailbox = Mailbox.objects.create(
            name=f"box-{n}", address=f"box-{n}@help.example", mode="pipe", team=team
        )
        stored_message(mailbox, status=InboundStatus.FAILED)
    with django_assert_max_num_queries(8):
        assert admin_client.get(reverse("inbound:mailboxes")).status_code == 200


def test_creating_an_imap_mailbox_in_the_browser(admin_client, team):
    response = admin_client.post(
        reverse("inbound:mailbox-new"),
        {
            "name": "support",
            "address": "Support@Help.Example",
            "display_name": "Example Support",
            "team": team.pk,
            "default_severity": "P3",
            "mode": "imap",
            "is_active": "on",
            "imap_host": "imap.help.example",
            "imap_security": "ssl",
            "imap_username": "support@help.example",
            "imap_password": PASSWORD,
            "imap_folder": "INBOX",
            "processed_folder": "SupportDesk/Processed",
        },
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("inbound:mailboxes")
    mailbox = Mailbox.objects.get()
    assert (mailbox.address, mailbox.team, mailbox.imap_password) == ("support@help.example", team, PASSWORD)


def test_an_incomplete_imap_mailbox_is_a_form_error_keeping_what_was_typed(admin_client):
    response = admin_client.post(
        reverse("inbound:mailbox-new"),
        {
            "name": "support",
            "address": "support@help.example",
            "default_severity": "P3",
            "mode": "imap",
            "imap_security": "ssl",
            "imap_folder": "INBOX",
            "processed_folder": "SupportDesk/Processed",
        },
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert "The mailbox was not saved" in html
    assert "An IMAP mailbox needs the server&#x27;s host name" in html
    assert "An IMAP mailbox needs the user name it logs in with." in html
    assert "An IMAP mailbox needs the password it logs in with." in html
    assert 'value="support@help.example"' in html
    assert not Mailbox.objects.exists()


def test_a_duplicate_address_in_another_case_is_a_form_error(admin_client, provider_mailbox):
    response = admin_client.post(
        reverse("inbound:mailbox-new"),
        {
            "name": "other",
            "address": "SUPPORT@help.example",
            "default_severity": "P3",
            "mode": "pipe",
            "imap_security": "ssl",
            "imap_folder": "INBOX",
            "processed_folder": "Processed",
        },
    )
    assert response.status_code == 400
    assert "Another mailbox already has the address support@help.example." in response.content.decode()
    assert Mailbox.objects.count() == 1


def _edit_data(mailbox: Mailbox, **changes) -> dict:
    data = {
        "name": mailbox.name,
        "address": mailbox.address,
        "display_name": mailbox.display_name,
        "team": mailbox.team_id or "",
        "default_severity": mailbox.default_severity,
        "mode": mailbox.mode,
        "is_active": "on" if mailbox.is_active else "",
        "imap_host": mailbox.imap_host,
        "imap_security": mailbox.imap_security,
        "imap_username": mailbox.imap_username,
        "imap_password": "",
        "imap_folder": mailbox.imap_folder,
        "processed_folder": mailbox.processed_folder,
        "maildir_path": mailbox.maildir_path,
    }
    data.update(changes)
    return data


def test_the_edit_page_never_shows_the_password_and_an_empty_entry_keeps_it(admin_client, imap_mailbox):
    url = reverse("inbound:mailbox-edit", args=[imap_mailbox.pk])
    html = admin_client.get(url).content.decode()
    assert PASSWORD not in html
    assert "A password is stored. Leave empty to keep the stored password." in html

    response = admin_client.post(url, _edit_data(imap_mailbox, display_name="Support desk"))

    assert response.status_code == 302
    imap_mailbox.refresh_from_db()
    assert imap_mailbox.display_name == "Support desk"
    assert imap_mailbox.imap_password == PASSWORD


def test_a_new_password_replaces_the_stored_one(admin_client, imap_mailbox):
    url = reverse("inbound:mailbox-edit", args=[imap_mailbox.pk])
    assert admin_client.post(url, _edit_data(imap_mailbox, imap_password="changed-pw")).status_code == 302
    imap_mailbox.refresh_from_db()
    assert imap_mailbox.imap_password == "changed-pw"


def test_an_invalid_edit_changes_nothing(admin_client, imap_mailbox):
    url = reverse("inbound:mailbox-edit", args=[imap_mailbox.pk])
    response = admin_client.post(url, _edit_data(imap_mailbox, imap_host="", imap_port="99999"))
    assert response.status_code == 400
    html = response.content.decode()
    assert "A port is a number from 1 to 65535" in html or "less than or equal to" in html
    imap_mailbox.refresh_from_db()
    assert imap_mailbox.imap_host == "imap.help.example"


def test_the_provider_form_lists_the_webhook_urls(admin_client, provider_mailbox):
    html = admin_client.get(reverse("inbound:mailbox-edit", args=[provider_mailbox.pk])).content.decode()
    assert "http://testserver/inbound/provider/postmark/inbound/" in html
    assert "http://testserver/inbound/provider/mailgun/inbound_mime/" in html


@pytest.fixture
def fake_imap(monkeypatch):
    module = types.ModuleType("inbound.imap")

    def check_connection(mailbox):
        if mailbox.imap_password != PASSWORD:
            raise ConnectionRefusedError("LOGIN failed")
        return "Logged in; INBOX has 3 messages."

    module.check_connection = check_connection
    monkeypatch.setitem(sys.modules, "inbound.imap", module)


def test_test_connection_button_says_what_happened(admin_client, imap_mailbox, fake_imap):
    url = reverse("inbound:mailbox-test", args=[imap_mailbox.pk])
    assert admin_client.get(url).status_code == 405
    page = admin_client.post(url, follow=True).content.decode()
    assert "imap-support: Logged in; INBOX has 3 messages." in page

    Mailbox.objects.filter(pk=imap_mailbox.pk).update(imap_password="wrong")
    page = admin_client.post(url, follow=True).content.decode()
    assert "the connection failed. ConnectionRefusedError: LOGIN failed" in page


def test_test_connection_without_imap_support_says_it_is_not_installed(
    admin_client, imap_mailbox, monkeypatch
):
    monkeypatch.setitem(sys.modules, "inbound.imap", None)
    page = admin_client.post(
        reverse("inbound:mailbox-test", args=[imap_mailbox.pk]), follow=True
    ).content.decode()
    assert "IMAP support is not installed" in page


def test_poll_now_button_queues_a_poll(
    admin_client, imap_mailbox, provider_mailbox, monkeypatch, django_capture_on_commit_callbacks
):
    from inbound import tasks

    sent = []
    monkeypatch.setattr(tasks.poll_mailbox, "delay", sent.append)
    with django_capture_on_commit_callbacks(execute=True):
        page = admin_client.post(reverse("inbound:mailbox-poll", args=[imap_mailbox.pk]), follow=True)
    assert "A poll of imap-support is queued" in page.content.decode()
    assert sent == [imap_mailbox.pk]

    page = admin_client.post(reverse("inbound:mailbox-poll", args=[provider_mailbox.pk]), follow=True)
    assert "nothing to poll" in page.content.decode()
    assert sent == [imap_mailbox.pk]


# --- Received mail -----------------------------------------------------------------------------


def test_received_mail_lists_what_needs_attention_with_reason_case_eml_and_retry(
    admin_client, provider_mailbox, failed, new_case
):
    refused = stored_message(
        provider_mailbox,
        status=InboundStatus.REFUSED,
        reason="carla@acme.example sent more than 30 mails in an hour (rate limit).",
    )
    ignored = stored_message(
        provider_mailbox,
        status=InboundStatus.IGNORED,
        reason="Sent automatically (Auto-Submitted: auto-replied); not answered.",
        case_id=new_case.pk,
    )
    ingested = stored_message(provider_mailbox, status=InboundStatus.INGESTED, case_id=new_case.pk)

    html = admin_client.get(reverse("inbound:received")).content.decode()

    for record in (failed, refused, ignored):
        assert f'id="message-{record.pk}"' in html
        assert reverse("inbound:raw", args=[record.pk]) in html
    assert f'id="message-{ingested.pk}"' not in html
    assert "OperationalError: database is locked" in html
    assert "(rate limit)" in html
    assert f'href="{reverse("cases:detail", args=[new_case.key])}"' in html
    assert reverse("inbound:retry", args=[failed.pk]) in html
    assert reverse("inbound:retry", args=[refused.pk]) not in html


def test_received_mail_filters_by_status_and_mailbox(admin_client, provider_mailbox, imap_mailbox, failed):
    refused = stored_message(imap_mailbox, status=InboundStatus.REFUSED, reason="too big")
    url = reverse("inbound:received")
    only_refused = admin_client.get(url, {"status": "refused"}).content.decode()
    assert f'id="message-{refused.pk}"' in only_refused
    assert f'id="message-{failed.pk}"' not in only_refused
    by_mailbox = admin_client.get(url, {"mailbox": provider_mailbox.pk}).content.decode()
    assert f'id="message-{failed.pk}"' in by_mailbox
    assert f'id="message-{refused.pk}"' not in by_mailbox


@pytest.mark.parametrize("query", [{"status": "nonsense"}, {"mailbox": "abc"}, {"cursor": "not-a-cursor"}])
def test_bad_filters_and_page_links_are_a_warning_not_an_error(admin_client, failed, query):
    response = admin_client.get(reverse("inbound:received"), query)
    assert response.status_code == 200
    assert f'id="message-{failed.pk}"' in response.content.decode()
    assert "not" in response.content.decode()  # "not understood" / "not valid"


def test_received_mail_pages_with_a_constant_number_of_queries(
    admin_client, provider_mailbox, django_assert_max_num_queries, settings
):
    for _ in range(60):
        stored_message(provider_mailbox, status=InboundStatus.FAILED, reason="boom")
    with django_assert_max_num_queries(8):
        response = admin_client.get(reverse("inbound:received"))
    assert "Older →" in response.content.decode()
    assert response.content.decode().count('id="message-') == 50


def test_retry_button_puts_a_failed_mail_on_a_case_and_returns_to_the_list(admin_client, failed):
    back = reverse("inbound:received") + "?status=failed"
    response = admin_client.post(reverse("inbound:retry", args=[failed.pk]), {"next": back})

    assert response.status_code == 302
    assert response["Location"] == back
    failed.refresh_from_db()
    assert failed.status == InboundStatus.INGESTED
    case = Case.objects.get(pk=failed.case_id)
    page = admin_client.get(back).content.decode()
    assert f"is now on {case.key}" in page


def test_retry_never_redirects_off_site(admin_client, failed):
    response = admin_client.post(
        reverse("inbound:retry", args=[failed.pk]), {"next": "https://evil.example/"}
    )
    assert response["Location"] == reverse("inbound:received")


def test_retry_of_an_ingested_mail_is_refused_with_a_message(admin_client, provider_mailbox):
    record = stored_message(provider_mailbox, status=InboundStatus.INGESTED)
    page = admin_client.post(reverse("inbound:retry", args=[record.pk]), follow=True).content.decode()
    assert "Only failed mails can be retried" in page


# --- The raw .eml ------------------------------------------------------------------------------


def test_the_raw_download_is_an_attachment_of_type_message_rfc822(admin_client, failed):
    response = admin_client.get(reverse("inbound:raw", args=[failed.pk]))

    assert response.status_code == 200
    assert response["Content-Type"] == "message/rfc822"
    assert response["Content-Disposition"] == f'attachment; filename="mail-{failed.pk}.eml"'
    assert response["X-Content-Type-Options"] == "nosniff"
    assert b"".join(response.streaming_content) == default_storage.open(failed.raw.name).read()


def test_the_file_name_carries_the_case_key(admin_client, provider_mailbox, new_case):
    record = stored_message(provider_mailbox, status=InboundStatus.INGESTED, case_id=new_case.pk)
    response = admin_client.get(reverse("inbound:raw", args=[record.pk]))
    assert response["Content-Disposition"] == f'attachment; filename="{new_case.key}-{record.pk}.eml"'


def test_agents_may_download_the_mail_of_a_case_but_not_mail_on_no_case(
    client, agent, provider_mailbox, new_case
):
    on_case = stored_message(provider_mailbox, status=InboundStatus.INGESTED, case_id=new_case.pk)
    on_no_case = stored_message(provider_mailbox, status=InboundStatus.REFUSED, reason="unknown sender")
    client.force_login(agent)
    assert client.get(reverse("inbound:raw", args=[on_case.pk])).status_code == 200
    assert client.get(reverse("inbound:raw", args=[on_no_case.pk])).status_code == 403


def test_engineers_and_anonymous_visitors_may_not_download_mail(client, engineer, provider_mailbox, new_case):
    record = stored_message(provider_mailbox, status=InboundStatus.INGESTED, case_id=new_case.pk)
    url = reverse("inbound:raw", args=[record.pk])
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    client.force_login(engineer)
    assert client.get(url).status_code == 403


def test_a_missing_mail_or_file_is_a_404(admin_client, failed):
    default_storage.delete(failed.raw.name)
    assert admin_client.get(reverse("inbound:raw", args=[failed.pk])).status_code == 404
    assert admin_client.get(reverse("inbound:raw", args=[99999])).status_code == 404


def test_a_raw_download_of_an_html_mail_is_never_rendered(admin_client, provider_mailbox):
    raw = customer_mail(body="<script>alert(1)</script>")
    record = stored_message(provider_mailbox, status=InboundStatus.FAILED, raw=raw)
    response = admin_client.get(reverse("inbound:raw", args=[record.pk]))
    assert response["Content-Disposition"].startswith("attachment;")
    assert "sandbox" in response["Content-Security-Policy"]


def test_the_raw_download_follows_the_cases_rule_for_who_may_see_a_case(
    client, agent, provider_mailbox, new_case, monkeypatch
):
    record = stored_message(provider_mailbox, status=InboundStatus.INGESTED, case_id=new_case.pk)
    # Today every agent sees every case; the download must follow the rule if it narrows
    # (e.g. agents per organisation).
    monkeypatch.setattr("inbound.mailboxes.can_see_case", lambda user, case: case.pk != new_case.pk)
    client.force_login(agent)
    assert client.get(reverse("inbound:raw", args=[record.pk])).status_code == 403
