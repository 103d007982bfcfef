"""The escalation lifecycle through its services: every transition, the quality override, and the case
status and timeline following the escalation."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import PermissionDenied

from cases import services as case_services
from cases.models import CaseEvent, Status
from escalations import services
from escalations.models import Escalation
from escalations.states import ACTIONS, ALLOWED, EscalationState, IllegalEscalationTransition
from supportdesk.core.errors import Conflict, DomainError
from supportdesk.core.models import Notification
from tests import factories
from tests.escalations.conftest import PATHS, complete_package, perform

S = EscalationState
pytestmark = pytest.mark.django_db

PAIRS = [(state, action) for state in S.values for action in ACTIONS]


def _kinds(case) -> list[str]:
    return list(CaseEvent.objects.filter(case=case).order_by("id").values_list("kind", flat=True))


def _status_changes(case) -> list[tuple[str, str]]:
    return [
        (e.old_value, e.new_value)
        for e in CaseEvent.objects.filter(case=case, kind="status_changed").order_by("id")
    ]


# --- Every legal and illegal transition ----------------------------------------------------------


@pytest.mark.parametrize(("state", "action"), PAIRS, ids=[f"{s}-{a}" for s, a in PAIRS])
def test_each_action_from_each_state_is_allowed_or_refused_with_400(
    escalation_in, state, action, agent, engineer, now
):
    escalation = escalation_in(state)
    events_before = CaseEvent.objects.filter(case=escalation.case).count()
    rule = ACTIONS[action]
    if state in rule.sources:
        escalation = perform(escalation, action, agent=agent, engineer=engineer, now=now)
        escalation.refresh_from_db()
        assert escalation.state == (rule.target or state)
        assert CaseEvent.objects.filter(case=escalation.case).count() > events_before
    else:
        with pytest.raises(IllegalEscalationTransition) as info:
            perform(escalation, action, agent=agent, engineer=engineer, now=now)
        assert info.value.status_code == 400
        assert escalation.key in info.value.message
        escalation.refresh_from_db()
        assert escalation.state == state
        assert CaseEvent.objects.filter(case=escalation.case).count() == events_before


def test_the_transition_table_is_the_documented_lifecycle():
    expected = {
        S.DRAFT: {S.SUBMITTED, S.WITHDRAWN},
        S.SUBMITTED: {S.ACKNOWLEDGED, S.NEEDS_INFO, S.DECLINED, S.WITHDRAWN},
        S.ACKNOWLEDGED: {S.IN_PROGRESS, S.NEEDS_INFO, S.DECLINED, S.WITHDRAWN},
        S.NEEDS_INFO: {S.SUBMITTED, S.DECLINED, S.WITHDRAWN},
        S.IN_PROGRESS: {S.RESOLVED, S.NEEDS_INFO, S.DECLINED, S.WITHDRAWN},
        S.RESOLVED: set(),
        S.DECLINED: set(),
        S.WITHDRAWN: set(),
    }
    assert expected == ALLOWED


def test_every_state_is_reachable_for_the_tests():
    assert set(PATHS) == set(S.values)


# --- Timeline -------------------------------------------------------------------------------------


def test_every_step_is_a_timeline_event_with_old_and_new_state(draft, agent, engineer, now):
    later = now + dt.timedelta(minutes=5)
    escalation = services.submit(draft, actor=agent, now=later)
    escalation = services.request_info(escalation, questions="Which build?", actor=engineer, now=later)
    escalation = services.answer_info_request(escalation, answer="Build 4.2.0-17", actor=agent, now=later)
    escalation = services.acknowledge(escalation, actor=engineer, now=later)
    escalation = services.link(escalation, external_key="PAY-9", actor=engineer, now=later)
    escalation = services.start(escalation, actor=engineer, now=later)
    services.resolve(escalation, resolution="Timeout raised", fix_version="4.2.1", actor=engineer, now=later)
    events = {e.kind: e for e in CaseEvent.objects.filter(case=draft.case, kind__startswith="escalation_")}
    assert list(events) == [
        "escalation_drafted",
        "escalation_submitted",
        "escalation_info_requested",
        "escalation_info_provided",
        "escalation_acknowledged",
        "escalation_linked",
        "escalation_started",
        "escalation_resolved",
    ]
    assert (events["escalation_submitted"].old_value, events["escalation_submitted"].new_value) == (
        "draft",
        "submitted",
    )
    assert events["escalation_info_requested"].body == "Which build?"
    assert events["escalation_info_requested"].actor == engineer
    assert events["escalation_info_provided"].body == "Build 4.2.0-17"
    assert events["escalation_info_provided"].new_value == "submitted"
    assert events["escalation_resolved"].body == "Fixed in 4.2.1. Timeout raised"
    assert events["escalation_linked"].new_value == "PAY-9"
    assert all(not e.is_public for e in events.values())


# --- The case follows ----------------------------------------------------------------------------


def test_submitting_moves_a_triaged_case_through_in_progress_to_waiting_on_engineering(draft, agent, now):
    services.submit(draft, actor=agent, now=now)
    draft.case.refresh_from_db()
    assert draft.case.status == Status.WAITING_ON_ENGINEERING
    assert _status_changes(draft.case)[-2:] == [
        ("triaged", "in_progress"),
        ("in_progress", "waiting_on_engineering"),
    ]


def test_submitting_from_in_progress_is_one_step(triaged_case, payments, agent, now):
    case = case_services.transition(triaged_case, Status.IN_PROGRESS, actor=agent, now=now)
    escalation = services.create_draft(case=case, team=payments, actor=agent, now=now, **complete_package())
    services.submit(escalation, actor=agent, now=now)
    assert _status_changes(case)[-1] == ("in_progress", "waiting_on_engineering")
    assert len(_status_changes(case)) == 3  # triaged, in progress, waiting on engineering


def test_submitting_for_a_reopened_case(triaged_case, payments, agent, now):
    case = case_services.transition(triaged_case, Status.RESOLVED, actor=agent, now=now)
    case = case_services.transition(case, Status.REOPENED, actor=agent, now=now)
    escalation = services.create_draft(case=case, team=payments, actor=agent, now=now, **complete_package())
    services.submit(escalation, actor=agent, now=now)
    case.refresh_from_db()
    assert case.status == Status.WAITING_ON_ENGINEERING
    assert _status_changes(case)[-2:] == [
        ("reopened", "in_progress"),
        ("in_progress", "waiting_on_engineering"),
    ]


def test_a_new_case_must_be_triaged_before_it_is_escalated(new_case, payments, agent, now):
    escalation = services.create_draft(
        case=new_case, team=payments, actor=agent, now=now, **complete_package()
    )
    with pytest.raises(DomainError, match="Triage"):
        services.submit(escalation, actor=agent, now=now)
    escalation.refresh_from_db()
    assert escalation.state == S.DRAFT
    new_case.refresh_from_db()
    assert new_case.status == Status.NEW


def test_a_resolved_case_cannot_get_a_new_draft(triaged_case, payments, agent, now):
    case_services.transition(triaged_case, Status.RESOLVED, actor=agent, now=now)
    with pytest.raises(DomainError, match="reopen it"):
        services.create_draft(case=triaged_case, team=payments, actor=agent, now=now, **complete_package())


@pytest.mark.parametrize("action", ["resolve", "decline", "withdraw"])
def test_finishing_the_only_open_escalation_puts_the_case_back_in_progress(
    escalation_in, action, agent, engineer, now
):
    escalation = escalation_in(S.IN_PROGRESS)
    perform(escalation, action, agent=agent, engineer=engineer, now=now)
    escalation.case.refresh_from_db()
    assert escalation.case.status == Status.IN_PROGRESS
    assert _status_changes(escalation.case)[-1] == ("waiting_on_engineering", "in_progress")
    last = CaseEvent.objects.filter(case=escalation.case, kind="status_changed").last()
    expected_actor = agent if action == "withdraw" else engineer
    assert last.actor == expected_actor


def test_the_case_keeps_waiting_while_another_team_still_has_an_open_escalation(
    escalation_in, identity, agent, engineer, now
):
    payments_escalation = escalation_in(S.IN_PROGRESS)
    other = services.create_draft(
        case=payments_escalation.case, team=identity, actor=agent, now=now, **complete_package(component="")
    )
    services.submit(other, actor=agent, now=now)
    services.resolve(payments_escalation, resolution="Fixed", actor=engineer, now=now)
    payments_escalation.case.refresh_from_db()
    assert payments_escalation.case.status == Status.WAITING_ON_ENGINEERING
    services.decline(other, reason="Not ours", actor=engineer, now=now)
    payments_escalation.case.refresh_from_db()
    assert payments_escalation.case.status == Status.IN_PROGRESS


def test_a_case_an_agent_already_moved_on_is_left_where_it_is(escalation_in, agent, engineer, now):
    escalation = escalation_in(S.ACKNOWLEDGED)
    case_services.transition(escalation.case, Status.IN_PROGRESS, actor=agent, now=now)
    case_services.transition(escalation.case, Status.WAITING_ON_CUSTOMER, actor=agent, now=now)
    services.decline(escalation, reason="Not a bug", actor=engineer, now=now)
    escalation.case.refresh_from_db()
    assert escalation.case.status == Status.WAITING_ON_CUSTOMER


def test_answering_puts_a_case_that_drifted_back_to_waiting_on_engineering(escalation_in, agent, now):
    escalation = escalation_in(S.NEEDS_INFO)
    case_services.transition(escalation.case, Status.IN_PROGRESS, actor=agent, now=now)
    services.answer_info_request(escalation, answer="Tenant acme-prod", actor=agent, now=now)
    escalation.case.refresh_from_db()
    assert escalation.case.status == Status.WAITING_ON_ENGINEERING


@pytest.mark.parametrize(("action", "title"), [("resolve", "resolved"), ("decline", "declined")])
def test_resolving_or_declining_tells_the_case_owner(escalation_in, action, title, agent, engineer, now):
    escalation = escalation_in(S.IN_PROGRESS)
    perform(escalation, action, agent=agent, engineer=engineer, now=now)
    notes = Notification.objects.filter(recipient=agent)
    assert [n.title for n in notes] == [f"{escalation.key} {title} by engineering"]


def test_a_bounce_tells_the_case_owner_and_counts(escalation_in, agent, engineer, now):
    escalation = escalation_in(S.NEEDS_INFO)
    assert escalation.bounce_count == 1
    assert Notification.objects.filter(recipient=agent, body="Which tenant exactly?").count() == 1
    escalation = services.answer_info_request(escalation, answer="acme-prod", actor=agent, now=now)
    escalation = services.request_info(escalation, questions="And the region?", actor=engineer, now=now)
    assert escalation.bounce_count == 2
    assert Notification.objects.filter(recipient=agent).count() == 2
    assert [(r.questions, r.answer) for r in escalation.info_requests.all()] == [
        ("Which tenant exactly?", "acme-prod"),
        ("And the region?", ""),
    ]


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda e, u, now: services.request_info(e, questions="  ", actor=u, now=now), "questions"),
        (lambda e, u, now: services.decline(e, reason="", actor=u, now=now), "reason"),
        (lambda e, u, now: services.link(e, actor=u, now=now), "external_key"),
        (
            lambda e, u, now: services.link(e, external_url="ftp://x.example/a", actor=u, now=now),
            "external_url",
        ),
    ],
)
def test_engineering_input_is_required_and_checked(escalation_in, engineer, now, call, field):
    escalation = escalation_in(S.SUBMITTED)
    with pytest.raises(DomainError) as info:
        call(escalation, engineer, now)
    assert info.value.field == field


def test_resolving_needs_a_resolution(escalation_in, engineer, now):
    escalation = escalation_in(S.IN_PROGRESS)
    with pytest.raises(DomainError) as info:
        services.resolve(escalation, resolution="", fix_version="4.2.1", actor=engineer, now=now)
    assert info.value.field == "resolution"


# --- Quality minimum and the manager's override -------------------------------------------------


@pytest.fixture
def weak_draft(triaged_case, payments, agent, now):
    """Scores 2 (environment and impact only), below Payments' minimum of 3."""
    fields = complete_package(steps_to_reproduce="", request_ids="", log_excerpts="", hypotheses="")
    escalation = services.create_draft(case=triaged_case, team=payments, actor=agent, now=now, **fields)
    assert escalation.quality_score == 2
    return escalation


