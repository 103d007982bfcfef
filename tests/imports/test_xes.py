"""Importing an XES log (tests/imports/data/helpdesk.xes) with the shipped example mapping.

Worked by hand (timestamps carry their offsets; +01:00 until 26 March 02:00, then +02:00):

* T-1001, "high" = P2: Open 01/03 08:00Z, Assign (triaged, assignee Dana) 08:10Z, Reply 08:20Z (the
  first response), Work 08:30Z, Resolve 11:00Z: MTTR 3 h = 10,800 s. Closed a week later.
* T-1002: "normal" (P3) raised to "urgent" (P1) at Assign; waits on the customer 09:30Z-10:30Z;
  resolved 12:00Z after opening 09:00Z: 10,800 s, P1.
* T-1003: priority "?" at Open, "low" later: P4. Open 06/03 08:00Z, Reply (resource "?") 08:30Z,
  Resolve 09:00Z: 3,600 s. Reopened 07/03 08:00Z and resolved again 10:00Z. Customer "?": the
  mapping's default organisation.
* T-1004, P3, across the DST change: Open 01:30+01:00 (00:30Z), Resolve 03:30+02:00 (01:30Z): 3,600 s.
* T-1005: an activity the mapping does not know: rejected. T-1006: 31 February: rejected.
  Trace 7 has no name: reported and skipped.
* T-1007, P3 (Globex): Open 09/03 08:00Z, Resolve 13:00Z: 18,000 s.

MTTR in March: P1 10,800 / 10,800; P2 10,800 / 10,800; P3 {3,600, 18,000}: median 10,800, p90
3,600 + 0.9 x 14,400 = 16,560; P4 3,600 / 3,600. Reopen rate: 1 (T-1003) / 5 resolved = 0.2.
"""

from __future__ import annotations

import datetime as dt
import gzip

import pytest
from django.core import mail

from cases.models import Case, CaseEvent, EventKind, Organisation
from imports.models import JobStatus
from metrics.selectors import Ratio, reopen_rate, time_to_resolve
from sla.models import ClockState, SlaClock
from supportdesk.core.models import Notification
from tests import factories
from tests.imports.conftest import DATA, MARCH, run

pytestmark = pytest.mark.django_db
XES = DATA / "helpdesk.xes"


