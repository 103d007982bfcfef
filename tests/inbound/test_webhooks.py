"""The providers' inbound webhooks (django-anymail) through Django's test client, with real payload
shapes: a valid delivery becomes a case, a bad signature or secret records nothing, a mail for no
mailbox is kept as refused, and every failure is answered in words (never a 500)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from cases.models import Case, CaseAttachment
from inbound.models import InboundMessage, InboundStatus, Mailbox, MailboxMode
from tests.inbound.mail_admin import *  # noqa: F403 (its fixtures)
from tests.inbound.mail_admin import customer_mail

MAILGUN_KEY = "key-mailgun-signing-for-tests"
SECRET = "provider:webhook-secret-for-tests"
MAILGUN_URL = "/inbound/provider/mailgun/inbound/"
MAILGUN_MIME_URL = "/inbound/provider/mailgun/inbound_mime/"
POSTMARK_URL = "/inbound/provider/postmark/inbound/"
SES_URL = "/inbound/provider/amazon_ses/inbound/"

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def anymail_settings(settings):
    settings.ANYMAIL = {"WEBHOOK_SECRET": [SECRET], "MAILGUN_WEBHOOK_SIGNING_KEY": MAILGUN_KEY}
    return settings.ANYMAIL


def basic_auth(credentials: str = SECRET) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(credentials.encode()).decode()}


def mailgun_signature(key: str = MAILGUN_KEY) -> dict[str, str]:
    timestamp, token = str(int(time.time())), uuid.uuid4().hex
    signature = hmac.new(key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()
    return {"timestamp": timestamp, "token": token, "signature": signature}


def mailgun_parsed(*, recipient="support@help.example", message_id="<mg-1@acme.example>", **extra) -> dict:
    """Mailgun's forward() of a route, fully parsed (what its inbound URL without "mime" receives)."""
    headers = [
        ["From", "Carla Customer <carla@acme.example>"],
        ["To", recipient],
        ["Subject", "Checkout is down"],
        ["Message-Id", message_id],
        ["Date", "Mon, 02 Mar 2026 09:30:00 +0000"],
        ["Content-Type", 'multipart/mixed; boundary="b1"'],
    ]
    return {
        "recipient": recipient,
        "sender": "carla@acme.example",
        "from": "Carla Customer <carla@acme.example>",
        "subject": "Checkout is down",
        "body-plain": "Every checkout fails with a 502 since 09:00.\n\nCarla",
        "stripped-text": "Every checkout fails with a 502 since 09:00.",
        "message-headers": json.dumps(headers),
        **mailgun_signature(),
        **extra,
    }


def postmark_payload(*, to="support@help.example", message_id="<pm-1@acme.example>", **extra) -> dict:
    """Postmark's inbound webhook JSON (without RawEmail, as most accounts send it)."""
    return {
        "FromName": "Carla Customer",
        "From": "carla@acme.example",
        "FromFull": {"Email": "carla@acme.example", "Name": "Carla Customer", "MailboxHash": ""},
        "To": to,
        "ToFull": [{"Email": to, "Name": "", "MailboxHash": ""}],
        "Cc": "",
        "CcFull": [],
        "OriginalRecipient": to,
        "Subject": "Invoices page is slow",
        "MessageID": str(uuid.uuid4()),
        "Date": "Mon, 2 Mar 2026 09:30:00 +0000",
        "TextBody": "The invoices page takes 40 seconds to load.\n\nCarla",
        "HtmlBody": "<p>The invoices page takes 40 seconds to load.</p><p>Carla</p>",
        "StrippedTextReply": "",
        "Headers": [
            {"Name": "Return-Path", "Value": "<carla@acme.example>"},
            {"Name": "Message-ID", "Value": message_id},
        ],
        "Attachments": [],
        **extra,
    }


def post_postmark(client, payload: dict, **headers):
    return client.post(POSTMARK_URL, data=json.dumps(payload), content_type="application/json", **headers)


# --- Mailgun ---------------------------------------------------------------------------------------


def test_mailgun_delivery_with_a_valid_signature_opens_a_case_on_the_mailboxes_team(client, provider_mailbox):
    data = mailgun_parsed()
    data["attachment-count"] = "1"
    data["attachment-1"] = SimpleUploadedFile("checkout.log", b"502 Bad Gateway\n" * 3, "text/plain")

    response = client.post(MAILGUN_URL, data=data, **basic_auth())

    assert response.status_code == 200
    record = InboundMessage.objects.get()
    assert (record.mailbox, record.via, record.status) == (
        provider_mailbox,
        "provider",
        InboundStatus.INGESTED,
    )
    assert record.message_id == "<mg-1@acme.example>"
    case = Case.objects.get(pk=record.case_id)
    assert case.title == "Checkout is down"
    assert case.team == provider_mailbox.team
    assert case.requester.email == "carla@acme.example"
    assert CaseAttachment.objects.filter(case=case, name="checkout.log").exists()
    assert b"Checkout is down" in record.raw.read()