def test_an_agent_cannot_submit_below_the_team_minimum(weak_draft, agent, now):
    with pytest.raises(DomainError) as info:
        services.submit(weak_draft, actor=agent, now=now, override_reason="please")
    assert info.value.field == "quality_score"
    assert "2/5" in info.value.message
    assert "minimum of 3" in info.value.message
    assert "Reproduction:" in info.value.message
    weak_draft.refresh_from_db()
    assert weak_draft.state == S.DRAFT
    assert weak_draft.override_at is None
    assert "escalation_submitted" not in _kinds(weak_draft.case)


def test_a_manager_overrides_only_with_a_reason(weak_draft, manager, now):
    with pytest.raises(DomainError) as info:
        services.submit(weak_draft, actor=manager, now=now, override_reason="   ")
    assert info.value.field == "override_reason"
    escalation = services.submit(weak_draft, actor=manager, now=now, override_reason="P1 outage, logs follow")
    assert escalation.state == S.SUBMITTED
    assert (escalation.override_by, escalation.override_reason, escalation.override_at) == (
        manager,
        "P1 outage, logs follow",
        now,
    )
    event = CaseEvent.objects.get(case=weak_draft.case, kind="escalation_quality_override")
    assert event.actor == manager
    assert "P1 outage, logs follow" in event.body
    assert "2/5" in event.body


