"""Every adjustment the importer makes to a source's history is counted on the job, by kind, with
example source keys: each test imports a small synthetic export that needs exactly that one."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from cases import lifecycle
from cases.models import Case, CaseEvent, EventKind
from imports import summary
from imports.mapping import default_mapping_text
from imports.models import ImportedCase, JobStatus
from tests.imports.conftest import DATA, run
from tests.imports.history import Row, export, utc

pytestmark = pytest.mark.django_db
NEW_CASE = default_mapping_text("servicenow-csv").replace(
    'after_close = "reopen"', 'after_close = "new_case"'
)


def imported(tmp_path, rows: list[Row], *, mapping_text: str | None = None, name: str = "export.csv"):
    job = run(export(tmp_path / name, rows), time_zone="UTC", mapping_text=mapping_text)
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert job.cases_rejected == 0, job.rejections
    return job


def counts(job) -> dict[tuple[str, str], tuple[int, int, list[str]]]:
    """(kind, detail or written-as) -> (count, cases, examples)."""
    out = {}
    for entry in job.adjustments:
        key = entry["written_as"] if entry["kind"] == summary.OUTSIDE_LIFECYCLE else entry["detail"]
        out[(entry["kind"], key)] = (entry["count"], entry["cases"], entry["examples"])
    return out


def kinds(job) -> set[str]:
    return {entry["kind"] for entry in job.adjustments}


def statuses(case: Case) -> list[tuple[str, str]]:
    return [(e.old_value, e.new_value) for e in case.events.filter(kind=EventKind.STATUS_CHANGED)]


def assert_lifecycle(case: Case) -> None:
    """Every status change on the case's timeline is one cases.lifecycle allows."""
    for old, new in statuses(case):
        lifecycle.check_transition(old, new, system=True)


def test_a_clean_history_needs_no_adjustment(tmp_path):
    job = imported(
        tmp_path,
        [
            Row("INC1", "New", 0, "01/03 09:00"),
            Row("INC1", "Resolved", 1, "01/03 10:00", resolved="01/03 09:50"),
            Row("INC1", "Closed", 2, "08/03 10:00", resolved="01/03 09:50", closed="08/03 10:00"),
        ],
    )
    assert job.adjustments == []
    case = Case.objects.get(external_ref="INC1")
    assert (case.first_resolved_at, case.closed_at) == (utc("01/03 09:50"), utc("08/03 10:00"))


def test_a_missing_resolution_instant_takes_the_resolving_update_s_time(tmp_path):
    """Like 1,543 ServiceNow incidents logged "Resolved" the instant they were opened, without a
    resolved_at: the resolution is that update's time (a 0-minute resolution)."""
    job = imported(
        tmp_path,
        [
            Row("INC1", "New", 0, "01/03 09:00"),
            Row("INC1", "Resolved", 1, "01/03 09:00"),
            Row("INC2", "New", 0, "01/03 09:00"),
            Row("INC2", "Resolved", 1, "01/03 10:00"),
            Row("INC3", "New", 0, "01/03 09:00"),
            Row("INC3", "Resolved", 1, "01/03 11:00", resolved="01/03 10:30"),
        ],
    )
    assert counts(job) == {(summary.MISSING_RESOLUTION, "resolved_at"): (2, 2, ["INC1", "INC2"])}
    first = Case.objects.get(external_ref="INC1")
    assert first.first_resolved_at == first.created_at == utc("01/03 09:00")
    assert Case.objects.get(external_ref="INC3").first_resolved_at == utc("01/03 10:30")


def test_a_first_update_before_the_opening_moves_the_creation(tmp_path):
    job = imported(
        tmp_path,
        [
            Row("INC1", "New", 0, "01/03 08:55", opened="01/03 09:00"),
            Row("INC1", "Resolved", 1, "01/03 10:00", opened="01/03 09:00", resolved="01/03 10:00"),
        ],
    )
    assert counts(job) == {(summary.CREATION_MOVED, "opened_at"): (1, 1, ["INC1"])}
    assert Case.objects.get(external_ref="INC1").created_at == utc("01/03 08:55")


