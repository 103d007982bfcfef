"""The warning ladder in the service: configured by a manager, each rung recorded and notified once
per clock run by the sweep, to the people it names as they are when it fires."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from cases import services as case_services
from cases.models import CaseEvent
from escalations.models import WebhookDelivery, WebhookEvent, WebhookSubscription
from sla import services
from sla.models import (
    ClockRung,
    ClockState,
    DutyShift,
    SlaClock,
    SlaPolicy,
    Target,
    TeamLead,
    WarningThreshold,
)
from sla.services import ThresholdInput
from supportdesk.core.models import Notification, OutboundMessage
from tests import factories
from tests.factories import at

T0 = at(2026, 3, 4, 10, 0)
MIN = dt.timedelta(minutes=1)
FR = Target.FIRST_RESPONSE

#: Enterprise P2's first response (1 h, 24x7): 50 % to the assignee, 75 % to the team lead, 90 % to
#: the managers, the breach to the duty manager; the last two also as webhooks.
LADDER = [
    ThresholdInput(FR, 50, ["assignee"], webhook=False),
    ThresholdInput(FR, 75, ["team_lead"], webhook=False),
    ThresholdInput(FR, 90, ["managers"]),
    ThresholdInput(FR, 100, ["duty_manager"]),
]


@pytest.fixture
def p2_policy(db) -> SlaPolicy:
    return SlaPolicy.objects.get(tier="enterprise", severity="P2")


@pytest.fixture
def ladder(p2_policy):
    return services.save_ladder(p2_policy, thresholds=LADDER)


@pytest.fixture
def people(agent, other_agent, manager):
    """alice (assignee), bob (another agent), maria (manager), lena (the team's lead), dora (duty)."""
    team = factories.TeamFactory(name="Tier 2", slug="tier-2")
    team.members.add(agent, other_agent)
    lena = factories.AgentFactory(username="lena", email="lena@support.example")
    TeamLead.objects.create(team=team, user=lena)
    dora = factories.ManagerFactory(username="dora", email="dora@support.example")
    DutyShift.objects.create(user=dora, starts_at=T0 - 60 * MIN, ends_at=T0 + 12 * 60 * MIN)
    return {"team": team, "lena": lena, "dora": dora}


@pytest.fixture
def sla_hook(db):
    return WebhookSubscription.objects.create(
        url="https://hooks.example.com/sla",
        events=[WebhookEvent.SLA_WARNING, WebhookEvent.SLA_BREACHED],
    )


def _case(organisation, contact, agent, *, team=None, now=T0, severity="P2"):
    return case_services.create_case(
        title="Checkout fails",
        organisation=organisation,
        requester=contact,
        severity=severity,
        assignee=agent,
        team=team,
        actor=agent,
        now=now,
    )


def _told(key_part: str) -> list[tuple[str, str]]:
    notes = Notification.objects.filter(dedupe_key__endswith=key_part)
    return sorted(notes.values_list("recipient__username", "dedupe_key"))


def _sla_events(case) -> list[tuple[str, int, bool]]:
    rows = case.events.filter(kind__in=services.SLA_EVENT_KINDS).order_by("created_at", "id")
    return [(e.kind, e.new_value["percent"], bool(e.new_value.get("late"))) for e in rows]


# --- Configuration -------------------------------------------------------------------------------


def test_a_ladder_is_saved_per_policy_and_target_and_replaced_as_a_whole(p2_policy):
    saved = services.save_ladder(p2_policy, thresholds=LADDER)
    assert [(t.target, t.percent, t.notify, t.webhook) for t in saved] == [
        (FR, 50, ["assignee"], False),
        (FR, 75, ["team_lead"], False),
        (FR, 90, ["managers"], True),
        (FR, 100, ["duty_manager"], True),
    ]
    assert services.ladders_of(p2_policy.pk) == {FR: (0.5, 0.75, 0.9)}
    kept = WarningThreshold.objects.get(policy=p2_policy, percent=90)
    services.save_ladder(
        p2_policy,
        thresholds=[ThresholdInput(FR, 90, ["managers", "assignee"]), ThresholdInput(FR, 60, [], True)],
    )
    rows = WarningThreshold.objects.filter(policy=p2_policy)
    assert sorted(rows.values_list("percent", "notify")) == [(60, []), (90, ["managers", "assignee"])]
    assert rows.get(percent=90).pk == kept.pk  # changed in place: the audit trail shows one change
    assert WarningThreshold.history.filter(percent=50, history_type="-").exists()


@pytest.mark.parametrize(
    ("rung", "message"),
    [
        (ThresholdInput("lunch", 50, ["assignee"]), "is not a target"),
        (ThresholdInput(FR, 0, ["assignee"]), "from 1 to 100"),
        (ThresholdInput(FR, 120, ["assignee"]), "from 1 to 100"),
        (ThresholdInput(FR, 50, ["the_ceo"]), "is not someone to tell"),
        (ThresholdInput(FR, 50, [], webhook=False), "tells nobody"),
    ],
)
def test_an_invalid_rung_is_refused_with_a_reason(p2_policy, rung, message):
    with pytest.raises(ValidationError) as exc:
        services.save_ladder(p2_policy, thresholds=[rung])
    assert message in " ".join(exc.value.message_dict["thresholds"])
    assert not WarningThreshold.objects.exists()


def test_a_percentage_twice_for_one_target_is_refused(p2_policy):
    with pytest.raises(ValidationError, match="given twice"):
        services.save_ladder(p2_policy, thresholds=[ThresholdInput(FR, 50, ["assignee"])] * 2)


# --- The sweep -----------------------------------------------------------------------------------


def test_each_rung_is_recorded_and_notified_once_to_the_people_it_names(
    organisation, contact, agent, manager, people, ladder, sla_hook
):
    case = _case(organisation, contact, agent, team=people["team"])
    fr = SlaClock.objects.get(case=case, target=FR)
    assert (fr.warning_ratio, fr.warn_at) == (0.5, T0 + 30 * MIN)
    assert list(fr.rungs.values_list("ratio", "warn_at")) == [(0.75, T0 + 45 * MIN), (0.9, T0 + 54 * MIN)]

    for minute in (31, 46, 55, 61):
        assert services.record_due_warnings_and_breaches(now=T0 + minute * MIN) == 1
        assert services.record_due_warnings_and_breaches(now=T0 + minute * MIN) == 0  # a second sweep

    assert _sla_events(case) == [
        ("sla_warning", 50, False),
        ("sla_warning", 75, False),
        ("sla_warning", 90, False),
        ("sla_breached", 100, False),
    ]
    assert _told(":warning") == [("alice", f"sla:{fr.pk}:warning")]
    assert _told(":warning-75") == [("lena", f"sla:{fr.pk}:warning-75")]
    assert _told(":warning-90") == [("dora", f"sla:{fr.pk}:warning-90"), ("maria", f"sla:{fr.pk}:warning-90")]
    assert _told(":breach") == [("dora", f"sla:{fr.pk}:breach")]
    note = Notification.objects.get(dedupe_key=f"sla:{fr.pk}:warning-75")
    assert note.title == f"{case.key} P2: First response at risk (75 %)"
    assert "75 % used" in note.body
    mails = dict(OutboundMessage.objects.values_list("dedupe_key", "to"))
    assert mails[f"sla:{fr.pk}:warning-90"] == ["dora@support.example", "maria@support.example"]
    # Webhooks only for the rungs that send them, once each.
    deliveries = WebhookDelivery.objects.filter(subscription=sla_hook).order_by("id")
    assert [(d.event, d.payload["threshold"]["percent"]) for d in deliveries] == [
        (WebhookEvent.SLA_WARNING, 90),
        (WebhookEvent.SLA_BREACHED, 100),
    ]
    fr.refresh_from_db()
    assert fr.state == ClockState.BREACHED
    assert list(fr.rungs.values_list("warned_at", flat=True)) == [T0 + 46 * MIN, T0 + 55 * MIN]


def test_the_people_are_the_ones_in_place_when_a_rung_fires(
    organisation, contact, agent, other_agent, manager, people, ladder
):
    # Configured (the ladder fixture) and started with alice assigned, lena leading, dora on duty...
    case = _case(organisation, contact, agent, team=people["team"])
    fr = _fr(case)
    # ... and changed before the rungs fire: bob takes the case, nils leads the team, nora's shift
    # begins (overlapping dora's, so the later one is on duty).
    case_services.update_case(case, assignee=other_agent, actor=manager, now=T0 + 5 * MIN)
    nils = factories.AgentFactory(username="nils")
    TeamLead.objects.filter(team=people["team"]).update(user=nils)
    nora = factories.ManagerFactory(username="nora")
    DutyShift.objects.create(user=nora, starts_at=T0 + 58 * MIN, ends_at=T0 + 10 * 60 * MIN)

    for minute in (31, 46, 55, 61):
        services.record_due_warnings_and_breaches(now=T0 + minute * MIN)
    told = Notification.objects.filter(dedupe_key__startswith=f"sla:{fr.pk}:")
    assert sorted(told.values_list("dedupe_key", "recipient__username")) == [
        (f"sla:{fr.pk}:breach", "nora"),
        (f"sla:{fr.pk}:warning", "bob"),
        (f"sla:{fr.pk}:warning-75", "nils"),
        # "the managers" are every active manager when it fires
        (f"sla:{fr.pk}:warning-90", "dora"),
        (f"sla:{fr.pk}:warning-90", "maria"),
        (f"sla:{fr.pk}:warning-90", "nora"),
    ]


def test_without_a_lead_or_anyone_on_duty_the_managers_are_told(
    organisation, contact, agent, manager, p2_policy
):
    services.save_ladder(
        p2_policy,
        thresholds=[ThresholdInput(FR, 75, ["team_lead"]), ThresholdInput(FR, 100, ["duty_manager"])],
    )
    case = _case(organisation, contact, agent, team=factories.TeamFactory(name="Leaderless", slug="x"))
    fr = _fr(case)
    services.record_due_warnings_and_breaches(now=T0 + 46 * MIN)
    services.record_due_warnings_and_breaches(now=T0 + 61 * MIN)
    assert _told(":warning") == [("maria", f"sla:{fr.pk}:warning")]
    assert _told(":breach") == [("maria", f"sla:{fr.pk}:breach")]


def test_a_clock_started_before_its_policy_had_a_ladder_keeps_its_single_warning(
    organisation, contact, agent, manager, p2_policy
):
    case = _case(organisation, contact, agent)
    services.save_ladder(p2_policy, thresholds=LADDER)
    fr = _fr(case)
    assert (fr.warning_ratio, fr.rungs.count()) == (0.75, 0)
    assert services.record_due_warnings_and_breaches(now=T0 + 31 * MIN) == 0
    assert services.record_due_warnings_and_breaches(now=T0 + 46 * MIN) == 1
    # Whom it tells is read when it fires: the ladder's 75 % rung names the team lead, and a case
    # without a team has none, so the managers are told.
    assert _told(":warning") == [("maria", f"sla:{fr.pk}:warning")]
    # Its breach is the ladder's 100 % rung, read when it fires: the duty manager (none: managers).
    services.record_due_warnings_and_breaches(now=T0 + 61 * MIN)
    assert _told(":breach") == [("maria", f"sla:{fr.pk}:breach")]


def _fr(case) -> SlaClock:
    return SlaClock.objects.get(case=case, target=FR)


def test_a_rung_first_seen_after_a_higher_one_is_recorded_once_late_and_its_people_told_with_it(
    organisation, contact, agent, manager, people, ladder
):
    case = _case(organisation, contact, agent, team=people["team"])
    fr = _fr(case)
    # No sweep from before 50 % until after 75 % (a stopped beat).
    assert services.record_due_warnings_and_breaches(now=T0 + 50 * MIN) == 1
    assert _sla_events(case) == [("sla_warning", 50, True), ("sla_warning", 75, False)]
    late = case.events.filter(kind="sla_warning").order_by("id").first()
    assert late.new_value["warn_at"] == (T0 + 30 * MIN).isoformat()
    assert "Recorded late, with the 75 % warning" in late.body
    # One notification, of the 75 % rung, to its people and the 50 % rung's, saying 50 % came late.
    notes = Notification.objects.filter(title__startswith=f"{case.key} ")
    assert sorted(notes.values_list("recipient__username", "dedupe_key")) == [
        ("alice", f"sla:{fr.pk}:warning-75"),
        ("lena", f"sla:{fr.pk}:warning-75"),
    ]
    assert all("The 50 % warning was not sent in time" in n.body for n in notes)
    assert services.record_due_warnings_and_breaches(now=T0 + 52 * MIN) == 0
    # The breach, first seen long after: the 90 % rung is recorded late with it.
    assert services.record_due_warnings_and_breaches(now=T0 + 80 * MIN) == 1
    assert _sla_events(case)[2:] == [("sla_warning", 90, True), ("sla_breached", 100, False)]
    breach_notes = Notification.objects.filter(dedupe_key=f"sla:{fr.pk}:breach")
    assert sorted(breach_notes.values_list("recipient__username", flat=True)) == ["dora", "maria"]
    assert all("The 90 % warning was not sent in time" in n.body for n in breach_notes)


def test_a_paused_clocks_rungs_are_not_swept_and_move_with_the_pause(
    organisation, contact, agent, manager, p2_policy
):
    services.save_ladder(
        p2_policy,
        thresholds=[ThresholdInput(Target.RESOLUTION, p, ["assignee"]) for p in (50, 75, 90)],
    )
    case = _case(organisation, contact, agent)  # resolution 24 h, 24x7
    case_services.add_public_reply(case, body="Looking", actor=agent, now=T0 + MIN)
    case = case_services.transition(case, "triaged", severity="P2", actor=agent, now=T0 + 2 * MIN)
    case = case_services.transition(case, "in_progress", actor=agent, now=T0 + 2 * MIN)
    case = case_services.transition(case, "waiting_on_customer", actor=agent, now=T0 + 60 * MIN)
    resolution = SlaClock.objects.get(case=case, target=Target.RESOLUTION)
    assert resolution.state == ClockState.PAUSED
    assert list(resolution.rungs.values_list("warn_at", flat=True)) == [None, None]
    assert not ClockRung.objects.filter(warn_at__isnull=False).exists()
    case = case_services.transition(case, "in_progress", actor=agent, now=T0 + 5 * 60 * MIN)
    resolution.refresh_from_db()
    assert resolution.warn_at == T0 + (12 + 4) * 60 * MIN  # 12 h of 24, plus 4 h waiting
    assert list(resolution.rungs.values_list("warn_at", flat=True)) == [
        T0 + (18 + 4) * 60 * MIN,
        T0 + (1296 + 240) * MIN,  # 90 % of 24 h is 21 h 36 min
    ]


def test_a_severity_change_puts_the_new_policys_ladder_on_the_live_clocks(
    organisation, contact, agent, manager, p2_policy
):
    p1 = SlaPolicy.objects.get(tier="enterprise", severity="P1")  # first response 15 min, 24x7
    services.save_ladder(p1, thresholds=[ThresholdInput(FR, p, ["managers"]) for p in (40, 60, 80)])
    case = _case(organisation, contact, agent)
    assert not _fr(case).rungs.exists()
    services.record_due_warnings_and_breaches(now=T0 + 8 * MIN)  # nothing: P2 warns at 45 min
    case_services.update_case(case, severity="P1", actor=manager, now=T0 + 9 * MIN)
    fr = _fr(case)
    assert (fr.warning_ratio, fr.warn_at) == (0.4, T0 + 6 * MIN)
    assert list(fr.rungs.values_list("ratio", "warn_at")) == [(0.6, T0 + 9 * MIN), (0.8, T0 + 12 * MIN)]
    assert services.record_due_warnings_and_breaches(now=T0 + 10 * MIN) == 1
    assert _sla_events(case) == [("sla_warning", 40, True), ("sla_warning", 60, False)]
    # Back to P2, which has no ladder: the clock warns once again, its rungs go.
    case_services.update_case(case, severity="P2", actor=manager, now=T0 + 11 * MIN)
    assert not _fr(case).rungs.exists()
    assert _fr(case).warned_at == T0 + 10 * MIN


def test_a_clock_met_late_records_its_missed_rungs_and_announces_the_breach(
    organisation, contact, agent, manager, people, ladder, sla_hook
):
    case = _case(organisation, contact, agent, team=people["team"])
    services.record_due_warnings_and_breaches(now=T0 + 31 * MIN)
    case_services.add_public_reply(case, body="Sorry for the wait", actor=agent, now=T0 + 70 * MIN)
    assert _sla_events(case) == [
        ("sla_warning", 50, False),
        ("sla_warning", 75, True),
        ("sla_warning", 90, True),
        ("sla_breached", 100, False),
    ]
    assert Notification.objects.filter(dedupe_key__endswith="breach").count() == 0  # nobody must act
    breach = WebhookDelivery.objects.get(event=WebhookEvent.SLA_BREACHED)
    assert breach.payload["threshold"] == {
        "percent": 100,
        "reached_at": (T0 + 60 * MIN).isoformat(),
        "late": True,
    }
    assert breach.payload["clock"]["met_at"] == (T0 + 70 * MIN).isoformat()
    assert WebhookDelivery.objects.filter(event=WebhookEvent.SLA_WARNING).count() == 1  # 90 % (late)


def test_a_rung_that_tells_only_the_managers_does_not_mail_the_teams_mailbox(
    organisation, contact, agent, manager, p2_policy
):
    team = factories.TeamFactory(name="Tier 2", slug="tier-2", email="tier2@support.example")
    team.members.add(agent)
    services.save_ladder(p2_policy, thresholds=[ThresholdInput(FR, 75, ["managers"])])
    case = case_services.create_case(
        title="Unassigned", organisation=organisation, requester=contact, severity="P2", team=team,
        actor=agent, now=T0,
    )  # fmt: skip
    services.record_due_warnings_and_breaches(now=T0 + 46 * MIN)
    assert list(OutboundMessage.objects.filter(case_id=case.pk).values_list("to", flat=True)) == [
        ["maria@support.example"]
    ]


def test_with_ladders_and_nothing_due_the_sweep_is_still_two_indexed_queries(
    organisation, contact, agent, ladder, django_assert_num_queries
):
    for _ in range(5):
        _case(organisation, contact, agent)
    assert ClockRung.objects.count() == 10
    with django_assert_num_queries(2):  # breaches; warnings (own and further rungs in one statement)
        assert services.record_due_warnings_and_breaches(now=T0 + 29 * MIN) == 0


def test_a_further_rung_costs_its_claim_and_its_timeline_event(organisation, contact, agent, ladder):
    def queries_to_sweep(due: int) -> int:
        for _ in range(due):
            _case(organisation, contact, agent)
        services.record_due_warnings_and_breaches(now=T0 + 31 * MIN)  # the 50 % rungs
        with CaptureQueriesContext(connection) as ctx:
            recorded = services.record_due_warnings_and_breaches(now=T0 + 46 * MIN)
        assert recorded == due
        SlaClock.objects.all().update(state=ClockState.CANCELLED)
        return len(ctx.captured_queries)

    assert queries_to_sweep(4) - queries_to_sweep(3) == 2
    assert CaseEvent.objects.filter(kind="sla_warning", new_value__percent=75).count() == 7


def test_a_further_rung_the_sweep_keeps_missing_is_sweep_lag(organisation, contact, agent, ladder):
    from sla import selectors

    case = _case(organisation, contact, agent)
    services.record_due_warnings_and_breaches(now=T0 + 31 * MIN)  # the 50 % rung; 75 % is due at +45
    case.updated_at = T0  # nobody changed the case since
    case.save(update_fields=["updated_at"])
    five = dt.timedelta(minutes=5)
    assert selectors.oldest_unrecorded_deadline(now=T0 + 49 * MIN, older_than=five) is None
    missed = selectors.oldest_unrecorded_deadline(now=T0 + 51 * MIN, older_than=five)
    assert (missed.case_id, missed.target, missed.kind, missed.due) == (case.pk, FR, "warning", T0 + 45 * MIN)
    services.record_due_warnings_and_breaches(now=T0 + 51 * MIN)
    assert selectors.oldest_unrecorded_deadline(now=T0 + 52 * MIN, older_than=five) is None
