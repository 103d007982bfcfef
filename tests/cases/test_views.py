"""The agents' browser UI for cases, through the Django test client."""

from __future__ import annotations

import base64
import datetime as dt
import json
import re

import pytest
import time_machine
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from cases import services, views
from cases.models import Case, Contact, Status
from supportdesk.core.errors import DomainError
from tests import factories
from tests.outbox import deliver_mail

pytestmark = pytest.mark.django_db


@pytest.fixture
def agent_client(client, agent):
    client.force_login(agent)
    return client


def _keys(response) -> list[str]:
    """The case keys of the queue's rows, in order."""
    html = response.content.decode()
    return re.findall(r'<td class="q-key nowrap"><a href="/cases/(CASE-\d+)/">', html)


def _messages(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def _case(organisation, contact, *, actor, now, **kwargs) -> Case:
    kwargs.setdefault("title", "Something is broken")
    return services.create_case(organisation=organisation, requester=contact, actor=actor, now=now, **kwargs)


# --- Permissions -------------------------------------------------------------------------------


def _all_urls(key: str) -> list[tuple[str, str]]:
    return [
        ("get", reverse("cases:queue")),
        ("get", reverse("cases:create")),
        ("post", reverse("cases:create")),
        ("get", reverse("cases:detail", args=[key])),
        ("post", reverse("cases:reply", args=[key])),
        ("post", reverse("cases:note", args=[key])),
        ("post", reverse("cases:transition", args=[key])),
        ("post", reverse("cases:update", args=[key])),
    ]


def test_anonymous_is_sent_to_login_everywhere(client, new_case):
    for method, url in _all_urls(new_case.key):
        response = getattr(client, method)(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("login")), url


def test_engineer_and_user_without_role_get_403_everywhere(client, engineer, new_case):
    nobody = factories.UserFactory(username="nobody")
    for user in (engineer, nobody):
        client.force_login(user)
        for method, url in _all_urls(new_case.key):
            data = {"body": "hello", "to": "triaged", "version": "1", "title": "x", "severity": "P1"}
            response = getattr(client, method)(url, data) if method == "post" else client.get(url)
            assert response.status_code == 403, (user.username, url)
    assert new_case.events.count() == 1  # nothing was written


def test_manager_sees_the_queue(client, manager, new_case):
    client.force_login(manager)
    response = client.get(reverse("cases:queue"))
    assert response.status_code == 200
    assert new_case.key in _keys(response)


def test_unknown_or_malformed_key_is_404(agent_client, new_case):
    assert agent_client.get("/cases/CASE-999999/").status_code == 404
    assert agent_client.get("/cases/not-a-key/").status_code == 404
    assert agent_client.get("/cases/CASE-99999999999999999999999/").status_code == 404
    assert agent_client.post("/cases/CASE-999999/note/", {"body": "x"}).status_code == 404


def test_actions_refuse_get(agent_client, new_case):
    assert agent_client.get(reverse("cases:reply", args=[new_case.key])).status_code == 405


# --- Queue -------------------------------------------------------------------------------------


def test_queue_row_shows_what_an_agent_needs_without_database_ids(
    agent_client, organisation, contact, agent, now
):
    team = factories.TeamFactory(name="Payments", slug="payments")
    case = _case(organisation, contact, actor=agent, now=now, severity="P1", team=team, title="Checkout down")
    response = agent_client.get(reverse("cases:queue"))
    html = response.content.decode()
    row = re.search(rf"<tr class=\"q-row\" data-key=\"{case.key}\".*?</tr>", html, re.S).group(0)
    assert "Checkout down" in row
    assert "Acme Corp" in row
    assert "Enterprise" in row
    assert ">P1<" in row
    assert "New" in row
    assert "Unassigned" in row
    assert "Payments" in row
    assert "<time" in row
    assert f">{case.pk}<" not in row


def test_queue_shows_open_cases_by_default(agent_client, organisation, contact, agent, now):
    open_case = _case(organisation, contact, actor=agent, now=now, title="Still broken")
    done = _case(organisation, contact, actor=agent, now=now, title="Fixed already")
    services.transition(done, Status.RESOLVED, actor=agent, now=now)

    assert _keys(agent_client.get(reverse("cases:queue"))) == [open_case.key]
    everything = agent_client.get(reverse("cases:queue"), {"state": "all"})
    assert set(_keys(everything)) == {open_case.key, done.key}
    by_status = agent_client.get(reverse("cases:queue"), {"status": "resolved"})
    assert _keys(by_status) == [done.key]
    # Ticked statuses win over the form's "Open" default.
    ticked = agent_client.get(reverse("cases:queue"), {"state": "open", "status": ["resolved", "new"]})
    assert set(_keys(ticked)) == {open_case.key, done.key}


def test_queue_filters(agent_client, organisation, contact, agent, other_agent, now):
    other_org = factories.OrganisationFactory(name="Globex", tier="standard")
    globex_contact = factories.ContactFactory(organisation=other_org)
    team = factories.TeamFactory(name="Tier 2", slug="tier-2")
    mine = _case(organisation, contact, actor=agent, now=now, assignee=agent, severity="P1", tags=["billing"])
    bobs = _case(organisation, contact, actor=agent, now=now, assignee=other_agent, team=team)
    unassigned = _case(
        other_org, globex_contact, actor=agent, now=now, title="Login page slow", severity="P4"
    )
    url = reverse("cases:queue")

    assert _keys(agent_client.get(url, {"mine": "true"})) == [mine.key]
    assert _keys(agent_client.get(url, {"unassigned": "true"})) == [unassigned.key]
    assert _keys(agent_client.get(url, {"assignee": "bob"})) == [bobs.key]
    assert _keys(agent_client.get(url, {"team": "tier-2"})) == [bobs.key]
    assert _keys(agent_client.get(url, {"severity": ["P1", "P4"]})) == [mine.key, unassigned.key]
    assert _keys(agent_client.get(url, {"organisation": other_org.pk})) == [unassigned.key]
    assert _keys(agent_client.get(url, {"tier": "standard"})) == [unassigned.key]
    assert _keys(agent_client.get(url, {"tag": "billing"})) == [mine.key]
    assert _keys(agent_client.get(url, {"q": "login page"})) == [unassigned.key]
    assert _keys(agent_client.get(url, {"q": bobs.key.lower()})) == [bobs.key]


def test_queue_filter_form_is_a_shareable_get_form_with_quick_links(agent_client):
    html = agent_client.get(reverse("cases:queue"), {"mine": "true"}).content.decode()
    assert re.search(r'<form method="get" action="/cases/"', html)
    assert re.search(r'href="/cases/\?mine=true" aria-current="page">Mine <', html)
    assert 'href="/cases/?unassigned=true"' in html
    assert 'name="mine" value="true" checked' in html
    for name in ("q", "state", "organisation", "tier", "assignee", "team", "tag", "sort"):
        assert re.search(rf'<label for="id_{name}"', html), name


def test_bad_filter_value_is_a_message_not_an_error(agent_client, new_case):
    response = agent_client.get(reverse("cases:queue"), {"organisation": "nope", "assignee": "ghost"})
    assert response.status_code == 200
    assert any("not understood" in m for m in _messages(response))


def test_queue_sorting(agent_client, organisation, contact, agent, now):
    old_p3 = _case(organisation, contact, actor=agent, now=now - dt.timedelta(hours=3), severity="P3")
    mid_p1 = _case(organisation, contact, actor=agent, now=now - dt.timedelta(hours=2), severity="P1")
    new_p2 = _case(organisation, contact, actor=agent, now=now - dt.timedelta(hours=1), severity="P2")
    url = reverse("cases:queue")

    assert _keys(agent_client.get(url)) == [mid_p1.key, new_p2.key, old_p3.key]  # default: severity
    assert _keys(agent_client.get(url, {"sort": "newest"})) == [new_p2.key, mid_p1.key, old_p3.key]
    assert _keys(agent_client.get(url, {"sort": "oldest"})) == [old_p3.key, mid_p1.key, new_p2.key]
    assert _keys(agent_client.get(url, {"sort": "bogus"})) == [mid_p1.key, new_p2.key, old_p3.key]
    html = agent_client.get(url, {"sort": "newest"}).content.decode()
    assert '<option value="newest" selected>' in html


def _link(html: str, rel: str) -> str:
    match = re.search(rf'<a href="([^"]+)" rel="{rel}">', html)
    assert match, f"no {rel} link"
    # The links are query strings relative to the queue page.
    return reverse("cases:queue") + match.group(1).replace("&amp;", "&")


def test_queue_pagination_links_keep_the_filters(
    agent_client, organisation, contact, agent, now, monkeypatch
):
    monkeypatch.setattr(views, "QUEUE_PAGE_SIZE", 2)
    cases = [
        _case(organisation, contact, actor=agent, now=now - dt.timedelta(minutes=10 - i), severity="P2")
        for i in range(5)
    ]
    _case(organisation, contact, actor=agent, now=now, severity="P4")  # filtered out
    url = reverse("cases:queue")

    first = agent_client.get(url, {"severity": "P2", "sort": "oldest"})
    assert _keys(first) == [cases[0].key, cases[1].key]
    assert 'rel="prev"' not in first.content.decode()
    next_url = _link(first.content.decode(), "next")
    assert "severity=P2" in next_url
    assert "sort=oldest" in next_url

    second = agent_client.get(next_url)
    assert _keys(second) == [cases[2].key, cases[3].key]
    third = agent_client.get(_link(second.content.decode(), "next"))
    assert _keys(third) == [cases[4].key]
    assert 'rel="next"' not in third.content.decode()
    back = agent_client.get(_link(third.content.decode(), "prev"))
    assert _keys(back) == [cases[2].key, cases[3].key]


def test_queue_page_size_is_50(agent_client, organisation, now):
    contact = factories.ContactFactory(organisation=organisation)
    for i in range(51):
        factories.CaseFactory(
            organisation=organisation, requester=contact, created_at=now - dt.timedelta(minutes=i)
        )
    response = agent_client.get(reverse("cases:queue"))
    assert len(_keys(response)) == 50
    assert 'rel="next"' in response.content.decode()


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage!!",
        "eyJ2IjpbXX0",  # {"v":[]}: wrong length
        # {"v":["P1","2024-01-01T00:00:00+00:00","abc"]}: the id is not a number
        "eyJ2IjpbIlAxIiwiMjAyNC0wMS0wMVQwMDowMDowMCswMDowMCIsImFiYyJdfQ",
    ],
)
def test_invalid_cursor_shows_a_message_and_the_first_page(agent_client, new_case, cursor):
    response = agent_client.get(reverse("cases:queue"), {"cursor": cursor})
    assert response.status_code == 200
    assert _keys(response) == [new_case.key]
    assert any("page link" in m for m in _messages(response))