def test_a_resolution_instant_after_the_next_update_is_replaced_by_the_row_s_time(tmp_path):
    """The source repeats the final resolved_at on the first resolution: it lies after the next
    update (the reopening), so the first resolution is the resolving row's own time."""
    job = imported(
        tmp_path,
        [
            Row("INC1", "New", 0, "01/03 09:00"),
            Row("INC1", "Resolved", 1, "01/03 12:00", resolved="03/03 16:00"),
            Row("INC1", "Active", 2, "02/03 09:00", resolved="03/03 16:00"),
            Row("INC1", "Resolved", 3, "03/03 16:30", resolved="03/03 16:00"),
        ],
    )
    assert counts(job)[(summary.RESOLUTION_REPLACED, "resolved_at")] == (1, 1, ["INC1"])
    case = Case.objects.get(external_ref="INC1")
    assert (case.first_resolved_at, case.last_resolved_at) == (utc("01/03 12:00"), utc("03/03 16:00"))


def test_transitions_outside_the_lifecycle_are_mapped_and_counted_per_transition(tmp_path):
    job = imported(
        tmp_path,
        [
            Row("INC1", "New", 0, "01/03 09:00"),
            Row("INC1", "Active", 1, "01/03 10:00"),
            Row("INC1", "Awaiting User Info", 2, "01/03 11:00"),
            Row("INC1", "Awaiting Vendor", 3, "01/03 12:00"),
            Row("INC1", "Resolved", 4, "01/03 13:00", resolved="01/03 13:00"),
            Row("INC1", "Awaiting User Info", 5, "02/03 09:00"),
            Row("INC1", "Closed", 6, "02/03 10:00", resolved="02/03 10:00", closed="02/03 10:00"),
            Row("INC2", "New", 0, "01/03 09:00"),
            Row("INC2", "Active", 1, "01/03 10:00"),
            Row("INC2", "New", 2, "01/03 11:00"),
            Row("INC2", "Resolved", 3, "01/03 12:00", resolved="01/03 12:00"),
        ],
    )
    assert counts(job) == {
        (summary.OUTSIDE_LIFECYCLE, "new → triaged → in_progress"): (2, 2, ["INC1", "INC2"]),
        (summary.OUTSIDE_LIFECYCLE, "waiting_on_customer → in_progress → waiting_on_engineering"): (
            1, 1, ["INC1"],
        ),
        (summary.OUTSIDE_LIFECYCLE, "resolved → reopened → in_progress → waiting_on_customer"): (
            1, 1, ["INC1"],
        ),
        (summary.OUTSIDE_LIFECYCLE, "waiting_on_customer → resolved → closed"): (1, 1, ["INC1"]),
        (summary.OUTSIDE_LIFECYCLE, "kept in_progress"): (1, 1, ["INC2"]),
    }  # fmt: skip
    details = {e["written_as"]: e["detail"] for e in job.adjustments}
    assert details["kept in_progress"] == "in_progress → new"
    first = Case.objects.get(external_ref="INC1")
    assert_lifecycle(first)
    assert (first.status, first.reopen_count) == ("closed", 1)
    second = Case.objects.get(external_ref="INC2")
    assert_lifecycle(second)
    assert statuses(second)[-1] == ("in_progress", "resolved")


def test_a_resolution_after_the_close_reopens_the_case_by_default(tmp_path):
    """The source resolves a closed case again. The lifecycle reopens no closed case, so the close
    is withdrawn: the case was resolved, is reopened and resolved again, and ends resolved."""
    job = imported(
        tmp_path,
        [
            Row("INC1", "New", 0, "01/03 09:00"),
            Row("INC1", "Resolved", 1, "01/03 10:00", resolved="01/03 10:00"),
            Row("INC1", "Closed", 2, "08/03 10:00", resolved="01/03 10:00", closed="08/03 10:00"),
            Row("INC1", "Resolved", 3, "09/03 10:00", resolved="09/03 10:00"),
        ],
    )
    assert counts(job) == {
        (summary.OUTSIDE_LIFECYCLE, "close withdrawn, then resolved → reopened → resolved"): (1, 1, ["INC1"]),
    }
    assert job.adjustments[0]["detail"] == "closed → resolved"
    case = Case.objects.get(external_ref="INC1")
    assert_lifecycle(case)
    assert statuses(case) == [
        ("new", "resolved"),
        ("resolved", "reopened"),
        ("reopened", "resolved"),
    ]
    assert (case.status, case.closed_at, case.reopen_count) == ("resolved", None, 1)
    assert (case.first_resolved_at, case.last_resolved_at) == (utc("01/03 10:00"), utc("09/03 10:00"))
    # The withdrawn close's update is still on the timeline, as an update that changed nothing.
    withdrawn = case.events.get(created_at=utc("08/03 10:00"))
    assert (withdrawn.kind, withdrawn.body) == ("imported_update", "ServiceNow: Closed")


