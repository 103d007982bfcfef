"""An import and the metrics rollup: the job reports done only once the rollup holds the days the
import touched, and the dashboard's figures read from the rollup equal the direct selectors'
figures for a history the lifecycle had to be applied to (a re-resolution after the close, a
reopening, rows out of time order, passages through triaged)."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine

from cases.models import Case
from imports.mapping import default_mapping_text
from imports.models import ImportJob, JobPhase, JobStatus
from knowledge import services as knowledge
from metrics import rollup
from metrics import selectors as m
from metrics.models import DailyRollup, RollupDirtyDay, RollupState
from tests.imports.conftest import run
from tests.imports.history import Row, export, utc
from tests.metrics.direct import COUNTED, direct

pytestmark = pytest.mark.django_db
NOW = dt.datetime(2023, 4, 1, 12, 0, tzinfo=dt.UTC)
NEW_CASE = default_mapping_text("servicenow-csv").replace(
    'after_close = "reopen"', 'after_close = "new_case"'
)
PERIODS = [
    ("UTC", [(utc("01/03 00:00"), utc("08/03 00:00")), (utc("08/03 00:00"), utc("15/03 00:00"))]),
    ("Europe/Berlin", [(utc("05/03 23:00"), utc("12/03 23:00"))]),
    ("UTC", [(utc("01/03 00:00"), NOW.replace(day=1, hour=0))]),
]


def history(prefix: str) -> list[Row]:
    """Four incidents worked the way real exports show them."""
    a, b, c, d = (f"{prefix}{n}" for n in range(1, 5))
    return [
        # Resolved, closed, then resolved again after the close (ServiceNow's "closed -> resolved").
        Row(a, "New", 0, "01/03 09:00", priority="2 - High"),
        Row(a, "Active", 1, "01/03 09:30", priority="2 - High"),
        Row(a, "Resolved", 2, "01/03 12:00", resolved="01/03 11:45", priority="2 - High"),
        Row(a, "Closed", 3, "08/03 12:00", closed="08/03 12:00", priority="2 - High"),
        Row(a, "Resolved", 4, "09/03 10:00", resolved="09/03 10:00", priority="2 - High"),
        # Reopened once, with a row whose time is out of the source's order.
        Row(b, "New", 0, "02/03 09:00"),
        Row(b, "Active", 1, "02/03 10:00"),
        Row(b, "Awaiting User Info", 2, "02/03 11:00"),
        Row(b, "Active", 3, "02/03 10:55"),
        Row(b, "Resolved", 4, "03/03 09:00", resolved="03/03 09:00"),
        Row(b, "Active", 5, "06/03 09:00"),
        Row(b, "Resolved", 6, "06/03 15:00", resolved="06/03 15:00"),
        # Resolved at once without a resolution instant, then closed.
        Row(c, "New", 0, "07/03 09:00", priority="4 - Low"),
        Row(c, "Resolved", 1, "07/03 09:00", priority="4 - Low"),
        Row(c, "Closed", 2, "14/03 09:00", closed="14/03 09:00", priority="4 - Low"),
        # Still open, waiting on the vendor.
        Row(d, "New", 0, "10/03 09:00", priority="1 - Critical"),
        Row(d, "Awaiting Vendor", 1, "10/03 09:20", priority="1 - Critical"),
    ]


def assert_rollup_equals_direct() -> None:
    for tz, bounds in PERIODS:
        together = m.periods_metrics(bounds, tz=tz)
        for (start, end), figures in zip(bounds, together, strict=True):
            assert {k: figures[k] for k in COUNTED} == direct(start, end, tz), (tz, start, end)


def test_the_job_is_done_only_once_the_rollup_holds_the_imported_days(tmp_path, monkeypatch):
    seen = {}
    refresh_days = rollup.refresh_days

    def watched(days, **kwargs):
        seen["before"] = ImportJob.objects.values_list("status", "phase").get()
        done = refresh_days(days, **kwargs)
        seen["after"] = ImportJob.objects.values_list("status", "phase").get()
        seen["dirty"] = set(RollupDirtyDay.objects.values_list("day", flat=True))
        seen["rolled"] = set(DailyRollup.objects.values_list("day", flat=True))
        return done

    monkeypatch.setattr(rollup, "refresh_days", watched)
    with time_machine.travel(NOW, tick=False):
        job = run(export(tmp_path / "export.csv", history("INC")), time_zone="UTC", now=NOW)

    assert job.status == JobStatus.SUCCEEDED
    assert (job.phase, job.error) == (JobPhase.DONE, "")
    # The refresh ran while the job was still running, in a phase of its own ...
    assert seen["before"] == seen["after"] == (JobStatus.RUNNING, JobPhase.REFRESHING)
    # ... and when it returned, the days the imported cases count on were rolled up (created on
    # 1, 2, 7 and 10 March, resolved on 1, 3, 6, 7 and 9 March) and none was left dirty.
    counted_days = {dt.date(2023, 3, day) for day in (1, 2, 3, 6, 7, 9, 10)}
    assert counted_days <= seen["rolled"]
    assert not {d for d in seen["dirty"] if d < dt.date(2023, 3, 31)}
    assert RollupState.objects.get().through == dt.date(2023, 3, 31)


def test_the_rollup_s_figures_equal_the_direct_ones_for_an_imported_history(tmp_path, agent):
    """The first file is imported with the default mapping (a close the source went back on is
    withdrawn, the case reopened), the second with linked follow-ups. INC1's and INC2's resolutions
    are each counted once in the reopen-rate and knowledge-reuse denominators, however often the
    source resolved them."""
    with time_machine.travel(NOW, tick=False):
        run(export(tmp_path / "reopen.csv", history("INC")), time_zone="UTC", now=NOW)
        run(export(tmp_path / "linked.csv", history("REQ")), time_zone="UTC", now=NOW, mapping_text=NEW_CASE)
        article = knowledge.create_draft(title="Restarting the connector", actor=agent, now=NOW)
        for ref in ("INC1", "REQ1#2", "INC2"):
            knowledge.link_to_case(article, Case.objects.get(external_ref=ref), actor=agent, now=NOW)
        rollup.refresh(now=NOW)
        assert not RollupDirtyDay.objects.filter(day__lt=dt.date(2023, 3, 31)).exists()

        assert Case.objects.get(external_ref="INC1").reopen_count == 1
        assert Case.objects.get(external_ref="REQ1#2").follow_up_of == Case.objects.get(external_ref="REQ1")
        march = m.periods_metrics([(utc("01/03 00:00"), utc("01/04 00:00"))], tz="UTC")[0]
        # Reopened in March: INC1 (after its withdrawn close) and INC2, REQ2 (REQ1's later
        # resolution is its follow-up's); resolved: INC1-3, REQ1, REQ1#2, REQ2, REQ3.
        assert march["reopen_rate"] == m.Ratio(3, 7)
        assert march["knowledge_reuse"] == m.Ratio(3, 7)
        assert march["time_to_resolve"].overall.count == 7
        assert_rollup_equals_direct()