def test_mailgun_delivery_with_a_wrong_signature_is_refused_and_records_nothing(client, provider_mailbox):
    data = mailgun_parsed()
    data["signature"] = "0" * 64

    response = client.post(MAILGUN_URL, data=data, **basic_auth())

    assert response.status_code == 400
    assert b"signature" in response.content
    assert not InboundMessage.objects.exists()
    assert not Case.objects.exists()


def test_mailgun_signed_with_another_key_is_refused(client, provider_mailbox):
    data = {**mailgun_parsed(), **mailgun_signature("someone-elses-key")}
    assert client.post(MAILGUN_URL, data=data, **basic_auth()).status_code == 400
    assert not InboundMessage.objects.exists()


def test_mailgun_with_a_valid_signature_still_needs_the_shared_secret_when_one_is_set(
    client, provider_mailbox
):
    assert client.post(MAILGUN_URL, data=mailgun_parsed()).status_code == 400
    assert not InboundMessage.objects.exists()


def test_mailgun_signature_alone_is_enough_without_a_shared_secret(client, provider_mailbox, settings):
    settings.ANYMAIL = {"MAILGUN_WEBHOOK_SIGNING_KEY": MAILGUN_KEY}
    assert client.post(MAILGUN_URL, data=mailgun_parsed()).status_code == 200
    assert InboundMessage.objects.get().status == InboundStatus.INGESTED


def test_mailgun_raw_mime_larger_than_django_upload_limit_is_still_read(client, provider_mailbox, settings):
    # The whole mail arrives as one form field; Django's 2.5 MB field limit (here 2 KB) must not
    # turn it away: the endpoint has its own bound.
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2048
    raw = customer_mail(
        body="A long log excerpt:\n" + "GET /checkout 502\n" * 400, message_id="<raw-1@acme.example>"
    )
    assert len(raw) > 4096

    response = client.post(
        MAILGUN_MIME_URL,
        data={"recipient": "support@help.example", "body-mime": raw.decode(), **mailgun_signature()},
        **basic_auth(),
    )

    assert response.status_code == 200
    record = InboundMessage.objects.get()
    assert record.status == InboundStatus.INGESTED
    assert record.message_id == "<raw-1@acme.example>"


def test_mailgun_endpoint_without_its_signing_key_answers_503_and_records_nothing(
    client, provider_mailbox, settings
):
    settings.ANYMAIL = {"WEBHOOK_SECRET": [SECRET]}
    response = client.post(MAILGUN_URL, data=mailgun_parsed(), **basic_auth())
    assert response.status_code == 503
    assert b"not configured" in response.content
    assert not InboundMessage.objects.exists()


def test_mailgun_tracking_event_posted_to_the_inbound_url_is_a_clear_400(client, provider_mailbox):
    response = client.post(MAILGUN_URL, data={**mailgun_parsed(), "event": "delivered"}, **basic_auth())
    assert response.status_code == 400
    assert b"tracking" in response.content
    assert not InboundMessage.objects.exists()


# --- Postmark (basic auth: the shared webhook secret) ------------------------------------------


def test_postmark_delivery_with_the_secret_opens_a_case(client, provider_mailbox):
    response = post_postmark(client, postmark_payload(), **basic_auth())

    assert response.status_code == 200
    record = InboundMessage.objects.get()
    assert record.status == InboundStatus.INGESTED, record.reason
    assert Case.objects.get(pk=record.case_id).title == "Invoices page is slow"


@pytest.mark.parametrize("headers", [{}, basic_auth("provider:wrong-password")], ids=["none", "wrong"])
def test_postmark_without_the_right_secret_is_refused_and_records_nothing(client, provider_mailbox, headers):
    response = post_postmark(client, postmark_payload(), **headers)
    assert response.status_code == 400
    assert not InboundMessage.objects.exists()


def test_endpoints_refuse_everything_while_no_secret_is_configured(client, provider_mailbox, settings):
    settings.ANYMAIL = {}
    response = post_postmark(client, postmark_payload())
    assert response.status_code == 503
    assert b"not configured" in response.content
    assert not InboundMessage.objects.exists()


