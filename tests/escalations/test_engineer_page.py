"""The engineer's escalation page: each engineering action as a browser form, through the same
services and permissions as the API, offered only when the state allows it, refusals as form errors."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from escalations import services
from escalations.models import Escalation
from escalations.states import EscalationState, Side, allowed_actions
from tests import factories

S = EscalationState
pytestmark = pytest.mark.django_db

# URL segment -> the form's prefix (the action's name)
PREFIX = {
    "acknowledge": "acknowledge",
    "request-info": "request_info",
    "start": "start",
    "link": "link",
    "resolve": "resolve",
    "decline": "decline",
}


def _page(escalation) -> str:
    return reverse("escalations:engineer-view", args=[escalation.pk])


def _action_url(escalation, action: str) -> str:
    return reverse("escalations:engineer-action", args=[escalation.pk, action])


def _post(client, escalation, action: str, **fields):
    prefix = PREFIX[action]
    data = {f"{prefix}-{name}": value for name, value in fields.items()}
    return client.post(_action_url(escalation, action), data)


def _messages(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.mark.parametrize(
    ("start", "action", "fields", "state", "event"),
    [
        (S.SUBMITTED, "acknowledge", {}, S.ACKNOWLEDGED, "escalation_acknowledged"),
        (S.ACKNOWLEDGED, "start", {}, S.IN_PROGRESS, "escalation_started"),
        (
            S.SUBMITTED,
            "request-info",
            {"questions": "Which card brands fail?"},
            S.NEEDS_INFO,
            "escalation_info_requested",
        ),
        (
            S.IN_PROGRESS,
            "resolve",
            {"resolution": "Raised the upstream timeout.", "fix_version": "4.2.1"},
            S.RESOLVED,
            "escalation_resolved",
        ),
        (S.ACKNOWLEDGED, "decline", {"reason": "Works as designed."}, S.DECLINED, "escalation_declined"),
        (
            S.IN_PROGRESS,
            "link",
            {"external_key": "PAY-123", "external_url": "https://jira.example/browse/PAY-123"},
            S.IN_PROGRESS,
            "escalation_linked",
        ),
    ],
)
def test_each_engineering_action_works_from_the_page(
    client, engineer, escalation_in, start, action, fields, state, event
):
    escalation = escalation_in(start)
    client.force_login(engineer)
    response = _post(client, escalation, action, **fields)
    assert response.status_code == 302
    assert response["Location"] == _page(escalation)
    escalation.refresh_from_db()
    assert escalation.state == state
    last = escalation.case.events.order_by("-id").first()
    assert last.kind == event or escalation.case.events.filter(kind=event).exists()
    assert escalation.case.events.get(kind=event).actor_id == engineer.pk
    assert _messages(response)
    page = client.get(_page(escalation)).content.decode()
    assert f">{escalation.get_state_display()}</span>" in page


def test_what_the_actions_record(client, engineer, escalation_in):
    escalation = escalation_in(S.IN_PROGRESS)
    client.force_login(engineer)
    _post(client, escalation, "link", external_key="PAY-9", external_url="https://jira.example/PAY-9")
    _post(client, escalation, "resolve", resolution="Timeout raised.", fix_version="4.2.1")
    escalation.refresh_from_db()
    assert (escalation.external_key, escalation.external_url) == ("PAY-9", "https://jira.example/PAY-9")
    assert (escalation.resolution, escalation.fix_version) == ("Timeout raised.", "4.2.1")
    html = client.get(_page(escalation)).content.decode()
    assert "Fixed in 4.2.1. Timeout raised." in html
    assert 'href="https://jira.example/PAY-9"' in html


def test_questions_reach_support(client, engineer, escalation_in):
    escalation = escalation_in(S.SUBMITTED)
    client.force_login(engineer)
    _post(client, escalation, "request-info", questions="Which tenant exactly?")
    escalation.refresh_from_db()
    assert escalation.bounce_count == 1
    assert escalation.info_requests.get().questions == "Which tenant exactly?"
    html = client.get(_page(escalation)).content.decode()
    assert "Waiting for support" in html
    assert "Which tenant exactly?" in html


@pytest.mark.parametrize("state", [s for s in S.values if s != S.DRAFT])
def test_the_page_offers_only_the_actions_the_state_allows(client, engineer, escalation_in, state):
    escalation = escalation_in(state)
    client.force_login(engineer)
    html = client.get(_page(escalation)).content.decode()
    offered = {segment for segment in PREFIX if f'action="{_action_url(escalation, segment)}"' in html}
    expected = {seg for seg, name in PREFIX.items() if name in allowed_actions(state, side=Side.ENGINEERING)}
    assert offered == expected
    if not expected:
        assert "Nothing to do" in html


def test_an_action_the_state_does_not_allow_is_a_form_error_not_a_500(client, engineer, escalation_in):
    escalation = escalation_in(S.SUBMITTED)
    client.force_login(engineer)
    response = _post(client, escalation, "resolve", resolution="Done.")
    assert response.status_code == 400
    assert "cannot be resolved now" in response.content.decode()
    escalation.refresh_from_db()
    assert escalation.state == S.SUBMITTED
    # acknowledging twice: the second is refused the same way
    assert _post(client, escalation, "acknowledge").status_code == 302
    again = _post(client, escalation, "acknowledge")
    assert again.status_code == 400
    assert "cannot be acknowledged now" in again.content.decode()


def test_missing_text_is_a_field_error(client, engineer, escalation_in):
    escalation = escalation_in(S.IN_PROGRESS)
    client.force_login(engineer)
    response = _post(client, escalation, "resolve", resolution="   ")
    assert response.status_code == 400
    html = response.content.decode()
    assert "Describe the resolution." in html
    assert 'class="field has-error"' in html
    response = _post(client, escalation, "link", external_key="", external_url="")
    assert response.status_code == 400
    assert "key or URL" in response.content.decode()
    response = _post(client, escalation, "link", external_url="javascript:alert(1)")
    assert response.status_code == 400
    assert "http:// or https://" in response.content.decode()
    escalation.refresh_from_db()
    assert (escalation.state, escalation.external_key, escalation.resolution) == (S.IN_PROGRESS, "", "")


def test_acting_on_a_page_that_is_out_of_date_is_refused(client, engineer, escalation_in, now):
    escalation = escalation_in(S.IN_PROGRESS)
    client.force_login(engineer)
    seen = client.get(_page(escalation)).context["action_forms"]["resolve"]["seen"].value()
    colleague = factories.EngineerFactory()
    services.link(escalation, external_key="PAY-1", actor=colleague, now=now + dt.timedelta(minutes=1))
    response = _post(client, escalation, "resolve", resolution="Done.", seen=seen)
    assert response.status_code == 409
    assert "changed since you opened it" in response.content.decode()
    escalation.refresh_from_db()
    assert escalation.state == S.IN_PROGRESS
    # with the fresh page it goes through
    fresh = client.get(_page(escalation)).context["action_forms"]["resolve"]["seen"].value()
    assert _post(client, escalation, "resolve", resolution="Done.", seen=fresh).status_code == 302


def test_an_engineer_of_another_team_cannot_see_or_act(client, engineer, escalation_in, identity, scope_to):
    escalation = escalation_in(S.SUBMITTED)  # a Payments escalation
    scope_to(engineer, identity)
    client.force_login(engineer)
    assert client.get(_page(escalation)).status_code == 404
    for action in PREFIX:
        assert _post(client, escalation, action, questions="?", reason="x", resolution="x").status_code == 404
    escalation.refresh_from_db()
    assert escalation.state == S.SUBMITTED


def test_an_engineer_of_the_team_may_act(client, engineer, escalation_in, payments, scope_to):
    escalation = escalation_in(S.SUBMITTED)
    scope_to(engineer, payments)
    client.force_login(engineer)
    assert _post(client, escalation, "acknowledge").status_code == 302
    assert Escalation.objects.get(pk=escalation.pk).state == S.ACKNOWLEDGED


@pytest.mark.parametrize("who", ["agent", "manager"])
def test_support_cannot_act_as_engineering(client, request, escalation_in, who):
    escalation = escalation_in(S.SUBMITTED)
    user = request.getfixturevalue(who)
    client.force_login(user)
    html = client.get(_page(escalation)).content.decode()
    assert 'id="actions"' not in html
    for action in PREFIX:
        response = _post(client, escalation, action, questions="?", reason="x", resolution="x")
        assert response.status_code == 403, action
    escalation.refresh_from_db()
    assert escalation.state == S.SUBMITTED


def test_anonymous_and_unknown_actions(client, engineer, escalation_in):
    escalation = escalation_in(S.SUBMITTED)
    response = _post(client, escalation, "acknowledge")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    client.force_login(engineer)
    assert client.post(_action_url(escalation, "submit")).status_code == 404
    assert client.get(_action_url(escalation, "acknowledge")).status_code == 405


def test_times_are_shown_in_the_one_format(client, engineer, escalation_in):
    escalation = escalation_in(S.ACKNOWLEDGED)
    client.force_login(engineer)
    html = client.get(_page(escalation)).content.decode()
    assert html.count("<time datetime=") >= 3  # opened, submitted, acknowledged, ...
    assert 'date:"' not in html