def test_the_mapping_may_open_a_linked_follow_up_instead(tmp_path):
    job = imported(
        tmp_path,
        [
            Row("INC1", "New", 0, "01/03 09:00"),
            Row("INC1", "Resolved", 1, "01/03 10:00", resolved="01/03 10:00"),
            Row("INC1", "Closed", 2, "08/03 10:00", resolved="01/03 10:00", closed="08/03 10:00"),
            Row("INC1", "Active", 3, "09/03 10:00", group="Group 2"),
            Row("INC1", "Resolved", 4, "09/03 12:00", resolved="09/03 12:00", group="Group 2"),
        ],
        mapping_text=NEW_CASE,
    )
    assert job.cases_created == 2
    assert counts(job) == {
        (summary.OUTSIDE_LIFECYCLE, "a new case, linked to the closed one"): (1, 1, ["INC1#2"]),
        (summary.OUTSIDE_LIFECYCLE, "new → triaged → in_progress"): (1, 1, ["INC1#2"]),
    }
    closed = Case.objects.get(external_ref="INC1")
    follow_up = Case.objects.get(external_ref="INC1#2")
    assert (closed.status, closed.closed_at, closed.reopen_count) == ("closed", utc("08/03 10:00"), 0)
    assert follow_up.follow_up_of == closed
    assert (follow_up.created_at, follow_up.status, follow_up.first_resolved_at) == (
        utc("09/03 10:00"),
        "resolved",
        utc("09/03 12:00"),
    )
    assert follow_up.team.name == "Group 2"
    assert follow_up.title == closed.title
    for case in (closed, follow_up):
        assert_lifecycle(case)
    linked = follow_up.events.get(kind=EventKind.FOLLOW_UP_OPENED)
    assert (linked.field, linked.new_value) == ("follow_up_of", closed.key)
    assert ImportedCase.objects.get(case=follow_up).source_key == "INC1#2"

    # The same file again changes nothing; a later export adds to the follow-up.
    again = imported(tmp_path, _follow_up_rows(), mapping_text=NEW_CASE, name="again.csv")
    assert (again.cases_created, again.cases_unchanged, again.events_created) == (0, 2, 0)
    later = imported(
        tmp_path,
        [
            *_follow_up_rows(),
            Row("INC1", "Closed", 5, "16/03 12:00", closed="16/03 12:00", group="Group 2"),
            Row("INC1", "Active", 6, "17/03 09:00", group="Group 2"),
        ],
        mapping_text=NEW_CASE,
        name="later.csv",
    )
    assert (later.cases_created, later.cases_updated, later.cases_unchanged) == (1, 1, 1)
    assert Case.objects.get(external_ref="INC1#2").status == "closed"
    assert Case.objects.get(external_ref="INC1#3").follow_up_of == Case.objects.get(external_ref="INC1#2")


def _follow_up_rows() -> list[Row]:
    return [
        Row("INC1", "New", 0, "01/03 09:00"),
        Row("INC1", "Resolved", 1, "01/03 10:00", resolved="01/03 10:00"),
        Row("INC1", "Closed", 2, "08/03 10:00", resolved="01/03 10:00", closed="08/03 10:00"),
        Row("INC1", "Active", 3, "09/03 10:00", group="Group 2"),
        Row("INC1", "Resolved", 4, "09/03 12:00", resolved="09/03 12:00", group="Group 2"),
    ]


def test_a_case_closed_when_imported_is_not_reopened_by_a_later_export(tmp_path):
    first = [
        Row("INC1", "New", 0, "01/03 09:00"),
        Row("INC1", "Resolved", 1, "01/03 10:00", resolved="01/03 10:00"),
        Row("INC1", "Closed", 2, "08/03 10:00", closed="08/03 10:00"),
    ]
    imported(tmp_path, first)
    later = run(
        export(tmp_path / "later.csv", [*first, Row("INC1", "Active", 3, "09/03 10:00")]), time_zone="UTC"
    )
    assert (later.cases_updated, later.cases_rejected) == (0, 1)
    assert "SupportDesk reopens no closed case" in later.rejections[0]["problems"][0]
    assert 'after_close = "new_case"' in later.rejections[0]["problems"][0]
    assert Case.objects.get(external_ref="INC1").status == "closed"