def utc(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


def case(key: str) -> Case:
    return Case.objects.get(external_ref=key)


@pytest.fixture
def dana(db):
    return factories.AgentFactory(username="dana", first_name="Dana", last_name="Dispatcher")


def expect_hand_worked_metrics() -> None:
    report = time_to_resolve(**MARCH)
    assert {sev: (s.median, s.p90, s.count) for sev, s in report.by_severity.items()} == {
        "P1": (10800.0, 10800.0, 1),
        "P2": (10800.0, 10800.0, 1),
        "P3": (10800.0, 16560.0, 2),
        "P4": (3600.0, 3600.0, 1),
    }
    assert reopen_rate(**MARCH) == Ratio(1, 5)


def test_a_log_becomes_cases_and_metrics_match_the_hand_worked_numbers(dana):
    job = run(XES, format="xes")
    assert job.status == JobStatus.SUCCEEDED
    assert (job.total, job.rows_read, job.cases_created, job.cases_rejected, job.rows_rejected) == (
        26,
        26,
        5,
        2,
        3,
    )
    expect_hand_worked_metrics()

    first = case("T-1001")
    assert (first.severity, first.status, first.assignee, first.team.slug) == ("P2", "closed", dana, "tier-1")
    assert first.organisation.name == "Acme Corp"
    assert first.organisation.tier == "business"  # created by the import, as the mapping says
    assert first.requester.email == "carla@acme.example"
    assert first.title == "Checkout fails with 502"
    assert (first.created_at, first.triaged_at, first.first_response_at, first.first_resolved_at) == (
        utc(2023, 3, 1, 8, 0),
        utc(2023, 3, 1, 8, 10),
        utc(2023, 3, 1, 8, 20),
        utc(2023, 3, 1, 11, 0),
    )
    reply = first.events.get(kind=EventKind.PUBLIC_REPLY)
    assert (reply.actor, reply.actor_name, reply.is_public, reply.imported) == (dana, "Dana", True, True)
    assert reply.body == "Helpdesk log: Reply (complete)"


def test_lifecycle_transitions_waiting_priority_change_and_missing_values(dana):
    run(XES, format="xes")
    second = case("T-1002")
    assert second.severity == "P1"
    assert [(e.old_value, e.new_value) for e in second.events.filter(kind=EventKind.SEVERITY_CHANGED)] == [
        ("P3", "P1")
    ]
    statuses = [(e.old_value, e.new_value) for e in second.events.filter(kind=EventKind.STATUS_CHANGED)]
    assert statuses == [
        ("new", "triaged"),
        # "Wait for customer" right after "Assign": through in_progress, as the lifecycle requires
        ("triaged", "in_progress"),
        ("in_progress", "waiting_on_customer"),
        ("waiting_on_customer", "in_progress"),
        ("in_progress", "resolved"),
    ]
    resolution = SlaClock.objects.get(case=second, target="resolution")
    assert resolution.paused_total == dt.timedelta(hours=1)  # business P1 counts 24x7

    third = case("T-1003")
    assert (third.severity, third.reopen_count) == ("P4", 1)
    assert third.organisation.name == "Imported customers"
    assert third.events.get(kind=EventKind.PUBLIC_REPLY).actor_name == "Helpdesk log"
    assert third.events.filter(kind=EventKind.REOPENED).count() == 1

    fourth = case("T-1004")
    assert (fourth.created_at, fourth.first_resolved_at) == (utc(2023, 3, 26, 0, 30), utc(2023, 3, 26, 1, 30))


def test_replies_drive_the_update_cadence(dana):
    """T-1001, business P2 (default calendar Mon-Fri 09:00-17:00 UTC; cadence 4 business hours):
    run 1 from the creation (08:00Z, counting from 09:00Z) is met by the reply at 08:20Z, which starts
    run 2, due 13:00Z; the resolution at 11:00Z cancels it."""
    run(XES, format="xes")
    cadence = list(SlaClock.objects.filter(case=case("T-1001"), target="update_cadence").order_by("run"))
    assert [(c.run, c.state, c.due_at, c.met_at, c.cancelled_at) for c in cadence] == [
        (1, ClockState.MET, utc(2023, 3, 1, 13, 0), utc(2023, 3, 1, 8, 20), None),
        (2, ClockState.CANCELLED, utc(2023, 3, 1, 13, 0), None, utc(2023, 3, 1, 11, 0)),
    ]


def test_bad_traces_are_reported_and_skipped():
    job = run(XES, format="xes")
    problems = {(r["key"], r["where"]): r["problems"] for r in job.rejections}
    assert problems == {
        ("T-1005", "trace 5 (T-1005)"): [
            "trace 5 (T-1005), event 2: unknown state “Escalate to management+complete” or "
            "“Escalate to management”: add it to [status] in the mapping"
        ],
        ("T-1006", "trace 6 (T-1006)"): [
            "trace 6 (T-1006), event 1: time:timestamp “2023-02-31T09:00:00.000+01:00” is not an ISO 8601 "
            "date-time"
        ],
        ("", "trace 7"): ["trace 7: no concept:name: the trace cannot be matched to a case"],
    }
    assert not Case.objects.filter(external_ref__in=["T-1005", "T-1006"]).exists()


def test_a_gzipped_log_imports_the_same(tmp_path):
    packed = tmp_path / "helpdesk.xes.gz"
    packed.write_bytes(gzip.compress(XES.read_bytes()))
    job = run(packed, format="xes")
    assert (job.total, job.cases_created, job.cases_rejected) == (26, 5, 2)
    expect_hand_worked_metrics()


def test_reimport_changes_nothing_and_sends_nothing(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        run(XES, format="xes")
        events = CaseEvent.objects.count()
        again = run(XES, format="xes")
    assert (again.cases_created, again.cases_unchanged, again.events_created) == (0, 5, 0)
    assert CaseEvent.objects.count() == events
    assert Case.objects.count() == 5
    assert mail.outbox == []
    assert Notification.objects.count() == 0


def test_strict_aborts_with_nothing_written():
    job = run(XES, format="xes", strict=True)
    assert job.status == JobStatus.FAILED
    assert "trace 5 (T-1005), event 2: unknown state" in job.error
    assert not Case.objects.exists()
    assert not Organisation.objects.filter(name="Acme Corp").exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"<log><trace><event>", "not well-formed XML"),
        (b"<?xml version='1.0'?><incidents/>", "not an XES file"),
        # No entity is ever expanded (nor fetched): a file declaring one is refused.
        (b"<?xml version='1.0'?><!DOCTYPE log [<!ENTITY a 'aaaa'>]><log>&a;</log>", "declares XML entities"),
    ],
)
def test_a_file_that_is_not_xes_fails_the_job_clearly(tmp_path, content, message):
    broken = tmp_path / "broken.xes"
    broken.write_bytes(content)
    job = run(broken, format="xes")
    assert job.status == JobStatus.FAILED
    assert message in job.error
    assert not Case.objects.exists()