def test_out_of_range_cursor_is_not_an_error(agent_client, new_case):
    # Decodes fine, but the id does not fit a database integer.
    raw = json.dumps({"v": ["P2", "2000-01-01T00:00:00+00:00", 10**30]}).encode()
    cursor = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    response = agent_client.get(reverse("cases:queue"), {"cursor": cursor})
    assert response.status_code == 200


def test_queue_query_count_does_not_grow_with_the_page(
    agent_client, organisation, agent, other_agent, django_assert_num_queries
):
    team = factories.TeamFactory(name="Tier 2", slug="tier-2")

    def add_cases(n: int) -> None:
        for i in range(n):
            org = factories.OrganisationFactory()
            factories.CaseFactory(
                organisation=org,
                assignee=agent if i % 2 else other_agent,
                team=team,
                severity=f"P{i % 4 + 1}",
                tags=[f"tag-{i % 3}", "common"],
            )

    url = reverse("cases:queue")
    add_cases(5)
    with CaptureQueriesContext(connection) as ctx:
        small = agent_client.get(url)
    assert len(_keys(small)) == 5
    queries_for_5 = len(ctx.captured_queries)

    add_cases(35)
    with django_assert_num_queries(queries_for_5):
        large = agent_client.get(url)
    assert len(_keys(large)) == 40


