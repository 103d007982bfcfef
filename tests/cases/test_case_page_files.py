"""The case page's side of files and of the customer: replies and notes with files, the timeline's
file lists and downloads (permissions per object), the customer's mails shown as theirs, follow-ups."""

from __future__ import annotations

import re

import pytest
from django.contrib.messages import get_messages
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import include, path, reverse

from cases import services
from cases.models import CaseAttachment, CaseEvent, EventKind, Status
from supportdesk.urls import urlpatterns as project_urlpatterns
from tests import factories
from tests.cases.test_attachments import PDF, PNG, exe, log, png
from tests.outbox import deliver_mail

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


def customer_mail(case, contact, now, *, files=(), refused=(), cc=(), inbound_id=41):
    """A customer's mail on the case, as inbound mail records it (details on the event, files as rows)."""
    _, event = services.add_customer_message(
        case,
        body="Still failing for us, screenshot attached.",
        sender=contact,
        now=now,
        details={
            "from": contact.email,
            "to": ["support@supportdesk.example"],
            "cc": list(cc),
            "subject": f"Re: [{case.key}] {case.title}",
            "message_id": "<abc@mail.acme.example>",
            "inbound_id": inbound_id,
            "html_only": False,
            **({"refused_attachments": list(refused)} if refused else {}),
        },
    )
    for name, content_type, data in files:
        row = CaseAttachment(
            case=case, event=event, name=name, content_type=content_type, size=len(data), uploaded_at=now
        )
        row.file.save(name, ContentFile(data), save=False)
        row.save()
    return event


# --- The case page: composing ------------------------------------------------------------------


@pytest.fixture
def agent_client(client, agent):
    client.force_login(agent)
    return client