def test_no_override_is_recorded_when_the_package_meets_the_minimum(draft, manager, now):
    escalation = services.submit(draft, actor=manager, now=now, override_reason="just in case")
    assert escalation.override_at is None
    assert "escalation_quality_override" not in _kinds(draft.case)


def test_a_team_minimum_of_zero_accepts_any_package(triaged_case, payments, agent, now):
    payments.min_quality_score = 0
    payments.save()
    escalation = services.create_draft(
        case=triaged_case, team=payments, actor=agent, now=now, summary="Broken"
    )
    assert escalation.quality_score == 0
    assert services.submit(escalation, actor=agent, now=now).state == S.SUBMITTED


def test_the_score_is_computed_again_on_submit(weak_draft, agent, now):
    services.update_package(weak_draft, actor=agent, now=now, **complete_package())
    escalation = services.submit(weak_draft, actor=agent, now=now)
    assert escalation.quality_score == 5
    assert escalation.quality_missing == []


# --- One open escalation per case and team --------------------------------------------------------


def test_a_second_draft_for_a_team_with_an_open_escalation_is_refused(escalation_in, payments, agent, now):
    escalation = escalation_in(S.SUBMITTED)
    with pytest.raises(DomainError) as info:
        services.create_draft(case=escalation.case, team=payments, actor=agent, now=now, summary="Again")
    assert info.value.field == "team"
    assert escalation.key in info.value.message