# --- Case page ---------------------------------------------------------------------------------


def test_case_page_header_and_fields(agent_client, organisation, contact, agent, now):
    team = factories.TeamFactory(name="Payments", slug="payments")
    case = _case(
        organisation,
        contact,
        actor=agent,
        now=now,
        title="Checkout fails",
        severity="P2",
        team=team,
        assignee=agent,
        product_area="Checkout",
        tags=["billing", "outage"],
    )
    html = agent_client.get(case.get_absolute_url()).content.decode()
    for text in (
        case.key,
        "Checkout fails",
        "unconfirmed",
        "Acme Corp",
        "Enterprise",
        "Carla Customer",
        "carla@acme.example",
        "Alice Agent",
        "Payments",
        "Checkout",
        "billing",
        "outage",
        "First response",
        "Not yet",
        "0 times",
    ):
        assert text in html, text
    assert '<span class="pill sev sev-P2 warn"' in html


def test_case_page_times_are_in_the_viewers_zone(agent_client, organisation, contact, agent):
    with time_machine.travel(dt.datetime(2025, 1, 15, 9, 30, tzinfo=dt.UTC), tick=False):
        case = _case(organisation, contact, actor=agent, now=dt.datetime(2025, 1, 15, 9, 30, tzinfo=dt.UTC))
        agent_client.cookies["tz"] = "Europe/Berlin"
        html = agent_client.get(case.get_absolute_url()).content.decode()
    assert "15 Jan 2025 10:30 CET" in html


