"""Drill-down, trends, targets and the agent's week, against the data set of conftest.py.

Every figure on the dashboard links to the cases it counts: the sum of ``counted`` over
``counted_cases`` must be the figure's own count, for every metric and part.
"""

from __future__ import annotations

import pytest
from django.db.models import Sum

from metrics import selectors as m
from tests.factories import at
from tests.metrics.conftest import BERLIN, PERIOD, UTC_WEEK

pytestmark = pytest.mark.django_db


def keys(qs):
    return sorted(case.title for case in qs)


def total(qs):
    return qs.aggregate(n=Sum("counted"))["n"] or 0


@pytest.mark.parametrize("period", [PERIOD, UTC_WEEK], ids=["berlin", "utc"])
def test_every_ratio_part_sums_to_its_figure(dataset, period):
    kpis = m.period_metrics(**period)
    numerators = {
        "reopen_rate": "reopened",
        "escalation_rate": "escalated",
        "engineering_bounce_rate": "bounced",
        "knowledge_reuse": "linked",
        "update_cadence_adherence": "met",
    }
    for metric, part in numerators.items():
        ratio = kpis[metric]
        assert total(m.counted_cases(metric, part=part, **period)) == ratio.numerator, metric
        assert total(m.counted_cases(metric, **period)) == ratio.denominator, metric


@pytest.mark.parametrize("period", [PERIOD, UTC_WEEK], ids=["berlin", "utc"])
def test_compliance_cells_sum_to_their_clocks(dataset, period):
    compliance = m.sla_compliance(**period)
    for target, per in compliance.items():
        for severity, ratio in per.items():
            filters = {} if severity == "all" else {"severity": severity}
            met = m.counted_cases("sla_compliance", target=target, part="met", **period, **filters)
            done = m.counted_cases("sla_compliance", target=target, **period, **filters)
            assert (total(met), total(done)) == (ratio.numerator, ratio.denominator), (target, severity)


def test_durations_link_to_the_cases_they_measure(dataset):
    assert keys(m.counted_cases("first_response_time", **PERIOD)) == ["A", "C"]
    assert keys(m.counted_cases("time_to_resolve", **PERIOD)) == ["A", "B"]
    assert keys(m.counted_cases("time_to_triage", **PERIOD)) == ["A", "C"]
    assert keys(m.counted_cases("volume_created", **PERIOD)) == ["A", "C"]
    # In UTC the week holds D's first response and not C's (C answered Sunday 23:50 UTC).
    assert keys(m.counted_cases("first_response_time", **UTC_WEEK)) == ["A", "D"]
    assert m.counted_cases("first_response_time", **PERIOD, severity="P1").count() == 2


def test_a_case_reopened_twice_is_one_reopened_case(dataset):
    reopened = m.counted_cases("reopen_rate", part="reopened", **PERIOD)
    assert keys(reopened) == ["A"]
    assert keys(m.counted_cases("reopen_rate", part="resolved", **PERIOD)) == ["A", "B"]


def test_backlog_cells_list_their_open_cases(dataset):
    now = at(2025, 3, 10, 12, 0)
    aging = m.backlog_aging(now=now)
    for label, *_ in m.AGE_BUCKETS:
        assert total(m.counted_cases("backlog", now=now, bucket=label)) == sum(aging[label].values())
    assert keys(m.counted_cases("backlog", now=now, bucket=">21d")) == ["E"]
    assert keys(m.counted_cases("backlog", now=now)) == ["C", "D", "E"]


@pytest.mark.parametrize(
    ("metric", "kwargs"),
    [
        ("colour", {}),
        ("reopen_rate", {"part": "met"}),
        ("sla_compliance", {"target": "lunch"}),
        ("backlog", {"bucket": "ancient"}),
    ],
)
def test_unknown_drilldowns_are_refused(db, metric, kwargs):
    with pytest.raises(ValueError):
        m.counted_cases(metric, now=at(2025, 3, 10), **PERIOD, **kwargs)


def test_trends_give_twelve_local_weeks_of_every_series(dataset):
    series = m.trends(end=at(2025, 3, 9, 12, 0, tz=BERLIN), tz=BERLIN)
    assert len(series["weeks"]) == 12
    assert series["weeks"][-1] == at(2025, 3, 3, tz=BERLIN)
    for name in ("first_response_time", "time_to_resolve", "sla_compliance", "reopen_rate", "volume"):
        assert len(series[name]) == 12, name
    # The last week is the period of conftest.py: FRT A 600 s and C 1200 s; MTTR A 7200 s and B 172800 s.
    assert series["first_response_time"][-1].median == 900.0
    assert series["time_to_resolve"][-1].median == (7200.0 + 172800.0) / 2
    assert series["reopen_rate"][-1].rate == 0.5
    compliance = m.sla_compliance(**PERIOD)
    assert series["sla_compliance"][-1].denominator == sum(
        per["all"].denominator for per in compliance.values()
    )
    assert series["sla_compliance"][-1].numerator == sum(per["all"].numerator for per in compliance.values())
    # Week of 02-24: B answered late (FRT 7200 s); nothing resolved.
    assert series["first_response_time"][-2].count == 1
    assert series["time_to_resolve"][-2].count == 0
    assert [v["created"] for v in series["volume"][-2:]] == [1, 2]
    assert series["first_response_time"][0].median is None


def test_sla_targets_come_from_the_policies(db):
    from sla.models import SlaPolicy

    targets = m.sla_targets()
    policy = SlaPolicy.objects.get(tier="enterprise", severity="P1")
    assert targets["enterprise"]["P1"]["first_response"] == policy.first_response_minutes == 15
    policy.first_response_minutes = 10
    policy.save()
    assert m.sla_targets()["enterprise"]["P1"]["first_response"] == 10


def test_an_agents_week(dataset, agent):
    overview = m.agent_overview(user=agent, now=at(2025, 3, 7, 12, 0), tz=BERLIN)
    assert overview["week_start"] == at(2025, 3, 3, tz=BERLIN)
    # Alice has A, B and D. Answered this Berlin week: only A (600 s); B was answered the week
    # before and D on Monday 00:40 of the next one. Cadence: A's P1 run, met on time (C is not hers).
    frt = overview["first_response_time"]
    assert (frt.count, frt.median) == (1, 600.0)
    cadence = overview["update_cadence_adherence"]
    assert (cadence.numerator, cadence.denominator) == (1, 1)
    # A and B are resolved: her open case is D.
    assert keys(overview["open_cases"]) == ["D"]