def test_two_drafts_for_one_team_cannot_both_be_open(triaged_case, payments, agent, now):
    first = services.create_draft(
        case=triaged_case, team=payments, actor=agent, now=now, **complete_package()
    )
    second = services.create_draft(
        case=triaged_case, team=payments, actor=agent, now=now, **complete_package()
    )
    services.submit(first, actor=agent, now=now)
    with pytest.raises(Conflict) as info:
        services.submit(second, actor=agent, now=now)
    assert info.value.status_code == 409
    second.refresh_from_db()
    assert second.state == S.DRAFT


def test_after_one_is_finished_the_team_can_be_escalated_to_again(
    escalation_in, payments, agent, engineer, now
):
    escalation = escalation_in(S.DECLINED)
    again = services.create_draft(
        case=escalation.case, team=payments, actor=agent, now=now, **complete_package()
    )
    assert services.submit(again, actor=agent, now=now).state == S.SUBMITTED
    assert Escalation.objects.filter(case=escalation.case).count() == 2


# --- Who may act --------------------------------------------------------------------------------


def test_support_actions_are_for_support_and_engineering_actions_for_engineers(
    escalation_in, agent, engineer, now
):
    escalation = escalation_in(S.SUBMITTED)
    with pytest.raises(PermissionDenied):
        services.acknowledge(escalation, actor=agent, now=now)
    with pytest.raises(PermissionDenied):
        services.withdraw(escalation, actor=engineer, now=now)
    with pytest.raises(PermissionDenied):
        services.create_draft(
            case=escalation.case, team=escalation.team, actor=engineer, now=now, summary="x"
        )