def _messages(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_reply_and_note_forms_take_several_files(agent_client, new_case):
    html = agent_client.get(new_case.get_absolute_url()).content.decode()
    for action, prefix in (("reply", "reply"), ("note", "note")):
        form = re.search(rf'<form[^>]*action="/cases/{new_case.key}/{action}/"[^>]*>', html).group(0)
        assert 'enctype="multipart/form-data"' in form
        field = re.search(rf'<input[^>]*id="{prefix}_attachments"[^>]*>', html).group(0)
        assert 'type="file"' in field
        assert "multiple" in field
        assert f'<label for="{prefix}_attachments"' in html
    assert "Attach files — sent with the reply" in html
    assert "Attach files — internal, like the note" in html
    assert "up to 10 files of at most 10.0 MB each" in html


def test_reply_with_files_lists_them_on_the_timeline_with_download_links(
    agent_client, new_case, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = agent_client.post(
            reverse("cases:reply", args=[new_case.key]),
            {"body": "Config attached.", "attachments": [png(), log()]},
        )
    assert response.status_code == 302
    assert "Reply with 2 files recorded and queued for delivery to carla@acme.example." in _messages(response)
    html = agent_client.get(new_case.get_absolute_url()).content.decode()
    reply = re.search(r'<li class="ev ev-public_reply".*?</li>\s*</ul>', html, re.S).group(0)
    shot, applog = CaseAttachment.objects.order_by("id")
    assert f'href="/cases/{new_case.key}/attachments/{shot.pk}/"' in reply
    assert ">screenshot.png</a>" in reply
    assert "48\xa0bytes · image/png" in reply
    assert ">app.log</a>" in reply
    assert "text/plain" in reply
    deliver_mail()
    assert [a[0] for a in mailoutbox[0].attachments] == ["screenshot.png", "app.log"]


def test_download_is_an_attachment_with_the_checked_type(agent_client, new_case, agent, now):
    event = services.add_public_reply(
        new_case,
        body="x",
        attachments=[SimpleUploadedFile("page.html", b"<script>x</script>", "")],
        actor=agent,
        now=now,
    )
    item = event.attachments.get()
    response = agent_client.get(reverse("cases:attachment", args=[new_case.key, item.pk]))
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="page.html"'
    assert response["Content-Type"] == "text/plain"  # what the check found, never text/html
    assert response["X-Content-Type-Options"] == "nosniff"
    assert b"".join(response.streaming_content) == b"<script>x</script>"


def test_a_refused_file_is_a_form_error_that_keeps_the_text(agent_client, new_case):
    response = agent_client.post(
        reverse("cases:reply", args=[new_case.key]),
        {"body": "Please run this installer.", "attachments": [png(), exe()]},
    )
    assert response.status_code == 400
    html = response.content.decode()
    field = re.search(r'<div class="field has-error field-files">.*?</div>\s*</div>', html, re.S)
    assert field is not None
    assert "setup.exe: Files of type “application/x-msdownload” are not accepted" in field.group(0)
    assert "Please run this installer.</textarea>" in html
    assert any(m.startswith("The reply was not sent: setup.exe:") for m in _messages(response))
    assert not new_case.events.filter(kind=EventKind.PUBLIC_REPLY).exists()
    assert not CaseAttachment.objects.exists()


def test_a_refused_note_file_is_a_form_error_on_the_note(agent_client, new_case):
    response = agent_client.post(
        reverse("cases:note", args=[new_case.key]),
        {"body": "Dump attached", "attachments": [SimpleUploadedFile("core.bin", b"\x7fELF\x00\x01", "")]},
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert "core.bin: The file&#x27;s content is not one of the accepted types" in html
    assert "Dump attached</textarea>" in html
    assert not new_case.events.filter(kind=EventKind.INTERNAL_NOTE).exists()


def test_note_with_a_file_shows_it_in_the_note(agent_client, new_case):
    response = agent_client.post(
        reverse("cases:note", args=[new_case.key]),
        {"body": "HAR attached", "attachments": [log("trace.log")]},
    )
    assert response.status_code == 302
    assert "Internal note with 1 file added." in _messages(response)
    html = agent_client.get(new_case.get_absolute_url()).content.decode()
    note = re.search(r'<li class="ev ev-internal_note".*?</li>\s*</ul>', html, re.S).group(0)
    assert ">trace.log</a>" in note


# --- Downloads: permissions per object ---------------------------------------------------------


def test_download_needs_someone_who_may_see_the_case(client, new_case, agent, engineer, now, organisation):
    event = services.add_public_reply(new_case, body="x", attachments=[png()], actor=agent, now=now)
    item = event.attachments.get()
    url = reverse("cases:attachment", args=[new_case.key, item.pk])
    assert client.get(url).status_code == 302  # anonymous -> the login page
    client.force_login(engineer)
    assert client.get(url).status_code == 403
    client.force_login(factories.UserFactory(username="nobody"))
    assert client.get(url).status_code == 403
    client.force_login(agent)
    assert client.get(url).status_code == 200
    # A file of another case is not reachable through this case's address, nor an unknown one.
    other = services.create_case(
        title="Other", organisation=organisation, requester=new_case.requester, actor=agent, now=now
    )
    assert client.get(reverse("cases:attachment", args=[other.key, item.pk])).status_code == 404
    assert client.get(reverse("cases:attachment", args=[new_case.key, item.pk + 100])).status_code == 404
    assert client.get(reverse("cases:attachment", args=["CASE-999999", item.pk])).status_code == 404


def test_a_case_the_viewer_may_not_see_is_refused_with_its_files(
    agent_client, new_case, agent, now, monkeypatch
):
    event = services.add_public_reply(new_case, body="x", attachments=[png()], actor=agent, now=now)
    monkeypatch.setattr("cases.views.can_see_case", lambda user, case: False)
    assert agent_client.get(new_case.get_absolute_url()).status_code == 403
    url = reverse("cases:attachment", args=[new_case.key, event.attachments.get().pk])
    assert agent_client.get(url).status_code == 403


def test_internal_note_files_only_for_those_who_may_read_internal_notes(
    agent_client, new_case, agent, now, monkeypatch
):
    note = services.add_internal_note(
        new_case,
        body="Internal: their admin is careless",
        attachments=[log("internal.log")],
        actor=agent,
        now=now,
    )
    reply = services.add_public_reply(
        new_case, body="Public answer", attachments=[png()], actor=agent, now=now
    )
    note_url = reverse("cases:attachment", args=[new_case.key, note.attachments.get().pk])
    reply_url = reverse("cases:attachment", args=[new_case.key, reply.attachments.get().pk])
    assert agent_client.get(note_url).status_code == 200  # agents read internal notes today

    # Someone who may see the case but not its internal notes (a narrower role, e.g. a portal user).
    monkeypatch.setattr("cases.views.can_see_internal_notes", lambda user, case: False)
    assert agent_client.get(note_url).status_code == 404
    assert agent_client.get(reply_url).status_code == 200
    html = agent_client.get(new_case.get_absolute_url()).content.decode()
    assert "internal.log" not in html
    assert "their admin is careless" not in html
    assert "screenshot.png" in html


# --- The customer's side -------------------------------------------------------------------------


def test_a_customer_mail_is_shown_distinctly_with_its_files_and_refusals(
    agent_client, new_case, contact, agent, now
):
    services.add_public_reply(new_case, body="Staff reply", actor=agent, now=now)
    services.add_internal_note(new_case, body="Staff note", actor=agent, now=now)
    event = customer_mail(
        new_case,
        contact,
        now,
        files=[("error.png", "image/png", PNG)],
        refused=[
            {"name": "invoice.exe", "reason": "Files of type “application/x-msdownload” are not accepted."}
        ],
        cc=["dan@acme.example"],
    )
    response = agent_client.get(new_case.get_absolute_url())
    assert response.status_code == 200  # the .eml link's URL does not exist in this build: no link
    html = response.content.decode()
    item = re.search(
        r'<li class="ev ev-customer_message" data-kind="customer_message">.*?</li>\s*</ul>\s*</div>',
        html,
        re.S,
    ).group(0)
    assert '<strong class="ev-label">Customer</strong>' in item
    assert "Carla Customer &lt;carla@acme.example&gt;" in item
    assert "support@supportdesk.example" in item
    assert "dan@acme.example" in item
    assert "Still failing for us, screenshot attached." in item
    file = event.attachments.get()
    assert f'href="/cases/{new_case.key}/attachments/{file.pk}/"' in item
    assert "Refused attachment" in item
    assert "invoice.exe" in item
    assert "are not accepted" in item
    assert "original (.eml)" not in item
    # Staff's words keep their own labels; the customer's is neither of them.
    assert "Public reply to the customer" not in item
    assert "Internal note" not in item
    assert html.count("ev ev-customer_message") == 1
    assert agent_client.get(reverse("cases:attachment", args=[new_case.key, file.pk])).status_code == 200


def _raw_view(request, pk):  # pragma: no cover - only reversed
    raise AssertionError


urlpatterns = [
    *project_urlpatterns,
    path("test-inbound/", include(([path("<int:pk>/raw/", _raw_view, name="raw")], "inbound"))),
]


def test_a_customer_mail_links_its_original_when_inbound_offers_it(
    agent_client, new_case, contact, now, settings
):
    settings.ROOT_URLCONF = __name__
    customer_mail(new_case, contact, now, inbound_id=41)
    html = agent_client.get(new_case.get_absolute_url()).content.decode()
    assert f'<a href="{reverse("inbound:raw", args=[41])}">original (.eml)</a>' in html


def test_follow_up_cases_link_to_each_other(agent_client, new_case, contact, agent, now):
    services.transition(new_case, Status.RESOLVED, actor=agent, now=now)
    services.transition(new_case, Status.CLOSED, actor=None, now=now)
    follow_up, _ = services.add_customer_message(new_case, body="It is broken again", sender=contact, now=now)
    assert follow_up.pk != new_case.pk

    old_html = agent_client.get(new_case.get_absolute_url()).content.decode()
    link = f'<a class="case-link" href="/cases/{follow_up.key}/">{follow_up.key}</a>'
    assert link in old_html  # in the head and on the timeline
    assert "Follow-up case opened" in old_html
    assert (
        f'<dt>Follow-ups</dt><dd><a href="/cases/{follow_up.key}/">{follow_up.key}</a> new</dd>' in old_html
    )

    new_html = agent_client.get(follow_up.get_absolute_url()).content.decode()
    back = f'<a class="case-link" href="/cases/{new_case.key}/">{new_case.key}</a>'
    assert f"Follow-up of {back}" in new_html
    assert "Opened as a follow-up of " + back in new_html
    assert "It is broken again" in new_html


def test_case_page_queries_do_not_grow_with_files_and_customer_mails(
    agent_client, new_case, contact, agent, now, django_assert_num_queries
):
    def add_round(i):
        services.add_public_reply(new_case, body=f"r{i}", attachments=[png(f"{i}.png")], actor=agent, now=now)
        services.add_internal_note(
            new_case, body=f"n{i}", attachments=[log(f"{i}.log")], actor=agent, now=now
        )
        customer_mail(new_case, contact, now, files=[(f"c{i}.pdf", "application/pdf", PDF)], inbound_id=i)

    add_round(0)
    with CaptureQueriesContext(connection) as one_round:
        agent_client.get(new_case.get_absolute_url())
    for i in range(1, 8):
        add_round(i)
    with django_assert_num_queries(len(one_round.captured_queries)):
        response = agent_client.get(new_case.get_absolute_url())
    html = response.content.decode()
    assert html.count('<ul class="ev-files"') == 24
    assert CaseEvent.objects.filter(case=new_case, kind=EventKind.CUSTOMER_MESSAGE).count() == 8
