"""An imported history ends with the SLA clock rows a live case with the same history has.

Each scenario is played twice: live, through ``cases.services`` (the SLA app moves the clocks on
``case_event_recorded``), and as an XES log imported with a mapping that knows replies and triage.
Every field of every (target, run) must be equal. The scenarios keep clear of warning points while
clocks run, since the live sweep is not run here (its warnings are covered in test_servicenow).
"""

from __future__ import annotations

import datetime as dt

import pytest

from cases import services as case_services
from sla.models import SlaClock
from tests.imports.conftest import run

pytestmark = pytest.mark.django_db

FIELDS = [
    "state", "policy_id", "target_minutes", "business_time", "warning_ratio", "started_at", "due_at",
    "warn_at", "paused_at", "pauses", "paused_total", "consumed", "remaining_at_pause", "warned_at", "met_at",
    "breached_at", "cancelled_at",
]  # fmt: skip

MAPPING = """
[source]
name = "Parity log"
format = "xes"
key = "concept:name"
state = "concept:name"
transition = "lifecycle:transition"
timestamp = "time:timestamp"
actor = "org:resource"

[status]
"Open" = "new"
"Reply" = "unchanged"
"Assign" = "triaged"
"Work" = "in_progress"
"Wait" = "waiting_on_customer"
"Customer replied" = "in_progress"
"Resolve" = "resolved"
"Reopen" = "reopened"
"Priority" = "unchanged"

[severity]
field = "priority"

[organisation]
name = "Acme Corp"

[requester]
field = "trace:requester"

[people]
"alice" = "alice"

[replies]
states = ["Reply"]
"""


def xes(key: str, events: list[tuple[str, dt.datetime, dict[str, str]]]) -> str:
    body = []
    for activity, at, extra in events:
        attrs = "".join(f'<string key="{k}" value="{v}"/>' for k, v in extra.items())
        body.append(
            f'<event><string key="concept:name" value="{activity}"/>'
            f'<date key="time:timestamp" value="{at.isoformat()}"/>'
            f'<string key="org:resource" value="alice"/>{attrs}</event>'
        )
    return (
        '<log xmlns="http://www.xes-standard.org/"><trace>'
        f'<string key="concept:name" value="{key}"/><string key="requester" value="carla@acme.example"/>'
        + "".join(body)
        + "</trace></log>"
    )


def rows(case) -> dict[tuple[str, int], dict]:
    return {
        (c.target, c.run): {f: getattr(c, f) for f in FIELDS}
        for c in SlaClock.objects.filter(case=case).order_by("target", "run")
    }


def replay(tmp_path, key, events, *, now):
    path = tmp_path / f"{key}.xes"
    path.write_text(xes(key, events))
    job = run(path, format="xes", mapping_text=MAPPING, now=now)
    assert (job.cases_created, job.cases_rejected) == (1, 0), job.rejections
    from cases.models import Case

    return Case.objects.get(external_ref=key)