def test_an_engineer_outside_the_team_scope_cannot_act(escalation_in, engineer, identity, scope_to, now):
    escalation = escalation_in(S.SUBMITTED)
    scope_to(engineer, identity)
    with pytest.raises(PermissionDenied):
        services.acknowledge(escalation, actor=engineer, now=now)


# --- The package ----------------------------------------------------------------------------------


def test_a_draft_is_prefilled_from_the_case(triaged_case, payments, agent, now):
    escalation = services.create_draft(
        case=triaged_case, team=payments, actor=agent, now=now, summary="Broken"
    )
    assert escalation.tier == "enterprise"
    assert escalation.severity == "P2"
    assert escalation.created_by == agent


def test_only_entries_of_the_case_can_be_attached(triaged_case, payments, agent, organisation, contact, now):
    note = case_services.add_internal_note(triaged_case, body="DB looks fine", actor=agent, now=now)
    other_case = case_services.create_case(
        title="Other", organisation=organisation, requester=contact, actor=agent, now=now
    )
    foreign = other_case.events.get()
    with pytest.raises(DomainError) as info:
        services.create_draft(
            case=triaged_case,
            team=payments,
            actor=agent,
            now=now,
            summary="x",
            attached_events=[note, foreign],
        )
    assert info.value.field == "attached_events"
    escalation = services.create_draft(
        case=triaged_case, team=payments, actor=agent, now=now, summary="x", attached_events=[note]
    )
    assert list(escalation.attached_events.all()) == [note]


def test_a_component_must_belong_to_the_team(triaged_case, payments, agent, now):
    with pytest.raises(DomainError) as info:
        services.create_draft(
            case=triaged_case, team=payments, actor=agent, now=now, summary="x", component="login"
        )
    assert info.value.field == "component"
    assert "checkout-api" in info.value.message


def test_the_package_is_editable_only_as_draft_or_when_engineering_asks(escalation_in, agent, now):
    escalation = escalation_in(S.NEEDS_INFO)
    escalation = services.update_package(escalation, actor=agent, now=now, region="eu-central-1")
    assert escalation.region == "eu-central-1"
    event = CaseEvent.objects.filter(case=escalation.case, kind="escalation_updated").get()
    assert "region" in event.body
    services.answer_info_request(escalation, answer="Region corrected", actor=agent, now=now)
    with pytest.raises(DomainError) as info:
        services.update_package(escalation, actor=agent, now=now, region="us-east-1")
    assert info.value.field == "state"


def test_editing_a_draft_rescores_it_without_a_timeline_event(draft, agent, now):
    escalation = services.update_package(draft, actor=agent, now=now, tenant="", region="")
    assert escalation.quality_score == 4
    assert escalation.quality_missing == ["Environment: Add the region and tenant."]
    assert "escalation_updated" not in _kinds(draft.case)


def test_model_limits_become_field_errors(triaged_case, payments, agent, now):
    with pytest.raises(DomainError) as info:
        services.create_draft(case=triaged_case, team=payments, actor=agent, now=now, summary="x" * 301)
    assert info.value.field == "summary"


def test_an_engineer_sees_no_drafts_and_only_scoped_teams(escalation_in, triaged_case, identity, agent, now):
    from escalations import selectors

    submitted = escalation_in(S.SUBMITTED)
    draft_for_identity = services.create_draft(
        case=triaged_case, team=identity, actor=agent, now=now, summary="d"
    )
    engineer = factories.EngineerFactory(username="eva")
    assert list(selectors.visible_escalations(engineer)) == [submitted]
    assert set(selectors.visible_escalations(agent)) == {submitted, draft_for_identity}
    nobody = factories.UserFactory(username="nobody")
    assert list(selectors.visible_escalations(nobody)) == []