def test_case_timeline_tells_internal_notes_from_public_replies(agent_client, new_case, agent, now):
    services.add_internal_note(new_case, body="Customer is on the old plan", actor=agent, now=now)
    services.add_public_reply(new_case, body="We are looking into it", actor=agent, now=now)
    services.record_event(
        new_case, "sla_breached", actor=None, now=now, field="first_response", new="breached"
    )

    html = agent_client.get(new_case.get_absolute_url()).content.decode()
    note = re.search(r'<li class="ev ev-internal_note".*?</li>', html, re.S).group(0)
    reply = re.search(r'<li class="ev ev-public_reply".*?</li>', html, re.S).group(0)
    assert "Internal note" in note
    assert "Customer is on the old plan" in note
    assert "Public reply to the customer" in reply
    assert "Queued for delivery" in reply  # not "sent" before the mail server has it
    assert "We are looking into it" in reply
    assert "Alice Agent" in note
    # Oldest first: created, note, reply, then the other app's event, rendered generically.
    kinds = re.findall(r'<li class="ev ev-[a-z_]+" data-kind="([a-z_]+)">', html)
    assert kinds == ["created", "internal_note", "public_reply", "sla_breached"]
    assert "SLA breached" in html  # other apps' kinds get their registered label
    assert "Public reply — e-mailed to carla@acme.example" in html
    assert "Internal note — never shown to the customer" in html


def test_every_input_on_the_case_page_has_a_label(agent_client, new_case):
    html = agent_client.get(new_case.get_absolute_url()).content.decode()
    ids = re.findall(r'<(?:input|select|textarea)[^>]*\bid="([^"]+)"', html)
    visible = [i for i in ids if f'id="{i}"' in html and not re.search(rf'type="hidden"[^>]*id="{i}"', html)]
    assert visible
    for input_id in visible:
        assert f'<label for="{input_id}"' in html, input_id


# --- Actions -----------------------------------------------------------------------------------


