"""The live path and the import path end with the same SLA clocks: both apply ``sla.engine``.

Each story is played twice: live, through ``cases.services`` (the SLA app moves the clocks as each
event is recorded) with the sweep run at every warning point as it comes, and as an XES log
imported with a mapping that knows replies and triage (the import settles every warning and
breach at the instant it passed). Every stored field of every (target, run) must be equal.

The one thing the two cannot share is the instant a breach is noticed: the sweep records it when
it runs, after the due instant; the import knows the due instant itself. So the stories breach
only where both notice it at the same instant (a severity raise that puts a deadline in the past),
and the last test pins the difference for a clock met late.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest

from cases import services as case_services
from cases.models import Case
from sla import services
from sla.models import ClockState, SlaClock, Target
from tests.factories import at as local
from tests.imports.conftest import run

pytestmark = pytest.mark.django_db

FIELDS = [
    "state", "policy_id", "target_minutes", "business_time", "warning_ratio", "started_at", "due_at",
    "warn_at", "paused_at", "pauses", "paused_total", "consumed", "remaining_at_pause", "warned_at", "met_at",
    "breached_at", "cancelled_at",
]  # fmt: skip

MAPPING = """
[source]
name = "Paths log"
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
name = "{organisation}"

[requester]
field = "trace:requester"

[people]
"alice" = "alice"