def test_rows_are_ordered_by_the_source_s_sequence_so_a_late_timestamp_invents_no_reopen(tmp_path):
    """Row 2 (Active) carries a later time than row 3 (Resolved). In time order it would read
    Resolved -> Active, a reopening that never happened; in the source's order it is Active ->
    Resolved, and the resolution takes the time of the update before it."""
    job = imported(
        tmp_path,
        [
            Row("INC1", "New", 0, "01/03 09:00"),
            Row("INC1", "Active", 1, "01/03 10:05"),
            Row("INC1", "Resolved", 2, "01/03 10:00"),
        ],
    )
    case = Case.objects.get(external_ref="INC1")
    assert (case.reopen_count, case.status) == (0, "resolved")
    assert not case.events.filter(kind=EventKind.REOPENED).exists()
    assert case.first_resolved_at == utc("01/03 10:05")
    assert counts(job)[(summary.TIME_OUT_OF_ORDER, "sys_updated_at")] == (1, 1, ["INC1"])


def test_without_a_sequence_number_the_rows_are_ordered_by_time(tmp_path):
    job = imported(
        tmp_path,
        [
            Row("INC1", "New", "?", "01/03 09:00"),
            Row("INC1", "Resolved", "?", "01/03 10:00"),
            Row("INC1", "Active", "?", "01/03 09:30"),
        ],
    )
    assert statuses(Case.objects.get(external_ref="INC1"))[-1] == ("in_progress", "resolved")
    assert summary.TIME_OUT_OF_ORDER not in kinds(job)


def test_a_duplicated_row_is_recorded_once(tmp_path):
    rows = [
        Row("INC1", "New", 0, "01/03 09:00"),
        Row("INC1", "Active", 1, "01/03 10:00"),
        Row("INC1", "Active", 1, "01/03 10:00"),
        Row("INC1", "Resolved", 2, "01/03 11:00", resolved="01/03 11:00"),
    ]
    job = imported(tmp_path, rows)
    assert counts(job)[(summary.DUPLICATE, "")] == (1, 1, ["INC1"])
    case = Case.objects.get(external_ref="INC1")
    assert not case.events.filter(kind="imported_update").exists()
    assert job.events_created == CaseEvent.objects.count() == 4  # created, 2 to in_progress, resolved
    # ... and the record still counts every source row, so a re-import finds nothing new.
    assert ImportedCase.objects.get(case=case).updates == 4
    assert run(export(tmp_path / "again.csv", rows), time_zone="UTC").cases_unchanged == 1


def test_a_known_case_counts_only_the_adjustments_of_its_new_updates(tmp_path):
    rows = [
        Row("INC1", "New", 0, "01/03 09:00"),
        Row("INC1", "Active", 1, "01/03 10:00"),
        Row("INC1", "Resolved", 2, "01/03 11:00"),
    ]
    first = imported(tmp_path, rows)
    assert {e["kind"] for e in first.adjustments} == {summary.OUTSIDE_LIFECYCLE, summary.MISSING_RESOLUTION}
    later = imported(tmp_path, [*rows, Row("INC1", "Active", 3, "02/03 09:00")], name="later.csv")
    assert later.cases_updated == 1
    assert counts(later) == {
        (summary.OUTSIDE_LIFECYCLE, "resolved → reopened → in_progress"): (1, 1, ["INC1"]),
    }


def test_the_command_reports_the_adjustments(tmp_path):
    path = export(
        tmp_path / "export.csv",
        [
            Row("INC1", "New", 0, "01/03 09:00"),
            Row("INC1", "Active", 1, "01/03 10:00"),
            Row("INC1", "Resolved", 2, "01/03 10:30"),
        ],
    )
    out = io.StringIO()
    call_command("import_history", str(path), format="servicenow-csv", tz="UTC", no_progress=True, stdout=out)
    text = out.getvalue()
    assert "Adjustments made to the source's history" in text
    assert "  Resolution instant missing (resolved_at): 1 in 1 case, e.g. INC1" in text
    assert (
        "  Transition outside the lifecycle new → in_progress, written as new → triaged → in_progress: "
        "1 in 1 case, e.g. INC1"
    ) in text


@pytest.mark.parametrize(
    ("path", "format"), [(DATA / "servicenow.csv", "servicenow-csv"), (DATA / "helpdesk.xes", "xes")]
)
def test_every_status_change_of_an_imported_export_is_one_the_lifecycle_allows(path, format):
    job = run(path, format=format)
    assert job.cases_created == 5
    for case in Case.objects.all():
        assert_lifecycle(case)