def test_public_reply_is_recorded_and_emailed(
    agent_client, new_case, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = agent_client.post(reverse("cases:reply", args=[new_case.key]), {"body": "We are on it."})
    assert response.status_code == 302
    assert response["Location"] == new_case.get_absolute_url()
    event = new_case.events.get(kind="public_reply")
    assert event.body == "We are on it."
    assert event.is_public
    follow = agent_client.get(response["Location"])
    assert "Reply recorded and queued for delivery to carla@acme.example." in follow.content.decode()
    assert mailoutbox == []
    assert deliver_mail() == 1
    assert [m.to for m in mailoutbox] == [["carla@acme.example"]]
    assert "Sent</strong> to carla@acme.example" in agent_client.get(new_case.get_absolute_url()).text


def test_internal_note_is_recorded_and_not_emailed(
    agent_client, new_case, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = agent_client.post(reverse("cases:note", args=[new_case.key]), {"body": "Looks like #4411"})
    assert response.status_code == 302
    event = new_case.events.get(kind="internal_note")
    assert event.body == "Looks like #4411"
    assert not event.is_public
    assert deliver_mail() == 0
    assert mailoutbox == []


def test_empty_reply_is_refused_with_400(agent_client, new_case):
    response = agent_client.post(reverse("cases:reply", args=[new_case.key]), {"body": "   "})
    assert response.status_code == 400
    assert "A reply cannot be empty." in response.content.decode()
    assert not new_case.events.filter(kind="public_reply").exists()


def test_reply_to_a_closed_case_keeps_the_typed_text(agent_client, new_case, agent, now):
    services.transition(new_case, Status.RESOLVED, actor=agent, now=now)
    services.transition(new_case, Status.CLOSED, actor=None, now=now)
    response = agent_client.post(
        reverse("cases:reply", args=[new_case.key]), {"body": "One more thing we found"}
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert "is closed" in html
    assert "One more thing we found</textarea>" in html
    assert not new_case.events.filter(kind="public_reply").exists()


def test_triage_confirms_severity_and_sets_the_owner(agent_client, new_case, agent):
    response = agent_client.post(
        reverse("cases:transition", args=[new_case.key]),
        {"to": "triaged", "severity": "P1", "assignee": "alice", "team": "", "version": new_case.version},
    )
    assert response.status_code == 302
    new_case.refresh_from_db()
    assert new_case.status == Status.TRIAGED
    assert new_case.severity == "P1"
    assert new_case.severity_confirmed
    assert new_case.assignee == agent
    kinds = list(new_case.events.values_list("kind", flat=True))
    assert kinds == ["created", "severity_changed", "assignee_changed", "status_changed"]
    html = agent_client.get(new_case.get_absolute_url()).content.decode()
    assert "Status: New → Triaged" in html
    assert "Severity: P2 → P1" in html
    assert "Assignee: Unassigned → Alice Agent" in html


def test_status_select_offers_only_the_allowed_next_statuses(agent_client, new_case):
    html = agent_client.get(new_case.get_absolute_url()).content.decode()
    select = re.search(r'<select name="to".*?</select>', html, re.S).group(0)
    assert re.findall(r'<option value="([a-z_]+)"', select) == ["triaged", "resolved"]
    assert 'id="tr_severity"' in html


def test_illegal_transition_is_a_400_with_the_reason(agent_client, new_case):
    response = agent_client.post(
        reverse("cases:transition", args=[new_case.key]), {"to": "in_progress", "version": new_case.version}
    )
    assert response.status_code == 400
    assert "cannot go from" in response.content.decode()
    new_case.refresh_from_db()
    assert new_case.status == Status.NEW


def test_triage_without_owner_is_refused_and_keeps_the_choices(agent_client, new_case):
    response = agent_client.post(
        reverse("cases:transition", args=[new_case.key]),
        {"to": "triaged", "severity": "P1", "assignee": "", "team": "", "version": new_case.version},
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert "Set an owner (an assignee or a team) before triaging." in html
    severity_select = re.search(
        r'<select name="severity"[^>]*id="tr_severity".*?</select>', html, re.S
    ).group(0)
    assert '<option value="P1" selected>' in severity_select
    new_case.refresh_from_db()
    assert new_case.status == Status.NEW
    assert new_case.severity == "P2"


def test_move_through_the_lifecycle(agent_client, new_case, agent, now):
    url = reverse("cases:transition", args=[new_case.key])
    services.transition(new_case, Status.TRIAGED, actor=agent, now=now, severity="P2", assignee=agent)
    for to in ("in_progress", "waiting_on_customer", "in_progress", "resolved"):
        new_case.refresh_from_db()
        response = agent_client.post(url, {"to": to, "version": new_case.version})
        assert response.status_code == 302, response.content.decode()
    new_case.refresh_from_db()
    assert new_case.status == Status.RESOLVED
    assert new_case.last_resolved_at is not None
    html = agent_client.get(new_case.get_absolute_url()).content.decode()
    assert "Status: In progress → Resolved" in html


def test_transition_with_a_stale_version_is_a_409(agent_client, new_case, agent, now):
    stale = new_case.version
    services.update_case(new_case, actor=agent, now=now, title="Renamed meanwhile")
    response = agent_client.post(
        reverse("cases:transition", args=[new_case.key]), {"to": "resolved", "version": stale}
    )
    assert response.status_code == 409
    assert "changed by someone else" in response.content.decode()
    new_case.refresh_from_db()
    assert new_case.status == Status.NEW


def _fields(case, **changes) -> dict:
    data = {
        "title": case.title,
        "severity": case.severity,
        "assignee": case.assignee.username if case.assignee else "",
        "team": case.team.slug if case.team else "",
        "product_area": case.product_area,
        "tags": ", ".join(case.tags.values_list("name", flat=True)),
        "version": case.version,
    }
    data.update(changes)
    return data


def test_field_edit_records_one_event_per_change(agent_client, new_case, team):
    response = agent_client.post(
        reverse("cases:update", args=[new_case.key]),
        _fields(
            new_case,
            title="Checkout fails for EU shops",
            team="tier-2",
            tags="Billing, EU region",
            severity="P1",
        ),
    )
    assert response.status_code == 302
    new_case.refresh_from_db()
    assert new_case.title == "Checkout fails for EU shops"
    assert new_case.team == team
    assert sorted(new_case.tags.values_list("name", flat=True)) == ["billing", "eu-region"]
    kinds = sorted(new_case.events.exclude(kind="created").values_list("kind", flat=True))
    assert kinds == ["field_changed", "severity_changed", "tags_changed", "team_changed"]
    html = agent_client.get(new_case.get_absolute_url()).content.decode()
    assert "Tags: added billing, eu-region" in html
    assert "Team: No team → Tier 2" in html
    assert "Title: Checkout fails with 502 → Checkout fails for EU shops" in html


def test_field_edit_without_changes_records_nothing(agent_client, new_case):
    response = agent_client.post(reverse("cases:update", args=[new_case.key]), _fields(new_case))
    assert response.status_code == 302
    assert new_case.events.count() == 1
    assert "Nothing changed." in agent_client.get(response["Location"]).content.decode()


def test_invalid_tags_are_a_field_error(agent_client, new_case):
    response = agent_client.post(
        reverse("cases:update", args=[new_case.key]), _fields(new_case, tags="ok, n/a")
    )
    assert response.status_code == 400
    assert "n/a" in response.content.decode()
    assert not new_case.tags.exists()


def test_field_edit_with_a_stale_version_is_a_409_and_keeps_the_input(agent_client, new_case, agent, now):
    form = _fields(new_case, title="My better title")
    services.update_case(new_case, actor=agent, now=now, product_area="Payments")  # someone else, meanwhile
    new_case.refresh_from_db()
    response = agent_client.post(reverse("cases:update", args=[new_case.key]), form)
    assert response.status_code == 409
    html = response.content.decode()
    assert "changed by someone else" in html
    assert 'value="My better title"' in html
    new_case.refresh_from_db()
    assert new_case.title == "Checkout fails with 502"
    assert not new_case.events.filter(kind="field_changed", field="title").exists()
    # The re-rendered form carries the current version: saving again on purpose works.
    assert f'name="version" value="{new_case.version}"' in html


def test_agent_cannot_take_another_agents_case(agent_client, new_case, other_agent, manager, now):
    services.update_case(new_case, actor=manager, now=now, assignee=other_agent)
    new_case.refresh_from_db()
    response = agent_client.post(
        reverse("cases:update", args=[new_case.key]), _fields(new_case, assignee="alice")
    )
    assert response.status_code == 400
    assert "Only a manager can reassign a case that belongs to someone else." in response.content.decode()
    new_case.refresh_from_db()
    assert new_case.assignee == other_agent


def test_assignee_choices_are_staff_by_name(agent_client, new_case, other_agent, engineer):
    html = agent_client.get(new_case.get_absolute_url()).content.decode()
    select = re.search(r'<select name="assignee"[^>]*id="edit_assignee".*?</select>', html, re.S).group(0)
    assert '<option value="bob">Bob Builder</option>' in select
    assert "erik" not in select
    assert "Erik" not in select


# --- New case ----------------------------------------------------------------------------------


def test_create_case_with_an_existing_requester(agent_client, organisation, contact, team):
    response = agent_client.post(
        reverse("cases:create"),
        {
            "organisation": organisation.pk,
            "requester": contact.pk,
            "title": "Reports are empty",
            "description": "Since the upgrade.",
            "severity": "P2",
            "team": "tier-2",
            "assignee": "alice",
            "product_area": "Reporting",
            "tags": "reports",
        },
    )
    case = Case.objects.get(title="Reports are empty")
    assert response.status_code == 302
    assert response["Location"] == case.get_absolute_url()
    assert (case.requester, case.severity, case.team, case.assignee.username) == (
        contact,
        "P2",
        team,
        "alice",
    )
    assert list(case.tags.values_list("name", flat=True)) == ["reports"]
    assert case.events.get().kind == "created"


def test_create_case_with_a_new_contact(agent_client, organisation):
    response = agent_client.post(
        reverse("cases:create"),
        {
            "organisation": organisation.pk,
            "new_contact_name": "Dan Dev",
            "new_contact_email": "dan@acme.example",
            "title": "API returns 500",
            "severity": "P3",
        },
    )
    assert response.status_code == 302
    case = Case.objects.get(title="API returns 500")
    assert case.requester.email == "dan@acme.example"
    assert case.requester.organisation == organisation


def test_create_form_shows_field_errors(agent_client, organisation, contact):
    other = factories.ContactFactory(
        organisation=factories.OrganisationFactory(name="Globex"), name="Gina Globex"
    )
    response = agent_client.post(
        reverse("cases:create"),
        {
            "organisation": organisation.pk,
            "requester": other.pk,
            "title": "",
            "description": "Typed text kept",
        },
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert re.search(r'id="id_title_error"><li>This field is required.</li>', html)
    assert "Gina Globex belongs to Globex, not Acme Corp." in html
    assert "Typed text kept</textarea>" in html
    assert not Case.objects.exists()


def test_create_form_needs_a_requester(agent_client, organisation):
    response = agent_client.post(
        reverse("cases:create"), {"organisation": organisation.pk, "title": "x", "severity": "P3"}
    )
    assert response.status_code == 400
    assert "Choose the requester, or add a new contact." in response.content.decode()


def test_new_contact_is_not_kept_when_the_case_is_refused(agent_client, organisation, monkeypatch):
    def refuse(**kwargs):
        raise DomainError("Refused for the test.", field="title")

    monkeypatch.setattr(services, "create_case", refuse)
    response = agent_client.post(
        reverse("cases:create"),
        {
            "organisation": organisation.pk,
            "new_contact_name": "Dan Dev",
            "new_contact_email": "dan@acme.example",
            "title": "API returns 500",
            "severity": "P3",
        },
    )
    assert response.status_code == 400
    assert "Refused for the test." in response.content.decode()
    assert not Contact.objects.filter(email="dan@acme.example").exists()


def test_create_page_labels_every_input(agent_client, organisation, contact):
    html = agent_client.get(reverse("cases:create")).content.decode()
    ids = re.findall(r'<(?:input|select|textarea)[^>]*\bid="([^"]+)"', html)
    assert len(ids) >= 10
    for input_id in ids:
        assert f'<label for="{input_id}"' in html, input_id
    assert "Carla Customer &lt;carla@acme.example&gt;" in html


def test_case_page_query_count_does_not_grow_with_the_timeline(
    agent_client, new_case, agent, now, django_assert_num_queries
):
    services.add_internal_note(new_case, body="first", actor=agent, now=now)
    services.add_public_reply(new_case, body="update 0", actor=agent, now=now)
    with CaptureQueriesContext(connection) as ctx:
        agent_client.get(new_case.get_absolute_url())
    for i in range(1, 20):
        services.add_public_reply(new_case, body=f"update {i}", actor=agent, now=now)
    with django_assert_num_queries(len(ctx.captured_queries)):
        response = agent_client.get(new_case.get_absolute_url())
    assert response.content.decode().count('data-kind="public_reply"') == 20
    assert response.content.decode().count('data-delivery="queued"') == 20  # one query for all