[replies]
states = ["Reply"]
"""


@dataclass(frozen=True)
class Step:
    """One event of a story: what happens at ``at`` (``arg``: the severity of a priority change)."""

    at: dt.datetime
    kind: str  # open, reply, triage, work, wait, customer, severity, resolve, reopen
    arg: str = ""


XES_ACTIVITY = {
    "open": "Open",
    "reply": "Reply",
    "triage": "Assign",
    "work": "Work",
    "wait": "Wait",
    "customer": "Customer replied",
    "severity": "Priority",
    "resolve": "Resolve",
    "reopen": "Reopen",
}


def sweep_warnings_before(case: Case, instant: dt.datetime) -> None:
    """Run the sweep at each warning point of the case's running clocks before ``instant`` (a sweep
    that never lags), so the live warnings carry the instants the import knows."""
    while True:
        warn_at = (
            SlaClock.objects.filter(case=case, state=ClockState.RUNNING, warned_at=None, warn_at__lt=instant)
            .order_by("warn_at")
            .values_list("warn_at", flat=True)
            .first()
        )
        if warn_at is None:
            return
        services.record_due_warnings_and_breaches(now=warn_at)


def live(steps: list[Step], *, organisation, requester, agent, until: dt.datetime) -> Case:
    """The story through the services: each event at its instant, the sweep as time passes."""
    case = None
    for step in steps:
        if case is not None:
            sweep_warnings_before(case, step.at)
            case.refresh_from_db()
        now = step.at
        if step.kind == "open":
            case = case_services.create_case(
                title="Live",
                organisation=organisation,
                requester=requester,
                severity=step.arg,
                assignee=agent,
                actor=agent,
                now=now,
            )
        elif step.kind == "reply":
            case_services.add_public_reply(case, body="Update", actor=agent, now=now)
        elif step.kind == "triage":
            case_services.transition(case, "triaged", severity=case.severity, actor=agent, now=now)
        elif step.kind == "work":
            case_services.transition(case, "in_progress", actor=agent, now=now)
        elif step.kind == "wait":
            case_services.transition(case, "waiting_on_customer", actor=agent, now=now)
        elif step.kind in ("customer", "reopen"):  # the customer writes (back to work / reopened)
            case, _ = case_services.add_customer_message(case, body="Still broken", sender=requester, now=now)
        elif step.kind == "severity":
            case_services.update_case(case, severity=step.arg, actor=agent, now=now)
        elif step.kind == "resolve":
            case_services.transition(case, "resolved", actor=agent, now=now)
        services.record_due_warnings_and_breaches(now=now)  # what the event made due at once
    assert case is not None
    sweep_warnings_before(case, until)
    return case


def imported(tmp_path, key: str, steps: list[Step], *, organisation, requester, now: dt.datetime) -> Case:
    """The same story as an XES log, imported at ``now``."""
    body = []
    for step in steps:
        priority = f'<string key="priority" value="{step.arg}"/>' if step.arg else ""
        body.append(
            f'<event><string key="concept:name" value="{XES_ACTIVITY[step.kind]}"/>'
            f'<date key="time:timestamp" value="{step.at.isoformat()}"/>'
            f'<string key="org:resource" value="alice"/>{priority}</event>'
        )
    path = tmp_path / f"{key}.xes"
    path.write_text(
        '<log xmlns="http://www.xes-standard.org/"><trace>'
        f'<string key="concept:name" value="{key}"/><string key="requester" value="{requester.email}"/>'
        + "".join(body)
        + "</trace></log>"
    )
    job = run(path, format="xes", mapping_text=MAPPING.format(organisation=organisation.name), now=now)
    assert (job.cases_created, job.cases_rejected) == (1, 0), job.rejections
    return Case.objects.get(external_ref=key)


def rows(case: Case) -> dict[tuple[str, int], dict]:
    return {
        (c.target, c.run): {f: getattr(c, f) for f in FIELDS}
        for c in SlaClock.objects.filter(case=case).order_by("target", "run")
    }


def both(tmp_path, key, steps, *, organisation, requester, agent, now):
    live_case = live(steps, organisation=organisation, requester=requester, agent=agent, until=now)
    import_case = imported(tmp_path, key, steps, organisation=organisation, requester=requester, now=now)
    return rows(live_case), rows(import_case)


def minutes_after(start: dt.datetime):
    return lambda minutes: start + dt.timedelta(minutes=minutes)


def test_a_24x7_case_with_a_customer_reply_a_raise_to_p1_a_reopening_and_a_warning(
    tmp_path, organisation, contact, agent, manager
):
    """Enterprise P2 (24x7: response 1 h, triage 2 h, updates 2 h, resolution 24 h), raised to P1
    (15 min, 30 min, 30 min, 8 h) after an hour waiting on the customer; the customer reopens it."""
    m = minutes_after(dt.datetime(2023, 3, 1, 10, 0, tzinfo=dt.UTC))
    steps = [
        Step(m(0), "open", "P2"),
        Step(m(10), "reply"),
        Step(m(20), "triage"),
        Step(m(25), "work"),
        Step(m(40), "wait"),  # resolution and the update pause
        Step(m(100), "customer"),  # ... and resume
        Step(m(110), "reply"),
        Step(m(112), "severity", "P1"),  # re-targeted from their start, the pause recounted
        Step(m(120), "reply"),
        Step(m(140), "resolve"),
        Step(m(200), "reopen"),  # resolution run 2 carries the 80 min used
        Step(m(205), "work"),
        Step(m(215), "reply"),
        Step(m(240), "resolve"),  # the update started at 215 was warned at 237.5
    ]
    live_rows, import_rows = both(
        tmp_path, "PATH-1", steps, organisation=organisation, requester=contact, agent=agent, now=m(300)
    )
    assert len(live_rows) == 10  # 2 resolution runs, 6 update runs, response, triage
    assert live_rows[(Target.RESOLUTION, 1)]["paused_total"] == dt.timedelta(hours=1)
    assert live_rows[(Target.RESOLUTION, 2)]["consumed"] == dt.timedelta(minutes=80)
    assert live_rows[(Target.UPDATE_CADENCE, 6)]["warned_at"] == m(237.5)
    assert import_rows == live_rows


def test_a_raise_that_puts_deadlines_in_the_past_breaches_them_then_with_their_warnings(
    tmp_path, organisation, contact, agent, manager
):
    m = minutes_after(dt.datetime(2023, 3, 1, 10, 0, tzinfo=dt.UTC))
    steps = [
        Step(m(0), "open", "P2"),
        Step(m(40), "severity", "P1"),  # P1's response, triage and first update were due by 0:30
        Step(m(50), "reply"),  # met late
        Step(m(60), "triage"),
        Step(m(65), "work"),
        Step(m(70), "resolve"),
    ]
    live_rows, import_rows = both(
        tmp_path, "PATH-2", steps, organisation=organisation, requester=contact, agent=agent, now=m(120)
    )
    for target in (Target.FIRST_RESPONSE, Target.TRIAGE, Target.UPDATE_CADENCE):
        clock = live_rows[(target, 1)]
        assert (clock["state"], clock["warned_at"], clock["breached_at"]) == (
            ClockState.BREACHED,
            m(40),
            m(40),
        )
    assert live_rows[(Target.FIRST_RESPONSE, 1)]["met_at"] == m(50)
    assert import_rows == live_rows


def test_business_hours_a_weekend_pause_and_a_target_the_new_policy_lacks(
    tmp_path, organisation, contact, agent
):
    """Enterprise P3 (business hours of the default calendar, Mon-Fri 09:00-17:00 UTC) opened on a
    Friday at 16:00, waiting on the customer over the weekend, lowered to P4 (no update cadence:
    that clock is cancelled) on Monday and resolved on Tuesday."""
    friday = minutes_after(dt.datetime(2023, 3, 3, 16, 0, tzinfo=dt.UTC))
    monday = minutes_after(dt.datetime(2023, 3, 6, 10, 0, tzinfo=dt.UTC))
    steps = [
        Step(friday(0), "open", "P3"),
        Step(friday(30), "reply"),
        Step(friday(40), "triage"),
        Step(friday(50), "work"),
        Step(friday(60), "wait"),
        Step(monday(0), "customer"),
        Step(monday(30), "severity", "P4"),
        Step(monday(60), "reply"),
        Step(dt.datetime(2023, 3, 7, 12, 0, tzinfo=dt.UTC), "resolve"),
    ]
    live_rows, import_rows = both(
        tmp_path,
        "PATH-3",
        steps,
        organisation=organisation,
        requester=contact,
        agent=agent,
        now=dt.datetime(2023, 3, 8, tzinfo=dt.UTC),
    )
    assert live_rows[(Target.UPDATE_CADENCE, 2)]["state"] == ClockState.CANCELLED
    assert live_rows[(Target.RESOLUTION, 1)]["paused_total"] == dt.timedelta(hours=1)
    assert import_rows == live_rows


def test_the_scenario_suite_s_business_hours_case_in_berlin(
    tmp_path, globex, globex_contact, business_p2, agent, manager
):
    """The case of test_scenario (Globex, Berlin office hours, business P2: response 1 h, triage
    2 h, updates every 4 h, resolution 24 h), each warning heeded before its breach."""

    def berlin(day: int, hour: int, minute: int = 0) -> dt.datetime:
        return local(2026, 3, day, hour, minute, tz="Europe/Berlin")

    steps = [
        Step(berlin(6, 14), "open", "P2"),  # Friday
        Step(berlin(6, 14, 55), "reply"),  # after the warning at 14:45
        Step(berlin(6, 15, 50), "triage"),  # after the warning at 15:30
        Step(berlin(6, 16, 15), "work"),
        Step(berlin(6, 16, 30), "wait"),
        Step(berlin(9, 11), "customer"),  # Monday: resumed, due moved by 2 h 30 of business time
        Step(berlin(9, 12, 40), "reply"),  # after the reminder at 12:25
        Step(berlin(9, 15), "reply"),
        Step(berlin(10, 9, 30), "resolve"),
        Step(berlin(11, 9), "reopen"),  # Wednesday: resolution restarts with 9 h used
        Step(berlin(11, 9, 30), "work"),
        Step(berlin(11, 12, 30), "reply"),  # after the reminder at 12:00
        Step(berlin(11, 15), "resolve"),
    ]
    live_rows, import_rows = both(
        tmp_path,
        "PATH-4",
        steps,
        organisation=globex,
        requester=globex_contact,
        agent=agent,
        now=berlin(16, 9),
    )
    assert live_rows[(Target.FIRST_RESPONSE, 1)]["warned_at"] == berlin(6, 14, 45)
    assert live_rows[(Target.TRIAGE, 1)]["warned_at"] == berlin(6, 15, 30)
    assert live_rows[(Target.UPDATE_CADENCE, 2)]["warned_at"] == berlin(9, 12, 25)
    assert live_rows[(Target.RESOLUTION, 2)]["consumed"] == dt.timedelta(hours=9)
    assert not any(clock["breached_at"] for clock in live_rows.values())
    assert import_rows == live_rows


def test_a_clock_met_late_is_warned_and_breached_on_both_paths(tmp_path, organisation, contact, agent):
    """Both record the warning and the breach of a response given after its due instant. Only the
    breach's instant differs: the import knows the due instant; live, the late reply found it."""
    m = minutes_after(dt.datetime(2023, 3, 1, 10, 0, tzinfo=dt.UTC))
    steps = [
        Step(m(0), "open", "P2"),  # response due at 1:00, warned at 0:45
        Step(m(70), "reply"),
        Step(m(80), "triage"),
        Step(m(85), "work"),
        Step(m(100), "resolve"),
    ]
    live_rows, import_rows = both(
        tmp_path, "PATH-5", steps, organisation=organisation, requester=contact, agent=agent, now=m(120)
    )
    key = (Target.FIRST_RESPONSE, 1)
    assert (live_rows[key]["state"], live_rows[key]["warned_at"], live_rows[key]["met_at"]) == (
        ClockState.BREACHED,
        m(45),
        m(70),
    )
    assert live_rows[key]["breached_at"] == m(70)
    assert import_rows[key]["breached_at"] == m(60)
    import_rows[key]["breached_at"] = live_rows[key]["breached_at"]
    assert import_rows == live_rows


def test_a_clock_met_late_that_no_sweep_saw_records_its_warning_late_then_the_breach(
    organisation, contact, agent
):
    t0 = dt.datetime(2023, 3, 1, 10, 0, tzinfo=dt.UTC)
    case = case_services.create_case(
        title="Live", organisation=organisation, requester=contact, severity="P2", actor=agent, now=t0
    )
    late = t0 + dt.timedelta(minutes=70)  # no sweep since the case was opened
    case_services.add_public_reply(case, body="Sorry", actor=agent, now=late)
    response = SlaClock.objects.get(case=case, target=Target.FIRST_RESPONSE)
    assert (response.state, response.warned_at, response.breached_at, response.met_at) == (
        ClockState.BREACHED,
        late,
        late,
        late,
    )
    events = case.events.filter(kind__startswith="sla_").order_by("created_at", "id")
    assert [(e.kind, e.new_value.get("late")) for e in events] == [
        ("sla_warning", True),
        ("sla_breached", None),
    ]
    assert "met late" in events[1].body
    assert services.record_due_warnings_and_breaches(now=late) == 0  # nothing left for the sweep
