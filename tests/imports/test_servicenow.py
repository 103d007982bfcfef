"""Importing a ServiceNow incident export (tests/imports/data/servicenow.csv, dates in Europe/Berlin).

The file, worked by hand (UTC = Berlin - 1 h in March before the 26th, - 2 h from 26 March 03:00):

* INC0000001, P2 ("2 - High"): opened 01/03 09:00 (08:00Z), Active 15:30 (14:30Z, group and
  assignee set: first response and triage), Resolved 02/03 10:00 (09:00Z), Closed 09/03.
  MTTR 25 h = 90,000 s.
* INC0000002: opened 02/03 10:00 (09:00Z) as "3 - Moderate", raised to "1 - Critical" at 10:20, the
  resolving row is at 12:00 but says resolved_at 11:30 (10:30Z): MTTR 1.5 h = 5,400 s, severity P1.
* INC0000003, P3: opened 06/03 09:00 (08:00Z), Active, Awaiting User Info 11:00-07/03 09:00,
  Resolved 07/03 15:00 (14:00Z, resolved_at "?": the row's time counts), reopened 08/03 09:00,
  resolved again 12:00. MTTR 30 h = 108,000 s; reopened once.
* INC0000004, P3, across the DST change: opened 26/03 01:30 CET (00:30Z), resolved 03:30 CEST
  (01:30Z): MTTR 1 h = 3,600 s, not the 2 h the wall clock shows. Caller, category: "?".
* INC0000005: an unknown state ("Pending Change") on line 21: the whole incident is rejected.
* INC0000006: "31/02/2023 09:00" on line 23: rejected.
* INC0000007, P4: opened 13/03 09:00 (08:00Z), Awaiting Vendor, Resolved 14/03 09:00: 86,400 s.
* line 28: no number: reported and skipped.

MTTR in March per severity (median, p90 by linear interpolation): P1 5,400 / 5,400; P2 90,000 /
90,000; P3 {3,600, 108,000}: median 55,800, p90 3,600 + 0.9 x 104,400 = 97,560; P4 86,400 / 86,400.
Reopen rate in March: 1 reopened (INC0000003) / 5 resolved = 0.2.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail

from cases import lifecycle
from cases import services as case_services
from cases.models import Case, CaseEvent, Contact, EventKind, Organisation, Team
from imports import sources
from imports.models import ImportedCase, JobStatus
from metrics.selectors import Ratio, reopen_rate, sla_compliance, time_to_resolve
from sla import services as sla_services
from sla.models import ClockState, SlaClock
from supportdesk.core.models import Notification
from tests.imports.conftest import DATA, IMPORTED_AT, MARCH, run

pytestmark = pytest.mark.django_db
SN = DATA / "servicenow.csv"
LATER = DATA / "servicenow_later.csv"


def utc(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


def case(number: str) -> Case:
    return Case.objects.get(external_ref=number)


def mttr() -> dict[str, tuple[float | None, float | None, int]]:
    report = time_to_resolve(**MARCH)
    return {sev: (s.median, s.p90, s.count) for sev, s in report.by_severity.items()}


def test_an_export_becomes_cases_with_their_original_times():
    job = run(SN)

    assert job.status == JobStatus.SUCCEEDED
    assert (job.rows_read, job.cases_created, job.cases_rejected, job.rows_rejected) == (27, 5, 2, 3)
    assert job.events_created == 34
    first = case("INC0000001")
    assert first.severity == "P2"
    assert first.status == "closed"
    assert first.created_at == utc(2023, 3, 1, 8, 0)
    assert first.first_response_at == utc(2023, 3, 1, 14, 30)
    assert first.triaged_at == utc(2023, 3, 1, 14, 30)
    assert first.first_resolved_at == first.last_resolved_at == utc(2023, 3, 2, 9, 0)
    assert first.closed_at == utc(2023, 3, 9, 9, 0)
    assert first.team.name == "Group 56"
    assert first.requester.name == "Caller 2403"
    assert first.organisation.name == "Imported from ServiceNow"
    assert first.title == "INC0000001: Category 55 / Subcategory 170"
    assert ImportedCase.objects.get(case=first).updates == 4


def test_priority_changes_and_the_final_priority_is_the_severity():
    run(SN)
    second = case("INC0000002")
    assert second.severity == "P1"
    changes = second.events.filter(kind=EventKind.SEVERITY_CHANGED)
    assert [(e.old_value, e.new_value, e.created_at) for e in changes] == [
        ("P3", "P1", utc(2023, 3, 2, 9, 20))
    ]
    # resolved_at (11:30 Berlin) lies between the updates around it, so it is the resolution.
    assert second.first_resolved_at == utc(2023, 3, 2, 10, 30)


def test_the_history_follows_the_case_lifecycle_a_reopening_as_a_live_one():
    """ServiceNow goes New -> Active and Resolved -> Active; the lifecycle allows neither, so the
    case passes through triaged, and reopens through reopened, at the same instants."""
    run(SN)
    third = case("INC0000003")
    assert third.reopen_count == 1
    assert third.first_resolved_at == utc(2023, 3, 7, 14, 0)
    assert third.last_resolved_at == utc(2023, 3, 8, 11, 0)
    shape = [(e.kind, e.old_value, e.new_value) for e in third.events.all()]
    assert shape[0][0] == EventKind.CREATED
    assert shape[1:] == [
        ("assignee_changed", None, "Resolver 17"),
        ("team_changed", None, "group-70"),
        ("status_changed", "new", "triaged"),
        ("status_changed", "triaged", "in_progress"),
        ("status_changed", "in_progress", "waiting_on_customer"),
        ("status_changed", "waiting_on_customer", "in_progress"),
        ("status_changed", "in_progress", "resolved"),
        ("reopened", "resolved", "reopened"),
        ("status_changed", "resolved", "reopened"),
        ("status_changed", "reopened", "in_progress"),
        ("status_changed", "in_progress", "resolved"),
        ("status_changed", "resolved", "closed"),
    ]
    assert all(e.imported for e in third.events.all())
    passage = third.events.filter(kind="status_changed", new_value="triaged").get()
    assert passage.created_at == utc(2023, 3, 6, 9, 0)  # with the move to in_progress
    # Every status change is one the lifecycle allows.
    for event in Case.objects.get(external_ref="INC0000007").events.filter(kind="status_changed"):
        lifecycle.check_transition(event.old_value, event.new_value, system=True)


def test_events_keep_the_source_actor_and_state():
    run(SN)
    events = list(case("INC0000001").events.all())
    assert [e.actor_name for e in events] == ["Opened by 8"] + ["Updated by 642"] * 5 + ["Updated by 908"]
    assert events[0].body == "ServiceNow: New"
    assert events[1].body == "ServiceNow: Active"
    assert events[-1].body == "ServiceNow: Closed"
    assert all(e.actor_id is None for e in events)


def test_dst_and_missing_values():
    run(SN)
    fourth = case("INC0000004")
    assert fourth.created_at == utc(2023, 3, 26, 0, 30)
    assert fourth.first_resolved_at == utc(2023, 3, 26, 1, 30)
    assert fourth.requester.name == "Unknown caller"
    assert fourth.team is None
    assert fourth.title == "INC0000004"


def test_bad_rows_are_reported_with_their_line_and_reject_their_incident():
    job = run(SN)
    assert not Case.objects.filter(external_ref__in=["INC0000005", "INC0000006"]).exists()
    problems = {(r["key"], r["where"]): r["problems"] for r in job.rejections}
    assert problems == {
        ("INC0000005", "lines 20-22"): [
            "line 21: unknown state “Pending Change”: add it to [status] in the mapping"
        ],
        ("INC0000006", "lines 23-24"): [
            "line 23: sys_updated_at “31/02/2023 09:00” is not a real date (day is out of range for month)"
        ],
        ("", "line 28"): ["line 28: no number: the row belongs to no case"],
    }


def test_metrics_count_imported_cases_as_worked_out_by_hand():
    run(SN)
    assert mttr() == {
        "P1": (5400.0, 5400.0, 1),
        "P2": (90000.0, 90000.0, 1),
        "P3": (55800.0, 97560.0, 2),
        "P4": (86400.0, 86400.0, 1),
    }
    assert reopen_rate(**MARCH) == Ratio(1, 5)


def test_sla_clocks_are_replayed_from_the_history():
    """Standard-tier policies count the default calendar (Mon-Fri 09:00-17:00 UTC).

    INC0000001 (P2: first response 4 business hours, triage 8, resolution 40): created Wed 08:00Z,
    so the first response was due 13:00Z (warning at 75 %, 12:00Z) and came 14:30Z: breached at
    13:00Z, met late. Triage was due 17:00Z and met 14:30Z. INC0000003 (P3: resolution 80 h) waited
    on the customer Mon 10:00Z-Tue 08:00Z = 7 business hours paused, so run 1 was due Fri 17/03
    17:00Z + 7 h = Mon 20/03 16:00Z; the reopening on Wed 08:00Z starts run 2 with the 6 business
    hours used (Mon 9-17 + Tue 9-14 = 13 h, less 7 paused), due after 74 more: Tue 21/03 11:00Z.
    """
    run(SN)
    first = {c.target: c for c in SlaClock.objects.filter(case=case("INC0000001"))}
    assert set(first) == {"first_response", "triage", "resolution"}  # no reply history: no cadence
    fr = first["first_response"]
    assert (fr.state, fr.due_at, fr.warned_at, fr.breached_at, fr.met_at) == (
        ClockState.BREACHED,
        utc(2023, 3, 1, 13, 0),
        utc(2023, 3, 1, 12, 0),
        utc(2023, 3, 1, 13, 0),
        utc(2023, 3, 1, 14, 30),
    )
    triage = first["triage"]
    assert (triage.state, triage.due_at, triage.met_at, triage.warned_at) == (
        ClockState.MET,
        utc(2023, 3, 1, 17, 0),
        utc(2023, 3, 1, 14, 30),
        None,
    )
    runs = list(SlaClock.objects.filter(case=case("INC0000003"), target="resolution").order_by("run"))
    assert [(c.run, c.state, c.due_at, c.met_at) for c in runs] == [
        (1, ClockState.MET, utc(2023, 3, 20, 16, 0), utc(2023, 3, 7, 14, 0)),
        (2, ClockState.MET, utc(2023, 3, 21, 11, 0), utc(2023, 3, 8, 11, 0)),
    ]
    assert runs[0].paused_total == dt.timedelta(hours=7)
    assert runs[0].pauses == [["2023-03-06T10:00:00+00:00", "2023-03-07T08:00:00+00:00"]]
    assert runs[1].consumed == dt.timedelta(hours=6)

    compliance = sla_compliance(**MARCH)
    assert compliance["first_response"]["all"] == Ratio(4, 5)
    assert compliance["triage"]["all"] == Ratio(3, 3)  # INC4 and INC7 never got a group: cancelled
    assert compliance["resolution"]["all"] == Ratio(6, 6)


def test_nothing_is_sent_for_imported_cases(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        run(SN)
    assert callbacks == []
    assert mail.outbox == []
    assert Notification.objects.count() == 0
    # Deadlines that passed before the import are settled: the sweep finds nothing to announce.
    with django_capture_on_commit_callbacks(execute=True):
        assert sla_services.record_due_warnings_and_breaches(now=IMPORTED_AT) == 0
    assert mail.outbox == []
    assert Notification.objects.count() == 0
    assert not CaseEvent.objects.filter(imported=False).exists()


def test_importing_the_same_file_twice_changes_nothing():
    run(SN)
    before = (
        Case.objects.count(),
        CaseEvent.objects.count(),
        SlaClock.objects.count(),
        Contact.objects.count(),
    )
    again = run(SN)
    assert (again.cases_created, again.cases_updated, again.cases_unchanged, again.events_created) == (
        0,
        0,
        5,
        0,
    )
    assert again.cases_rejected == 2
    after = (
        Case.objects.count(),
        CaseEvent.objects.count(),
        SlaClock.objects.count(),
        Contact.objects.count(),
    )
    assert after == before
    assert Organisation.objects.filter(name="Imported from ServiceNow").count() == 1
    assert Team.objects.filter(name="Group 56").count() == 1


def test_a_later_export_adds_only_what_is_new():
    """servicenow_later.csv = servicenow.csv plus INC0000007 reopened 15/03 09:00 (08:00Z) and
    resolved 12:00, and a new INC0000008 (P2: opened 20/03 09:00, resolved 10:00: 3,600 s).
    P2 MTTR then: {90,000, 3,600}: median 46,800, p90 3,600 + 0.9 x 86,400 = 81,360. Reopen rate:
    2 reopened (INC3, INC7) / 6 resolved."""
    run(SN)
    seventh = case("INC0000007")
    old_events = list(seventh.events.values_list("id", flat=True))

    later = run(LATER)

    assert (later.cases_created, later.cases_updated, later.cases_unchanged) == (1, 1, 4)
    assert later.events_created == 4 + 3
    seventh.refresh_from_db()
    assert list(seventh.events.values_list("id", flat=True))[: len(old_events)] == old_events
    assert [e.kind for e in seventh.events.all()][len(old_events) :] == [
        "reopened", "status_changed", "status_changed", "status_changed",
    ]  # fmt: skip
    assert (seventh.status, seventh.reopen_count) == ("resolved", 1)
    assert seventh.first_resolved_at == utc(2023, 3, 14, 8, 0)
    assert seventh.last_resolved_at == utc(2023, 3, 15, 11, 0)
    assert ImportedCase.objects.get(case=seventh).updates == 5
    assert SlaClock.objects.filter(case=seventh, target="resolution").count() == 2
    assert mttr()["P2"] == (46800.0, 81360.0, 2)
    assert reopen_rate(**MARCH) == Ratio(2, 6)
    # ... and importing the later export again changes nothing either.
    assert run(LATER).events_created == 0


def test_a_case_worked_in_supportdesk_takes_no_later_updates(agent):
    run(SN)
    case_services.add_internal_note(
        case("INC0000007"), body="Called the vendor.", actor=agent, now=IMPORTED_AT
    )
    later = run(LATER)
    assert later.cases_created == 1
    assert later.cases_updated == 0
    problems = [p for r in later.rejections if r["key"] == "INC0000007" for p in r["problems"]]
    assert len(problems) == 1
    assert "has changed in SupportDesk since it was imported" in problems[0]
    assert case("INC0000007").reopen_count == 0


def test_strict_lists_every_bad_row_and_writes_nothing():
    job = run(SN, strict=True)
    assert job.status == JobStatus.FAILED
    assert "found 3 problem(s) in 3 case(s) or row(s), the first: line 21: unknown state" in job.error
    assert "Nothing was imported" in job.error
    assert [r["key"] for r in job.rejections] == ["INC0000005", "INC0000006", ""]
    assert {(p["kind"], p["rows"]) for p in job.problems} == {
        ("unknown_state", 1),
        ("bad_date", 1),
        ("no_key", 1),
    }
    assert not Case.objects.exists()
    assert not CaseEvent.objects.exists()
    assert not Organisation.objects.filter(name="Imported from ServiceNow").exists()
    assert not Contact.objects.exists()
    assert not Team.objects.exists()


def test_strict_imports_a_clean_file(tmp_path):
    lines = SN.read_text().splitlines(keepends=True)
    clean = tmp_path / "clean.csv"
    clean.write_text("".join(lines[:19] + lines[24:27]))
    job = run(clean, strict=True)
    assert job.status == JobStatus.SUCCEEDED
    assert (job.cases_created, job.cases_rejected) == (5, 0)


def test_an_unsorted_export_is_sorted_first(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "SORT_RUN_ROWS", 4)  # several sorted runs to merge
    lines = SN.read_text().splitlines(keepends=True)
    shuffled = tmp_path / "shuffled.csv"
    shuffled.write_text(lines[0] + "".join(reversed(lines[1:])))
    job = run(shuffled)
    assert (job.cases_created, job.events_created, job.cases_rejected) == (5, 34, 2)
    assert mttr()["P3"] == (55800.0, 97560.0, 2)
    # Line numbers are those of the file as given.
    where = {r["key"]: r["where"] for r in job.rejections}
    assert where["INC0000005"] == "lines 8-10"
    assert where[""] == "line 2"


def test_the_date_format_and_zone_can_be_given(tmp_path):
    dashed = tmp_path / "dashed.csv"
    dashed.write_text(SN.read_text().replace("/", "-"))
    job = run(dashed, time_zone="UTC")
    assert job.cases_created == 0  # the default format does not read "01-03-2023 09:00"
    job = _run_with_overrides(dashed, date_format="%d-%m-%Y %H:%M", time_zone="UTC")
    assert job.cases_created == 5
    assert case("INC0000001").created_at == utc(2023, 3, 1, 9, 0)


def _run_with_overrides(path, **overrides):
    from django.utils import timezone

    from imports import services
    from imports.mapping import default_mapping_text

    job = services.create_job(
        format="servicenow-csv",
        mapping_text=default_mapping_text("servicenow-csv"),
        mapping_name="test",
        now=timezone.now(),
        path=str(path),
        **overrides,
    )
    return services.run_import(job, now=IMPORTED_AT)


def test_imported_open_cases_take_their_place_in_the_queue(tmp_path):
    """The importer writes each case's urgency with its clocks: the earliest due instant of the
    clocks still to be met (running, or breached and not met), none for a case that is not open."""
    lines = SN.read_text().splitlines()
    # INC0000001 as it stood before it was resolved: open, its first response long overdue.
    still_open = tmp_path / "open.csv"
    still_open.write_text("\n".join(lines[:3]).replace("INC0000001", "INC0000099") + "\n")
    run(SN)
    run(still_open)
    imported = list(Case.objects.filter(external_ref__isnull=False))
    assert any(c.is_open for c in imported)
    for c in imported:
        pending = [
            clk.due_at
            for clk in SlaClock.objects.filter(case=c)
            if clk.state == ClockState.RUNNING or (clk.state == ClockState.BREACHED and clk.met_at is None)
        ]
        expected = min(pending) if c.is_open and pending else None
        assert (c.external_ref, c.next_due_at) == (c.external_ref, expected)
    assert any(c.next_due_at is not None for c in imported)