def _gzipped(tmp_path, name: str, content: bytes):
    path = tmp_path / name
    path.write_bytes(gzip.compress(content, compresslevel=6))
    return path


def test_a_huge_comment_is_refused_without_reading_it_all(tmp_path):
    # expat re-scans an unfinished comment on every block fed (quadratic): the import refuses the
    # comment once it passes the token bound.
    path = tmp_path / "comment.xes"
    path.write_bytes(b"<?xml version='1.0'?><log><!--" + b"x" * (8 << 20) + b"--><trace/></log>")
    job = run(path, format="xes")
    assert job.status == JobStatus.FAILED
    assert "longer than 1,048,576 bytes" in job.error
    assert not Case.objects.exists()


def test_a_small_gzip_holding_a_huge_comment_is_refused(tmp_path):
    # The review's file: a few hundred KB of gzip around a comment of hundreds of MB.
    content = b"<?xml version='1.0'?><log><!--" + b"x" * (64 << 20) + b"--><trace/></log>"
    job = run(_gzipped(tmp_path, "comment.xes.gz", content), format="xes")
    assert job.status == JobStatus.FAILED
    assert "refused" in job.error
    assert not Case.objects.exists()


def test_a_huge_attribute_value_is_refused(tmp_path):
    content = b"<log><trace><string key='concept:name' value='" + b"a" * (3 << 20) + b"'/></trace></log>"
    path = tmp_path / "attribute.xes"
    path.write_bytes(content)
    job = run(path, format="xes")
    assert job.status == JobStatus.FAILED
    assert "a comment, a text or a tag longer than" in job.error


def test_a_compression_bomb_is_refused(tmp_path):
    # Valid, tiny elements (so no single token is long) that expand a thousandfold.
    content = b"<log>" + b"<x/>" * (12 << 20) + b"</log>"
    job = run(_gzipped(tmp_path, "bomb.xes.gz", content), format="xes")
    assert job.status == JobStatus.FAILED
    assert "expands more than 100 times" in job.error
    assert not Case.objects.exists()


def test_a_trace_with_too_many_events_is_refused(tmp_path):
    from imports.sources import MAX_TRACE_EVENTS

    events = b"<event><string key='concept:name' value='Open'/></event>" * (MAX_TRACE_EVENTS + 1)
    path = tmp_path / "long-trace.xes"
    path.write_bytes(b"<log><trace><string key='concept:name' value='T-1'/>" + events + b"</trace></log>")
    job = run(path, format="xes")
    assert job.status == JobStatus.FAILED
    assert "more than 200,000 events" in job.error
