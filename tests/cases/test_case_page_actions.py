"""The case page's quick actions: "Assign to me", a reply and a status change in one submit, and
reopening with a reason (browser and API)."""

from __future__ import annotations

import json
import re

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from rest_framework.test import APIClient

from cases import services
from cases.models import EventKind, Status
from supportdesk.core.models import OutboundMessage

pytestmark = pytest.mark.django_db


@pytest.fixture
def agent_client(client, agent):
    client.force_login(agent)
    return client


def _messages(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def _in_progress(case, *, actor, team, now):
    services.transition(case, Status.TRIAGED, actor=actor, now=now, severity=case.severity, team=team)
    return services.transition(case, Status.IN_PROGRESS, actor=actor, now=now)


# --- Assign to me ------------------------------------------------------------------------------------


def test_assign_to_me_takes_an_unassigned_case(agent_client, new_case, agent):
    page = agent_client.get(new_case.get_absolute_url()).content.decode()
    assert reverse("cases:assign-me", args=[new_case.key]) in page
    response = agent_client.post(
        reverse("cases:assign-me", args=[new_case.key]), {"version": new_case.version}, follow=True
    )
    assert response.status_code == 200
    assert f"{new_case.key} is now assigned to you." in _messages(response)
    new_case.refresh_from_db()
    assert new_case.assignee == agent
    event = new_case.events.get(kind=EventKind.ASSIGNEE_CHANGED)
    assert (event.old_value, event.new_value, event.actor) == (None, "alice", agent)
    # Once it is theirs the button is gone.
    assert reverse("cases:assign-me", args=[new_case.key]) not in response.content.decode()


def test_an_agent_cannot_take_a_colleagues_case(agent_client, new_case, other_agent, manager, now):
    services.update_case(new_case, assignee=other_agent, actor=manager, now=now)
    page = agent_client.get(new_case.get_absolute_url()).content.decode()
    assert reverse("cases:assign-me", args=[new_case.key]) not in page  # not offered ...
    response = agent_client.post(reverse("cases:assign-me", args=[new_case.key]))  # ... and refused
    assert response.status_code == 400
    assert "Only a manager can reassign" in response.content.decode()
    new_case.refresh_from_db()
    assert new_case.assignee == other_agent


def test_a_manager_takes_anyones_case(client, manager, new_case, other_agent, now):
    services.update_case(new_case, assignee=other_agent, actor=manager, now=now)
    client.force_login(manager)
    assert (
        reverse("cases:assign-me", args=[new_case.key])
        in client.get(new_case.get_absolute_url()).content.decode()
    )
    assert client.post(reverse("cases:assign-me", args=[new_case.key])).status_code == 302
    new_case.refresh_from_db()
    assert new_case.assignee == manager


def test_assign_to_me_with_a_stale_version_is_a_conflict(client, manager, new_case, agent, now):
    loaded = new_case.version
    services.update_case(new_case, title="Changed meanwhile", actor=agent, now=now)
    client.force_login(manager)
    response = client.post(reverse("cases:assign-me", args=[new_case.key]), {"version": loaded})
    assert response.status_code == 409
    new_case.refresh_from_db()
    assert new_case.assignee is None


def test_assign_to_me_is_for_agents_only(client, engineer, new_case):
    client.force_login(engineer)
    assert client.post(reverse("cases:assign-me", args=[new_case.key])).status_code == 403
    assert client.get(reverse("cases:assign-me", args=[new_case.key])).status_code == 403


# --- Reply and set status ----------------------------------------------------------------------------


def test_reply_form_offers_the_allowed_next_statuses_except_reopening(agent_client, new_case, agent, now):
    html = agent_client.get(new_case.get_absolute_url()).content.decode()
    select = re.search(r'<select name="status".*?</select>', html, re.S).group(0)
    assert re.findall(r'<option value="([a-z_]*)"', select) == ["", "triaged", "resolved"]
    services.transition(new_case, Status.RESOLVED, actor=agent, now=now)
    html = agent_client.get(new_case.get_absolute_url()).content.decode()
    assert '<select name="status"' not in html  # resolved: only reopening (which needs a reason) is next


def test_reply_and_status_in_one_submit(agent_client, new_case, agent, team, now):
    case = _in_progress(new_case, actor=agent, team=team, now=now)
    response = agent_client.post(
        reverse("cases:reply", args=[case.key]),
        {"body": "Could you send the HAR file?", "status": "waiting_on_customer"},
        follow=True,
    )
    assert response.status_code == 200
    messages = _messages(response)
    assert "Reply recorded and queued for delivery to carla@acme.example." in messages
    assert f"{case.key} is now waiting on customer." in messages
    case.refresh_from_db()
    assert case.status == Status.WAITING_ON_CUSTOMER
    reply = case.events.get(kind=EventKind.PUBLIC_REPLY)
    status = case.events.filter(kind=EventKind.STATUS_CHANGED).last()
    assert status.new_value == "waiting_on_customer"
    assert (reply.created_at, reply.pk) <= (status.created_at, status.pk)  # the reply first
    assert OutboundMessage.objects.filter(event_id=reply.pk).exists()


def test_a_refused_status_leaves_the_reply_sent_and_says_why(agent_client, new_case):
    # Triaging needs a confirmed severity and an owner; this case has neither.
    response = agent_client.post(
        reverse("cases:reply", args=[new_case.key]),
        {"body": "Looking into it.", "status": "triaged"},
        follow=True,
    )
    assert response.status_code == 200
    messages = _messages(response)
    assert "Reply recorded and queued for delivery to carla@acme.example." in messages
    assert any(
        m.startswith("The reply was sent, but the status was not changed: Confirm the severity")
        for m in messages
    )
    new_case.refresh_from_db()
    assert new_case.status == Status.NEW
    assert new_case.events.filter(kind=EventKind.PUBLIC_REPLY).count() == 1
    assert not new_case.events.filter(kind=EventKind.STATUS_CHANGED).exists()


def test_an_illegal_status_with_the_reply_is_refused_by_the_lifecycle(agent_client, new_case):
    response = agent_client.post(
        reverse("cases:reply", args=[new_case.key]), {"body": "Hi", "status": "closed"}, follow=True
    )
    assert any("the status was not changed" in m and "cannot go from" in m for m in _messages(response))
    new_case.refresh_from_db()
    assert new_case.status == Status.NEW


def test_an_empty_reply_sends_nothing_and_changes_no_status(agent_client, new_case):
    response = agent_client.post(
        reverse("cases:reply", args=[new_case.key]), {"body": "  ", "status": "resolved"}
    )
    assert response.status_code == 400
    new_case.refresh_from_db()
    assert new_case.status == Status.NEW
    assert not new_case.events.filter(kind=EventKind.PUBLIC_REPLY).exists()


# --- Reopening needs a reason ------------------------------------------------------------------------


@pytest.fixture
def resolved_case(new_case, agent, now):
    return services.transition(new_case, Status.RESOLVED, actor=agent, now=now)


def test_reopening_in_the_browser_without_a_reason_is_a_form_error(agent_client, resolved_case):
    response = agent_client.post(
        reverse("cases:transition", args=[resolved_case.key]),
        {"to": "reopened", "reason": "  ", "version": resolved_case.version},
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert "Say why the case is reopened" in html
    assert 'id="tr_reason"' in html
    assert 'aria-invalid="true"' in html
    resolved_case.refresh_from_db()
    assert resolved_case.status == Status.RESOLVED
    assert resolved_case.reopen_count == 0


def test_reopening_in_the_browser_records_the_reason_on_the_timeline(agent_client, resolved_case, agent):
    html = agent_client.get(resolved_case.get_absolute_url()).content.decode()
    assert 'data-when="reopened"' in html  # the reason field is offered with the status choice
    response = agent_client.post(
        reverse("cases:transition", args=[resolved_case.key]),
        {"to": "reopened", "reason": "Checkout fails again since 14:00", "version": resolved_case.version},
        follow=True,
    )
    assert response.status_code == 200
    resolved_case.refresh_from_db()
    assert resolved_case.status == Status.REOPENED
    event = resolved_case.events.get(kind=EventKind.REOPENED)
    assert (event.body, event.actor) == ("Checkout fails again since 14:00", agent)
    html = response.content.decode()
    assert "Reopened the case. Reason:" in html
    assert "Checkout fails again since 14:00" in html
    assert "not fixed" not in html


def test_a_customer_mail_that_reopens_is_not_given_a_made_up_reason(
    agent_client, resolved_case, contact, now
):
    services.add_customer_message(resolved_case, body="Still broken for us.", sender=contact, now=now)
    html = agent_client.get(resolved_case.get_absolute_url()).content.decode()
    assert "the customer wrote again after it was resolved" in html
    assert "not fixed" not in html


def _api(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def _transition(api, case, payload):
    return api.post(
        f"/api/cases/{case.key}/transition/", json.dumps(payload), content_type="application/json"
    )


def test_reopening_through_the_api_without_a_reason_is_a_400_naming_the_field(agent, resolved_case):
    api = _api(agent)
    for payload in (
        {"to": "reopened"},
        {"to": "reopened", "reason": ""},
        {"to": "reopened", "reason": "   "},
    ):
        response = _transition(api, resolved_case, payload)
        assert response.status_code == 400, payload
        assert response.json()["reason"] == ["Say why the case is reopened (what the customer reported)."]
    resolved_case.refresh_from_db()
    assert resolved_case.status == Status.RESOLVED


def test_reopening_through_the_api_keeps_the_reason(agent, resolved_case):
    response = _transition(_api(agent), resolved_case, {"to": "reopened", "reason": "Error 502 is back"})
    assert response.status_code == 200
    assert response.json()["status"] == "reopened"
    assert resolved_case.events.get(kind=EventKind.REOPENED).body == "Error 502 is back"


def test_a_reason_is_not_needed_for_other_moves_and_not_recorded(agent, new_case):
    response = _transition(_api(agent), new_case, {"to": "resolved", "reason": "ignored"})
    assert response.status_code == 200
    assert new_case.events.filter(kind=EventKind.STATUS_CHANGED).get().body == ""


def test_the_schema_documents_the_reason(agent):
    schema = _api(agent).get("/api/schema/", {"format": "json"}).json()
    request = schema["components"]["schemas"]["CaseTransitionRequest"]
    assert "reason" in request["properties"]


# --- Shortcuts and times ---------------------------------------------------------------------------


def test_the_case_page_carries_its_key_and_the_shortcuts_script(agent_client, new_case):
    html = agent_client.get(new_case.get_absolute_url()).content.decode()
    assert f'data-case-key="{new_case.key}"' in html
    assert "supportdesk/shortcuts.js" in html
    assert "supportdesk/shortcuts.js" in agent_client.get(reverse("cases:queue")).content.decode()


def test_every_instant_on_the_case_page_is_a_time_element(agent_client, new_case, agent, now):
    services.add_public_reply(new_case, body="Hi", actor=agent, now=now)
    services.transition(new_case, Status.RESOLVED, actor=agent, now=now)
    page = agent_client.get(new_case.get_absolute_url()).content.decode()
    # The case's own parts (the timeline, the details); panels of other apps render their own.
    timeline = re.search(r'<ol class="timeline">.*?</ol>', page, re.S).group(0)
    details = re.search(r'<dl class="fields">.*?</dl>', page, re.S).group(0)
    times = re.findall(r'<time datetime="([^"]+)">([^<]+)</time>', timeline + details)
    assert len(times) >= 6  # created, first response, resolved, and each timeline entry
    for iso, shown in times:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?[+-]\d\d:\d\d", iso), iso
        assert re.fullmatch(r"\d{1,2} [A-Z][a-z]{2} \d{4} \d\d:\d\d \S+", shown), shown
