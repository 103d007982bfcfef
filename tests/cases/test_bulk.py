"""Bulk changes: each case through the same services (its own events, lifecycle, assignment rules and
version check), a result per case, in the browser and through the API."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse

from cases import bulk, services
from cases.models import Case, EventKind, Status
from supportdesk.core.errors import DomainError

pytestmark = pytest.mark.django_db

API = "/api/cases/bulk/"
T0 = dt.datetime(2026, 3, 4, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def make_case(organisation, contact, agent):
    def make(title="Something is broken", **kwargs) -> Case:
        return services.create_case(
            title=title, organisation=organisation, requester=contact, actor=agent, now=T0, **kwargs
        )

    return make


def _closed(make_case, agent) -> Case:
    case = make_case("Old problem")
    services.transition(case, Status.RESOLVED, actor=agent, now=T0)
    services.auto_close_resolved(now=T0 + dt.timedelta(days=8))
    case.refresh_from_db()
    assert case.status == Status.CLOSED
    return case


def _run(cases, action, raw, *, actor, versions=None):
    keys = [c.key if versions is None else f"{c.key}:{versions[c.key]}" for c in cases]
    value = bulk.parse_value(action, raw, actor=actor)
    return bulk.apply(bulk.targets_from_keys(keys), action, value, actor=actor, now=T0)


# --- The service ----------------------------------------------------------------------------------------


def test_each_case_is_assigned_through_the_service_with_its_own_event(make_case, agent):
    cases = [make_case(f"Case {i}") for i in range(3)]
    result = _run(cases, "assign", "me", actor=agent)
    assert [(o.key, o.text) for o in result.changed] == [
        (c.key, "assignee Unassigned → Alice Agent") for c in cases
    ]
    assert result.refused == []
    for case in cases:
        case.refresh_from_db()
        assert (case.assignee, case.version) == (agent, 2)
        assert case.events.filter(kind=EventKind.ASSIGNEE_CHANGED, new_value="alice").count() == 1


def test_a_refused_case_is_reported_and_the_others_still_change(make_case, agent):
    first = make_case("First")
    closed = _closed(make_case, agent)
    last = make_case("Last")
    for case in (first, last):
        services.transition(case, Status.TRIAGED, actor=agent, now=T0, severity="P3", assignee=agent)
    result = _run([first, closed, last], "status", "in_progress", actor=agent)
    assert [o.key for o in result.changed] == [first.key, last.key]
    assert result.changed[0].text == "status Triaged → In progress"
    assert [(o.key, o.text) for o in result.refused] == [
        (closed.key, "A case cannot go from “closed” to “in_progress”. Allowed next: none.")
    ]
    assert Case.objects.get(pk=last.pk).status == Status.IN_PROGRESS
    assert Case.objects.get(pk=closed.pk).status == Status.CLOSED


def test_a_case_changed_since_the_queue_was_loaded_is_refused_not_overwritten(make_case, agent, other_agent):
    seen = make_case("Seen")
    raced = make_case("Raced")
    versions = {seen.key: seen.version, raced.key: raced.version}
    services.update_case(raced, severity="P1", actor=other_agent, now=T0)  # meanwhile
    result = _run([seen, raced], "severity", "P2", actor=agent, versions=versions)
    assert [o.key for o in result.changed] == [seen.key]
    assert len(result.refused) == 1
    assert "was changed by someone else since you loaded it (your version 1, now 2)" in result.refused[0].text
    assert Case.objects.get(pk=raced.pk).severity == "P1"


def test_an_agent_cannot_bulk_reassign_a_colleagues_case_but_a_manager_can(
    make_case, agent, other_agent, manager
):
    theirs = make_case("Bob's", assignee=other_agent)
    free = make_case("Free")
    result = _run([theirs, free], "assign", "me", actor=agent)
    assert [o.key for o in result.changed] == [free.key]
    assert [(o.key, o.text) for o in result.refused] == [
        (theirs.key, "Only a manager can reassign a case that belongs to someone else.")
    ]
    assert Case.objects.get(pk=theirs.pk).assignee == other_agent

    again = _run([theirs], "assign", "alice", actor=manager)
    assert [o.text for o in again.changed] == ["assignee Bob Builder → Alice Agent"]


def test_what_already_is_so_is_said_and_not_recorded(make_case, agent, team):
    moved = make_case("In tier 2", team=team)
    other = make_case("No team")
    result = _run([moved, other], "team", "tier-2", actor=agent)
    assert [(o.key, o.text) for o in result.unchanged] == [(moved.key, "already in that team")]
    assert [(o.key, o.text) for o in result.changed] == [(other.key, "team No team → Tier 2")]
    assert not moved.events.filter(kind=EventKind.TEAM_CHANGED).exists()


def test_tags_are_added_and_removed_one_case_at_a_time(make_case, agent):
    tagged = make_case("Tagged", tags=["billing", "vip"])
    plain = make_case("Plain")
    added = _run([tagged, plain], "add_tags", "Outage, vip", actor=agent)
    assert [(o.key, o.text) for o in added.changed] == [
        (tagged.key, "tags added: outage"),
        (plain.key, "tags added: outage, vip"),
    ]
    removed = _run([tagged, plain], "remove_tags", ["billing"], actor=agent)
    assert [o.key for o in removed.changed] == [tagged.key]
    assert [o.key for o in removed.unchanged] == [plain.key]
    assert sorted(Case.objects.get(pk=tagged.pk).tags.values_list("name", flat=True)) == ["outage", "vip"]


def test_bad_values_and_keys_are_refused_before_anything_changes(agent, monkeypatch):
    with pytest.raises(DomainError, match="no support agent with the username “ghost”"):
        bulk.parse_value("assign", "ghost", actor=agent)
    with pytest.raises(DomainError, match="is not a case status"):
        bulk.parse_value("status", "done", actor=agent)
    with pytest.raises(DomainError, match="Not a valid tag: “no-way!”"):
        bulk.parse_value("add_tags", ["ok", "no way!"], actor=agent)
    with pytest.raises(DomainError, match="not a bulk action"):
        bulk.parse_value("explode", "", actor=agent)
    with pytest.raises(DomainError, match="Not case keys: banana"):
        bulk.targets_from_keys(["CASE-1", "banana"])
    monkeypatch.setattr(bulk, "MAX_CASES", 2)
    with pytest.raises(bulk.BulkRefused, match=r"at most 2 cases at once \(you selected 3\)"):
        bulk.targets_from_keys(["CASE-1", "CASE-2", "case-3", "CASE-1"])


def test_a_macro_is_applied_to_each_case_through_the_macro_service(make_case, agent, other_agent):
    from cases import macros
    from cases.models import CaseEvent, EventKind, Macro

    greeting = macros.save_macro(
        Macro(),
        actor=agent,
        now=T0,
        name="Looking into it",
        body="Hello {{requester_first_name}}, we are on {{case_key}}.",
        shared=False,
        add_tags=["triaged-in-bulk"],
    )
    first, second = make_case("One"), make_case("Two")
    result = _run([first, second], "macro", str(greeting.pk), actor=agent)
    assert [o.key for o in result.changed] == [first.key, second.key]
    for case in (first, second):
        case.refresh_from_db()
        reply = CaseEvent.objects.filter(case=case, kind=EventKind.PUBLIC_REPLY).get()
        assert f"we are on {case.key}." in reply.body
        assert "triaged-in-bulk" in {t.name for t in case.tags.all()}
    # Another agent's personal macro is not theirs to apply.
    with pytest.raises(DomainError, match="Choose one of your macros"):
        bulk.parse_value("macro", str(greeting.pk), actor=other_agent)


def test_reopening_is_not_a_bulk_change(agent):
    with pytest.raises(DomainError, match="Reopening needs the customer's reason"):
        bulk.parse_value("status", "reopened", actor=agent)


# --- The browser ----------------------------------------------------------------------------------------


def test_the_queue_ticks_cases_with_the_version_seen(client, agent, make_case):
    case = make_case("Tick me")
    client.force_login(agent)
    html = client.get(reverse("cases:queue")).content.decode()
    assert f'name="keys" value="{case.key}:1" form="bulk-form"' in html
    assert '<form id="bulk-form" method="post" action="/cases/bulk/"' in html


def test_the_result_page_lists_what_changed_and_what_was_refused(client, agent, make_case, other_agent):
    free = make_case("Free")
    theirs = make_case("Theirs", assignee=other_agent)
    client.force_login(agent)
    response = client.post(
        reverse("cases:bulk"),
        {
            "action": "assign",
            "assignee": "me",
            "keys": [f"{free.key}:1", f"{theirs.key}:1"],
            "filter_query": "sort=due",
        },
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "1 changed, 0 already so, 1 refused." in html
    assert f"{free.key}</a>: assignee Unassigned → Alice Agent" in html
    assert f"{theirs.key}</a>: Only a manager can reassign a case that belongs to someone else." in html
    assert 'href="/cases/?sort=due"' in html  # back to the same queue


def test_every_case_matching_the_filters_up_to_the_cap(client, agent, make_case, monkeypatch):
    p1s = [make_case(f"P1 {i}", severity="P1") for i in range(2)]
    make_case("P3", severity="P3")
    client.force_login(agent)
    data = {"action": "severity", "severity": "P2", "all_matching": "1", "filter_query": "severity=P1"}
    response = client.post(reverse("cases:bulk"), data)
    assert "2 changed" in response.content.decode()
    assert {Case.objects.get(pk=c.pk).severity for c in p1s} == {"P2"}

    monkeypatch.setattr(bulk, "MAX_CASES", 2)
    too_many = client.post(reverse("cases:bulk"), {**data, "severity": "P4", "filter_query": ""})
    assert too_many.status_code == 400
    html = too_many.content.decode()
    assert "These filters match 3 cases; a bulk change takes at most 2 at once." in html
    assert not Case.objects.filter(severity="P4").exists()


def test_the_browser_refuses_a_bad_request_as_a_whole(client, agent, engineer, make_case):
    case = make_case()
    client.force_login(agent)
    assert client.post(reverse("cases:bulk"), {"action": "assign", "assignee": "me"}).status_code == 400
    assert client.post(reverse("cases:bulk"), {"action": "nope", "keys": [case.key]}).status_code == 400
    client.force_login(engineer)
    assert (
        client.post(
            reverse("cases:bulk"), {"action": "assign", "assignee": "me", "keys": [case.key]}
        ).status_code
        == 403
    )
    case.refresh_from_db()
    assert case.assignee is None


# --- The API ----------------------------------------------------------------------------------------------


def test_api_changes_cases_and_answers_per_case(client, agent, make_case):
    open_case = make_case("Open")
    closed = _closed(make_case, agent)
    client.force_login(agent)
    response = client.post(
        API,
        {"keys": [open_case.key, closed.key], "action": "status", "value": "resolved"},
        content_type="application/json",
    )
    assert response.status_code == 200
    assert response.json() == {
        "action": "status",
        "changed": [{"key": open_case.key, "change": "status New → Resolved"}],
        "unchanged": [],
        "refused": [
            {"key": closed.key, "reason": "A case cannot go from “closed” to “resolved”. Allowed next: none."}
        ],
    }


def test_api_by_filter_and_with_versions(client, agent, make_case, other_agent):
    first = make_case("First", tags=["billing"])
    second = make_case("Second", tags=["billing"])
    make_case("Untagged")
    client.force_login(agent)
    stale = client.post(
        API,
        {"keys": [first.key], "versions": {first.key: 7}, "action": "add_tags", "value": ["vip"]},
        content_type="application/json",
    ).json()
    assert stale["changed"] == []
    assert "your version 7, now 1" in stale["refused"][0]["reason"]

    by_filter = client.post(
        API, {"filter": "tag=billing", "action": "assign", "value": "bob"}, content_type="application/json"
    ).json()
    assert [c["key"] for c in by_filter["changed"]] == [first.key, second.key]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"action": "assign", "value": "me"}, "keys"),
        ({"keys": ["CASE-1"], "filter": "", "action": "assign", "value": "me"}, "keys"),
        ({"keys": ["CASE-1"], "action": "paint", "value": "red"}, "action"),
        ({"keys": ["CASE-1"], "action": "assign", "value": "ghost"}, "value"),
        ({"keys": ["CASE-1"], "action": "severity", "value": "P9"}, "value"),
        ({"keys": ["CASE-1"], "action": "add_tags", "value": 12}, "value"),
        ({"keys": ["not-a-key"], "action": "severity", "value": "P1"}, "keys"),
        ({"filter": "colour=red", "action": "severity", "value": "P1"}, "filter"),
        ({"keys": [f"CASE-{i}" for i in range(1, 502)], "action": "severity", "value": "P1"}, "keys"),
    ],
)
def test_api_bad_requests_are_400_naming_the_field(client, agent, make_case, payload, field):
    case = make_case()
    client.force_login(agent)
    response = client.post(API, payload, content_type="application/json")
    assert response.status_code == 400
    assert field in response.json()
    case.refresh_from_db()
    assert case.version == 1


def test_api_plain_agent_cannot_do_in_bulk_what_they_cannot_do_one_by_one(
    client, agent, other_agent, make_case
):
    theirs = make_case("Theirs", assignee=other_agent)
    client.force_login(agent)
    one = client.patch(f"/api/cases/{theirs.key}/", {"assignee": "alice"}, content_type="application/json")
    assert one.status_code == 400
    many = client.post(
        API, {"keys": [theirs.key], "action": "assign", "value": "me"}, content_type="application/json"
    )
    assert many.json()["refused"] == [
        {"key": theirs.key, "reason": "Only a manager can reassign a case that belongs to someone else."}
    ]
    assert Case.objects.get(pk=theirs.pk).assignee == other_agent


def test_api_is_for_support_staff_and_in_the_schema(client, engineer, agent):
    client.force_login(engineer)
    assert (
        client.post(
            API, {"keys": ["CASE-1"], "action": "assign"}, content_type="application/json"
        ).status_code
        == 403
    )
    client.force_login(agent)
    schema = client.get("/api/schema/?format=json").json()
    assert "post" in schema["paths"]["/api/cases/bulk/"]
    assert set(schema["paths"]["/api/saved-views/{id}/"]) >= {"get", "patch", "delete"}
