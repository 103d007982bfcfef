"""Macros: placeholders filled safely, checked when saved, applied through the case services, and
who may change which macro (browser pages and the API)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from rest_framework.test import APIClient

from cases import macros, services
from cases.models import EventKind, Macro, Status
from supportdesk.core.models import OutboundMessage
from tests import factories

pytestmark = pytest.mark.django_db


def _macro(actor, now, *, shared=False, **kwargs) -> Macro:
    kwargs.setdefault("name", "Thanks")
    kwargs.setdefault("body", "Hello {{requester_first_name}}")
    return macros.save_macro(Macro(), actor=actor, now=now, shared=shared, **kwargs)


@pytest.fixture
def shared_macro(manager, team, now) -> Macro:
    return _macro(
        manager,
        now,
        shared=True,
        name="Fixed, resolving",
        body="Hi {{requester_first_name}}, {{case_key}} is fixed. — {{agent_name}}",
        set_status=Status.RESOLVED,
        add_tags=["fixed", "Billing Portal"],
        set_team=team,
    )


# --- Placeholders -----------------------------------------------------------------------------------


def test_every_placeholder_is_filled_from_the_case_and_the_agent(new_case, agent, team, now):
    new_case = services.update_case(new_case, team=team, actor=agent, now=now)
    macro = Macro(
        body=(
            "{{requester_name}}|{{ requester_first_name }}|{{case_key}}|{{case_title}}|"
            "{{agent_name}}|{{organisation}}|{{team}}"
        )
    )
    text = macros.render_macro(macro, new_case, agent=agent)
    assert text == (
        f"Carla Customer|Carla|{new_case.key}|Checkout fails with 502|Alice Agent|Acme Corp|Tier 2"
    )


def test_values_are_inserted_literally_not_expanded_again_nor_evaluated(new_case, agent, now):
    new_case = services.update_case(new_case, title="{{agent_name}} {% now 'Y' %}", actor=agent, now=now)
    macro = Macro(body="Re: {{case_title}}")
    assert macros.render_macro(macro, new_case, agent=agent) == "Re: {{agent_name}} {% now 'Y' %}"


def test_template_tags_in_the_body_stay_plain_text(new_case, agent, now):
    macro = _macro(agent, now, body="{% if x %}{{ case_key }}{% endif %}{% load static %}")
    rendered = macros.render_macro(macro, new_case, agent=agent)
    assert rendered == "{% if x %}" + new_case.key + "{% endif %}{% load static %}"


def test_template_syntax_is_refused_when_it_names_attributes(agent, now):
    with pytest.raises(ValidationError) as refused:
        _macro(agent, now, body="{{ case.requester.email }}")
    assert "{{case.requester.email}}" in " ".join(refused.value.messages)


def test_an_unknown_placeholder_is_refused_on_save_with_its_name(agent, now):
    with pytest.raises(ValidationError) as refused:
        _macro(agent, now, body="Dear {{customer_name}}, see {{ticket}}")
    message = " ".join(refused.value.messages)
    assert "{{customer_name}}" in message
    assert "{{ticket}}" in message
    assert "{{requester_name}}" in message  # says what exists
    assert not Macro.objects.exists()


def test_an_unclosed_placeholder_is_refused(agent, now):
    with pytest.raises(ValidationError):
        _macro(agent, now, body="Hi {{requester_name}")


def test_the_macro_page_refuses_an_unknown_placeholder_as_a_form_error(client, agent):
    client.force_login(agent)
    response = client.post(reverse("cases:macro-create"), {"name": "Bad", "body": "Hi {{nmae}}"})
    assert response.status_code == 400
    assert "Unknown placeholder: {{nmae}}" in response.content.decode()
    assert not Macro.objects.exists()


# --- Applying ---------------------------------------------------------------------------------------


def test_apply_posts_the_reply_and_applies_each_action_with_its_own_event(
    new_case, agent, manager, shared_macro, team, now
):
    services.transition(new_case, Status.TRIAGED, actor=manager, now=now, severity="P2", team=team)
    case = services.transition(new_case, Status.IN_PROGRESS, actor=agent, now=now)
    result = macros.apply_macro(case, shared_macro, actor=agent, now=now)

    assert result.ok
    assert [c.action for c in result.changed] == ["reply", "tags", "status"]  # the team was set already
    reply = case.events.get(kind=EventKind.PUBLIC_REPLY)
    assert reply.body == f"Hi Carla, {case.key} is fixed. — Alice Agent"
    assert reply.actor == agent
    assert reply == result.reply
    mail = OutboundMessage.objects.get(event_id=reply.pk)
    assert mail.to == ["carla@acme.example"]
    tags = case.events.get(kind=EventKind.TAGS_CHANGED)
    assert tags.new_value == ["billing-portal", "fixed"]
    status = case.events.filter(kind=EventKind.STATUS_CHANGED).last()
    assert (status.old_value, status.new_value, status.actor) == ("in_progress", "resolved", agent)
    case.refresh_from_db()
    assert case.status == Status.RESOLVED
    assert case.first_response_at == now


def test_apply_with_an_edited_body_sends_that_text(new_case, agent, now):
    macro = _macro(agent, now, body="Hello {{requester_first_name}}")
    macros.apply_macro(new_case, macro, actor=agent, now=now, body="Hello Carla, edited.")
    assert new_case.events.get(kind=EventKind.PUBLIC_REPLY).body == "Hello Carla, edited."


def test_a_refused_status_is_reported_and_the_reply_and_tags_stay(new_case, agent, now):
    # A new case cannot wait on the customer (it is triaged and in progress first).
    macro = _macro(
        agent,
        now,
        name="Waiting",
        body="Over to you.",
        set_status=Status.WAITING_ON_CUSTOMER,
        add_tags=["asked"],
    )
    result = macros.apply_macro(new_case, macro, actor=agent, now=now)

    assert not result.ok
    assert [(r.action, "Allowed next" in r.reason) for r in result.refused] == [("status", True)]
    assert [c.action for c in result.changed] == ["reply", "tags"]
    new_case.refresh_from_db()
    assert new_case.status == Status.NEW
    assert new_case.events.filter(kind=EventKind.PUBLIC_REPLY).count() == 1
    assert "not done — status" in result.summary()


def test_a_refused_reply_applies_nothing(new_case, agent, shared_macro, now):
    services.transition(new_case, Status.RESOLVED, actor=agent, now=now)
    services.auto_close_resolved(now=now + dt.timedelta(days=30))
    result = macros.apply_macro(new_case, shared_macro, actor=agent, now=now)
    assert [r.action for r in result.refused] == ["reply"]
    assert result.changed == []
    assert not new_case.events.filter(kind__in=[EventKind.PUBLIC_REPLY, EventKind.TAGS_CHANGED]).exists()


def test_nobody_applies_another_agents_personal_macro(new_case, agent, other_agent, now):
    mine = _macro(agent, now)
    with pytest.raises(macros.MacroPermissionDenied):
        macros.apply_macro(new_case, mine, actor=other_agent, now=now)
    assert not new_case.events.filter(kind=EventKind.PUBLIC_REPLY).exists()


# --- Who may change which macro ---------------------------------------------------------------------


def test_only_managers_create_shared_macros(agent, now):
    with pytest.raises(macros.MacroPermissionDenied):
        _macro(agent, now, shared=True)


def test_macro_names_are_unique_per_owner_and_among_shared(agent, other_agent, manager, now):
    _macro(agent, now, name="Thanks")
    _macro(other_agent, now, name="Thanks")  # another owner: fine
    with pytest.raises(ValidationError):
        _macro(agent, now, name="Thanks")
    _macro(manager, now, name="Thanks", shared=True)
    with pytest.raises(ValidationError):
        _macro(manager, now, name="Thanks", shared=True)


@pytest.fixture
def agent_client(client, agent):
    client.force_login(agent)
    return client


def test_agent_cannot_edit_or_delete_a_shared_macro(agent_client, shared_macro):
    edit = reverse("cases:macro-edit", args=[shared_macro.pk])
    assert agent_client.get(edit).status_code == 403
    assert agent_client.post(edit, {"name": "Hijacked", "body": "x"}).status_code == 403
    assert agent_client.post(reverse("cases:macro-delete", args=[shared_macro.pk])).status_code == 403
    shared_macro.refresh_from_db()
    assert shared_macro.name == "Fixed, resolving"
    # ... but uses it, and the list says who changes it.
    page = agent_client.get(reverse("cases:macros")).content.decode()
    assert "Fixed, resolving" in page
    assert "managers change it" in page


def test_agent_cannot_see_edit_or_delete_another_agents_personal_macro(agent_client, other_agent, now):
    theirs = _macro(other_agent, now, name="Bob's private")
    assert agent_client.get(reverse("cases:macro-edit", args=[theirs.pk])).status_code == 404
    assert agent_client.post(reverse("cases:macro-edit", args=[theirs.pk]), {"name": "x"}).status_code == 404
    assert agent_client.post(reverse("cases:macro-delete", args=[theirs.pk])).status_code == 404
    assert Macro.objects.get(pk=theirs.pk).name == "Bob's private"
    assert "Bob&#x27;s private" not in agent_client.get(reverse("cases:macros")).content.decode()


def test_a_manager_cannot_change_an_agents_personal_macro(client, manager, agent, now):
    theirs = _macro(agent, now, name="Alice's")
    client.force_login(manager)
    assert client.post(reverse("cases:macro-edit", args=[theirs.pk]), {"name": "x"}).status_code == 404


def test_agent_creates_edits_and_deletes_a_personal_macro(agent_client, agent, team):
    response = agent_client.post(
        reverse("cases:macro-create"),
        {"name": "Need logs", "body": "Hi {{requester_first_name}}, please send logs.", "shared": "on"},
    )
    assert response.status_code == 302
    macro = Macro.objects.get()
    assert (macro.owner, macro.created_by, macro.is_shared) == (agent, agent, False)  # "shared" ignored
    response = agent_client.post(
        reverse("cases:macro-edit", args=[macro.pk]),
        {
            "name": "Need logs",
            "body": "Logs please.",
            "set_status": "waiting_on_customer",
            "add_tags": "logs",
        },
    )
    assert response.status_code == 302
    macro.refresh_from_db()
    assert (macro.body, macro.set_status, macro.add_tags) == ("Logs please.", "waiting_on_customer", ["logs"])
    assert agent_client.post(reverse("cases:macro-delete", args=[macro.pk])).status_code == 302
    assert not Macro.objects.exists()


def test_manager_creates_and_edits_a_shared_macro(client, manager):
    client.force_login(manager)
    client.post(reverse("cases:macro-create"), {"name": "Outage", "body": "We are on it.", "shared": "on"})
    macro = Macro.objects.get()
    assert macro.is_shared
    assert macro.owner is None
    response = client.post(
        reverse("cases:macro-edit", args=[macro.pk]), {"name": "Outage", "body": "Fixed.", "shared": "on"}
    )
    assert response.status_code == 302
    assert Macro.objects.get().body == "Fixed."


def test_a_macro_needs_text_or_an_action(agent_client):
    response = agent_client.post(reverse("cases:macro-create"), {"name": "Empty", "body": "  "})
    assert response.status_code == 400
    assert "at least one action" in response.content.decode()


def test_engineers_get_no_macro_pages(client, engineer):
    client.force_login(engineer)
    assert client.get(reverse("cases:macros")).status_code == 403


# --- The case page ---------------------------------------------------------------------------------


def test_case_page_offers_the_visible_macros_filled_in_for_the_case(
    agent_client, new_case, shared_macro, other_agent, now
):
    _macro(other_agent, now, name="Not for Alice")
    html = agent_client.get(new_case.get_absolute_url()).content.decode()
    assert f'data-macro-id="{shared_macro.pk}"' in html
    assert f"Hi Carla, {new_case.key} is fixed. — Alice Agent" in html
    assert 'data-macro-status="resolved"' in html
    assert "Not for Alice" not in html


def test_apply_macro_form_without_javascript_sends_and_applies(agent_client, new_case, shared_macro):
    response = agent_client.post(
        reverse("cases:apply-macro", args=[new_case.key]), {"macro": shared_macro.pk}, follow=True
    )
    assert response.status_code == 200
    kinds = list(new_case.events.values_list("kind", flat=True))
    assert kinds[-4:] == ["public_reply", "team_changed", "tags_changed", "status_changed"]
    new_case.refresh_from_db()
    assert new_case.status == Status.RESOLVED
    assert "Macro “Fixed, resolving”: status set to resolved." in response.content.decode()


def test_reply_with_an_inserted_macro_applies_its_tags_and_team_and_the_chosen_status(
    agent_client, new_case, shared_macro, team
):
    response = agent_client.post(
        reverse("cases:reply", args=[new_case.key]),
        {"body": "Edited by Alice", "macro": shared_macro.pk, "status": ""},  # status cleared by the agent
    )
    assert response.status_code == 302
    new_case.refresh_from_db()
    assert new_case.status == Status.NEW
    assert new_case.team == team
    assert sorted(new_case.tags.values_list("name", flat=True)) == ["billing-portal", "fixed"]
    assert new_case.events.get(kind=EventKind.PUBLIC_REPLY).body == "Edited by Alice"


def test_reply_naming_someone_elses_macro_is_refused(agent_client, new_case, other_agent, now):
    theirs = _macro(other_agent, now)
    response = agent_client.post(
        reverse("cases:reply", args=[new_case.key]), {"body": "Hi", "macro": theirs.pk}
    )
    assert response.status_code == 400
    assert not new_case.events.filter(kind=EventKind.PUBLIC_REPLY).exists()


# --- API -------------------------------------------------------------------------------------------


@pytest.fixture
def api(agent) -> APIClient:
    client = APIClient()
    client.force_login(agent)
    return client


def test_api_lists_the_shared_and_own_macros_filled_in_for_a_case(
    api, agent, other_agent, shared_macro, new_case, now
):
    _macro(agent, now, name="Mine")
    _macro(other_agent, now, name="Theirs")
    listed = api.get("/api/macros/").json()
    assert [m["name"] for m in listed] == ["Fixed, resolving", "Mine"]
    assert listed[0]["shared"] is True
    assert listed[0]["set_status"] == "resolved"
    assert listed[0]["set_team"] == "tier-2"
    assert listed[0]["rendered_body"] is None
    filled = api.get("/api/macros/", {"case": new_case.key}).json()
    assert filled[0]["rendered_body"] == f"Hi Carla, {new_case.key} is fixed. — Alice Agent"
    bad = api.get("/api/macros/", {"case": "CASE-999999"})
    assert bad.status_code == 400
    assert "case" in bad.json()


def _apply(api, case, payload):
    return api.post(
        f"/api/cases/{case.key}/apply-macro/", json.dumps(payload), content_type="application/json"
    )


def test_api_applies_a_macro_and_lists_changes_and_refusals(api, agent, new_case, now):
    macro = _macro(agent, now, body="On it, {{requester_first_name}}.", set_status=Status.IN_PROGRESS)
    response = _apply(api, new_case, {"macro": macro.pk})
    assert response.status_code == 200
    body = response.json()
    assert [c["action"] for c in body["changed"]] == ["reply"]
    assert body["refused"][0]["action"] == "status"
    assert "Allowed next" in body["refused"][0]["reason"]
    assert body["reply"]["body"] == "On it, Carla."
    assert body["reply"]["kind"] == "public_reply"
    assert body["case"]["status"] == "new"


def test_api_apply_refuses_an_unknown_or_foreign_macro_and_a_closed_case(
    api, other_agent, shared_macro, new_case, agent, now
):
    theirs = _macro(other_agent, now)
    for payload in ({"macro": theirs.pk}, {"macro": 999999}, {}, {"macro": "x"}):
        response = _apply(api, new_case, payload)
        assert response.status_code == 400, payload
        assert "macro" in response.json(), payload
    services.transition(new_case, Status.RESOLVED, actor=agent, now=now)
    services.auto_close_resolved(now=now + dt.timedelta(days=30))
    response = _apply(api, new_case, {"macro": shared_macro.pk})
    assert response.status_code == 400
    assert "closed" in response.json()["detail"]
    assert not new_case.events.filter(kind=EventKind.PUBLIC_REPLY).exists()


def test_api_macros_are_for_support_staff_only(client, engineer, new_case, shared_macro):
    outsider = APIClient()
    outsider.force_login(engineer)
    assert outsider.get("/api/macros/").status_code == 403
    assert _apply(outsider, new_case, {"macro": shared_macro.pk}).status_code == 403
    assert APIClient().get("/api/macros/").status_code in (401, 403)
    assert _apply(APIClient(), new_case, {"macro": shared_macro.pk}).status_code in (401, 403)
    nobody = factories.UserFactory(username="nobody")
    outsider.force_login(nobody)
    assert outsider.get("/api/macros/").status_code == 403


def test_the_schema_documents_the_macro_endpoints(api):
    schema = api.get("/api/schema/", {"format": "json"}).json()
    assert "get" in schema["paths"]["/api/macros/"]
    operation = schema["paths"]["/api/cases/{key}/apply-macro/"]["post"]
    assert {"200", "400", "401", "403", "404"} <= set(operation["responses"])