def test_sub_address_of_a_mailbox_is_that_mailbox(client, provider_mailbox):
    payload = postmark_payload(to="Support+Billing@Help.Example")
    assert post_postmark(client, payload, **basic_auth()).status_code == 200
    assert InboundMessage.objects.get().mailbox == provider_mailbox


def test_the_mailbox_in_cc_is_found_when_the_envelope_names_another(client, provider_mailbox):
    payload = postmark_payload(to="someone@elsewhere.example")
    payload["CcFull"] = [{"Email": "support@help.example", "Name": "Support"}]
    payload["OriginalRecipient"] = ""
    assert post_postmark(client, payload, **basic_auth()).status_code == 200
    assert InboundMessage.objects.get().mailbox == provider_mailbox


def test_the_same_delivery_twice_is_recorded_once(client, provider_mailbox):
    payload = postmark_payload()
    assert post_postmark(client, payload, **basic_auth()).status_code == 200
    assert post_postmark(client, payload, **basic_auth()).status_code == 200
    assert InboundMessage.objects.count() == 1
    assert Case.objects.count() == 1


def test_a_mail_for_no_mailbox_is_kept_as_refused_on_the_fallback_mailbox(client, provider_mailbox, team):
    imap = Mailbox.objects.create(
        name="sales", address="sales@help.example", mode=MailboxMode.IMAP, imap_host="x", imap_username="y"
    )
    payload = postmark_payload(to=imap.address, message_id="<lost-1@acme.example>")

    response = post_postmark(client, payload, **basic_auth())

    assert response.status_code == 200  # so that the provider does not send it again
    record = InboundMessage.objects.get()
    assert record.mailbox == provider_mailbox
    assert record.status == InboundStatus.REFUSED
    assert "sales@help.example" in record.reason
    assert "mailbox sales" in record.reason
    assert "IMAP" in record.reason
    assert record.case_id is None
    assert not Case.objects.exists()
    assert b"Invoices page is slow" in record.raw.read()


def test_the_same_mail_for_an_unknown_and_a_known_address_still_reaches_its_case(client, provider_mailbox):
    # The provider posts once per recipient: first the unknown one, then support@ (a Bcc).
    unknown = postmark_payload(to="sales@help.example", message_id="<both-1@acme.example>")
    known = {**unknown, "OriginalRecipient": "support@help.example"}

    assert post_postmark(client, unknown, **basic_auth()).status_code == 200
    assert post_postmark(client, known, **basic_auth()).status_code == 200
    assert post_postmark(client, unknown, **basic_auth()).status_code == 200  # a provider's retry

    statuses = dict(InboundMessage.objects.values_list("message_id", "status"))
    assert statuses == {
        "<both-1@acme.example>#unrouted": InboundStatus.REFUSED,
        "<both-1@acme.example>": InboundStatus.INGESTED,
    }
    assert Case.objects.count() == 1


def test_a_known_delivery_first_keeps_nothing_more_for_the_unknown_address(client, provider_mailbox):
    known = postmark_payload(to="sales@help.example", message_id="<both-2@acme.example>")
    known["OriginalRecipient"] = "support@help.example"
    unknown = {**known, "OriginalRecipient": "sales@help.example"}

    assert post_postmark(client, known, **basic_auth()).status_code == 200
    assert post_postmark(client, unknown, **basic_auth()).status_code == 200

    assert InboundMessage.objects.get().status == InboundStatus.INGESTED


def test_an_inactive_provider_mailbox_does_not_ingest(client, provider_mailbox):
    Mailbox.objects.filter(pk=provider_mailbox.pk).update(is_active=False)
    assert post_postmark(client, postmark_payload(), **basic_auth()).status_code == 200
    record = InboundMessage.objects.get()
    assert record.status == InboundStatus.REFUSED
    assert "not active" in record.reason
    assert not Case.objects.exists()


def test_without_any_provider_mailbox_the_provider_is_asked_to_retry(client, acme_domain):
    response = post_postmark(client, postmark_payload(), **basic_auth())
    assert response.status_code == 503
    assert response["Retry-After"]
    assert b"provider-webhook mode" in response.content
    assert not InboundMessage.objects.exists()


def test_a_storage_failure_is_a_503_and_keeps_nothing_half_written(client, provider_mailbox, monkeypatch):
    from django.core.files.storage import default_storage

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(default_storage, "save", broken)
    response = post_postmark(client, postmark_payload(), **basic_auth())
    assert response.status_code == 503
    assert response["Retry-After"]
    assert not InboundMessage.objects.exists()