def test_a_24x7_case_with_waiting_severity_change_and_reopening(tmp_path, organisation, contact, agent):
    """Enterprise P2 (24x7: response 1 h, triage 2 h, updates 2 h, resolution 24 h), raised to P1
    (15 min, 30 min, 30 min, 8 h) after waiting an hour on the customer, then reopened."""
    t0 = dt.datetime(2023, 3, 1, 10, 0, tzinfo=dt.UTC)

    def at(minutes):
        return t0 + dt.timedelta(minutes=minutes)

    live = case_services.create_case(
        title="Live",
        organisation=organisation,
        requester=contact,
        severity="P2",
        assignee=agent,
        actor=agent,
        now=t0,
    )
    case_services.add_public_reply(live, body="Looking", actor=agent, now=at(10))
    case_services.transition(live, "triaged", severity="P2", actor=agent, now=at(20))
    case_services.transition(live, "in_progress", actor=agent, now=at(25))
    case_services.transition(live, "waiting_on_customer", actor=agent, now=at(40))
    case_services.transition(live, "in_progress", actor=agent, now=at(100))
    case_services.add_public_reply(live, body="Update", actor=agent, now=at(110))
    case_services.update_case(live, severity="P1", actor=agent, now=at(112))
    case_services.add_public_reply(live, body="Update", actor=agent, now=at(120))
    case_services.transition(live, "resolved", actor=agent, now=at(140))
    case_services.transition(live, "reopened", actor=agent, now=at(200))
    case_services.transition(live, "in_progress", actor=agent, now=at(205))
    case_services.add_public_reply(live, body="Again", actor=agent, now=at(215))
    case_services.transition(live, "resolved", actor=agent, now=at(230))

    imported = replay(
        tmp_path,
        "PAR-1",
        [
            ("Open", t0, {"priority": "P2"}),
            ("Reply", at(10), {}),
            ("Assign", at(20), {}),
            ("Work", at(25), {}),
            ("Wait", at(40), {}),
            ("Customer replied", at(100), {}),
            ("Reply", at(110), {}),
            ("Priority", at(112), {"priority": "P1"}),
            ("Reply", at(120), {}),
            ("Resolve", at(140), {}),
            ("Reopen", at(200), {}),
            ("Work", at(205), {}),
            ("Reply", at(215), {}),
            ("Resolve", at(230), {}),
        ],
        now=at(300),
    )
    expected = rows(live)
    assert len(expected) == 10  # 2 resolution runs, 6 update runs, response, triage
    assert rows(imported) == expected


def test_business_hours_a_weekend_pause_and_a_target_the_new_policy_lacks(
    tmp_path, organisation, contact, agent
):
    """Enterprise P3 (business hours of the default calendar, Mon-Fri 09:00-17:00 UTC) opened on a
    Friday at 16:00, waiting on the customer over the weekend, lowered to P4 (which has no update
    cadence: that clock is cancelled) on Monday and resolved on Tuesday."""
    t0 = dt.datetime(2023, 3, 3, 16, 0, tzinfo=dt.UTC)  # Friday

    def at(days=0, hours=0, minutes=0):
        return t0 + dt.timedelta(days=days, hours=hours, minutes=minutes)

    live = case_services.create_case(
        title="Live",
        organisation=organisation,
        requester=contact,
        severity="P3",
        assignee=agent,
        actor=agent,
        now=t0,
    )
    case_services.add_public_reply(live, body="Looking", actor=agent, now=at(minutes=30))
    case_services.transition(live, "triaged", severity="P3", actor=agent, now=at(minutes=40))
    case_services.transition(live, "in_progress", actor=agent, now=at(minutes=50))
    case_services.transition(live, "waiting_on_customer", actor=agent, now=at(hours=1))
    monday = dt.datetime(2023, 3, 6, 10, 0, tzinfo=dt.UTC)
    case_services.transition(live, "in_progress", actor=agent, now=monday)
    case_services.update_case(live, severity="P4", actor=agent, now=monday + dt.timedelta(minutes=30))
    case_services.add_public_reply(live, body="Update", actor=agent, now=monday + dt.timedelta(hours=1))
    tuesday = dt.datetime(2023, 3, 7, 12, 0, tzinfo=dt.UTC)
    case_services.transition(live, "resolved", actor=agent, now=tuesday)

    imported = replay(
        tmp_path,
        "PAR-2",
        [
            ("Open", t0, {"priority": "P3"}),
            ("Reply", at(minutes=30), {}),
            ("Assign", at(minutes=40), {}),
            ("Work", at(minutes=50), {}),
            ("Wait", at(hours=1), {}),
            ("Customer replied", monday, {}),
            ("Priority", monday + dt.timedelta(minutes=30), {"priority": "P4"}),
            ("Reply", monday + dt.timedelta(hours=1), {}),
            ("Resolve", tuesday, {}),
        ],
        now=dt.datetime(2023, 3, 8, tzinfo=dt.UTC),
    )
    expected = rows(live)
    assert ("update_cadence", 2) in expected
    assert expected[("update_cadence", 2)]["state"] == "cancelled"
    assert expected[("resolution", 1)]["paused_total"] == dt.timedelta(hours=1)
    assert rows(imported) == expected