def test_malformed_json_is_a_clear_400(client, provider_mailbox):
    response = client.post(POSTMARK_URL, data="{not json", content_type="application/json", **basic_auth())
    assert response.status_code == 400
    assert b"cannot be read" in response.content
    assert not InboundMessage.objects.exists()


def test_a_postmark_delivery_notification_at_the_inbound_url_is_a_clear_400(client, provider_mailbox):
    response = post_postmark(client, postmark_payload(RecordType="Delivery"), **basic_auth())
    assert response.status_code == 400
    assert not InboundMessage.objects.exists()


def test_a_request_above_the_webhook_bound_is_413_before_it_is_read(client, provider_mailbox, settings):
    settings.INBOUND_WEBHOOK_MAX_BYTES = 1000
    payload = postmark_payload(TextBody="x" * 2000)
    response = post_postmark(client, payload, **basic_auth())
    assert response.status_code == 413
    assert not InboundMessage.objects.exists()


def test_a_mail_above_inbound_max_bytes_is_kept_as_refused_with_its_headers(
    client, provider_mailbox, settings
):
    settings.INBOUND_MAX_BYTES = 1500
    settings.INBOUND_WEBHOOK_MAX_BYTES = 100_000
    payload = postmark_payload(TextBody="y" * 5000)

    assert post_postmark(client, payload, **basic_auth()).status_code == 200

    record = InboundMessage.objects.get()
    assert record.status == InboundStatus.REFUSED
    assert "accepts at most" in record.reason
    assert not Case.objects.exists()


def test_get_is_not_allowed_and_head_answers_for_the_providers_url_check(client, provider_mailbox):
    assert client.get(POSTMARK_URL, **basic_auth()).status_code == 405
    assert client.head(POSTMARK_URL, **basic_auth()).status_code == 200


# --- Amazon SES (an SNS notification carrying the mail) ---------------------------------------


def test_ses_sns_notification_with_the_mail_opens_a_case(client, provider_mailbox):
    raw = customer_mail(subject="SSO login loops", message_id="<ses-1@acme.example>")
    ses_event = {
        "notificationType": "Received",
        "mail": {
            "timestamp": "2026-03-02T09:30:00.000Z",
            "source": "carla@acme.example",
            "messageId": "ses-message-id-1",
            "destination": ["support@help.example"],
        },
        "receipt": {
            "recipients": ["support@help.example"],
            "spamVerdict": {"status": "PASS"},
            "action": {"type": "SNS", "topicArn": "arn:aws:sns:eu-west-1:1:inbound", "encoding": "BASE64"},
        },
        "content": base64.b64encode(raw).decode(),
    }
    sns_id = str(uuid.uuid4())
    notification = {
        "Type": "Notification",
        "MessageId": sns_id,
        "TopicArn": "arn:aws:sns:eu-west-1:1:inbound",
        "Subject": "Amazon SES Email Receipt Notification",
        "Message": json.dumps(ses_event),
        "Timestamp": "2026-03-02T09:30:01.000Z",
    }

    response = client.post(
        SES_URL,
        data=json.dumps(notification),
        content_type="text/plain; charset=UTF-8",
        HTTP_X_AMZ_SNS_MESSAGE_TYPE="Notification",
        HTTP_X_AMZ_SNS_MESSAGE_ID=sns_id,
        **basic_auth(),
    )

    assert response.status_code == 200
    record = InboundMessage.objects.get()
    assert record.status == InboundStatus.INGESTED, record.reason
    assert record.message_id == "<ses-1@acme.example>"
    assert record.raw.read() == raw  # SES hands over the original bytes, kept as they came
    assert Case.objects.get(pk=record.case_id).title == "SSO login loops"


def test_ses_without_credentials_gets_the_401_sns_needs_before_it_sends_them(client, provider_mailbox):
    response = client.post(
        SES_URL, data="{}", content_type="text/plain", HTTP_X_AMZ_SNS_MESSAGE_TYPE="Notification"
    )
    assert response.status_code == 401
    assert not InboundMessage.objects.exists()


def test_a_provider_whose_keys_are_missing_answers_503_not_500(client, provider_mailbox):
    # Brevo needs its API key to fetch attachments; without it the endpoint is not configured.
    response = client.post(
        "/inbound/provider/brevo/inbound/", data="{}", content_type="application/json", **basic_auth()
    )
    assert response.status_code == 503
    assert not InboundMessage.objects.exists()
