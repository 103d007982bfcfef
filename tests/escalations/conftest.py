from __future__ import annotations

import datetime as dt

import pytest

from cases import services as case_services
from cases.models import Status
from escalations import services
from escalations.models import EngineeringTeam, EngineerScope
from escalations.states import EscalationState

S = EscalationState


@pytest.fixture(autouse=True)
def _test_settings(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.SITE_URL = "https://support.example"


@pytest.fixture
def payments(db) -> EngineeringTeam:
    return EngineeringTeam.objects.create(
        name="Payments", slug="payments", components="checkout-api\nbilling", min_quality_score=3
    )


@pytest.fixture
def identity(db) -> EngineeringTeam:
    return EngineeringTeam.objects.create(name="Identity", slug="identity", min_quality_score=2)


def complete_package(**overrides) -> dict:
    """Package fields that meet every rubric criterion (score 5)."""
    fields = {
        "summary": "Checkout returns 502 for EU tenants",
        "component": "checkout-api",
        "steps_to_reproduce": "1. Log in as any EU user\n2. Add an item to the cart\n3. Press Pay",
        "expected_behaviour": "The order is confirmed.",
        "actual_behaviour": "A 502 page after 30 s.",
        "product_version": "4.2.0",
        "region": "eu-west-1",
        "tenant": "acme-prod",
        "request_ids": "req-8f2c91",
        "first_seen_at": dt.datetime(2025, 3, 3, 9, 0, tzinfo=dt.UTC),
        "log_excerpts": "upstream timed out (110: Connection timed out)",
        "users_affected": 1200,
        "workaround_available": False,
        "hypotheses": "CDN cache: purged, no change.\nDB load: normal.",
        "severity_rationale": "Every EU checkout fails; no workaround.",
    }
    fields.update(overrides)
    return fields


@pytest.fixture
def triaged_case(new_case, agent, now):
    return case_services.transition(
        new_case, Status.TRIAGED, actor=agent, now=now, severity="P2", assignee=agent
    )


@pytest.fixture
def draft(triaged_case, payments, agent, now):
    return services.create_draft(case=triaged_case, team=payments, actor=agent, now=now, **complete_package())


@pytest.fixture
def scope_to(db):
    def scope(user, *teams):
        scope, _ = EngineerScope.objects.get_or_create(user=user)
        scope.teams.set(teams)
        return scope

    return scope


# The path from a draft to each state, as (action, side) steps; used to reach any state for the tests.
PATHS: dict[str, list[str]] = {
    S.DRAFT: [],
    S.SUBMITTED: ["submit"],
    S.ACKNOWLEDGED: ["submit", "acknowledge"],
    S.NEEDS_INFO: ["submit", "request_info"],
    S.IN_PROGRESS: ["submit", "acknowledge", "start"],
    S.RESOLVED: ["submit", "acknowledge", "start", "resolve"],
    S.DECLINED: ["submit", "decline"],
    S.WITHDRAWN: ["withdraw"],
}


def perform(escalation, action: str, *, agent, engineer, now):
    """Run one action through its service with sensible input."""
    calls = {
        "submit": lambda: services.submit(escalation, actor=agent, now=now),
        "answer": lambda: services.answer_info_request(
            escalation, answer="It is tenant acme-prod.", actor=agent, now=now
        ),
        "withdraw": lambda: services.withdraw(escalation, actor=agent, now=now, reason="Customer fixed it"),
        "acknowledge": lambda: services.acknowledge(escalation, actor=engineer, now=now),
        "request_info": lambda: services.request_info(
            escalation, questions="Which tenant exactly?", actor=engineer, now=now
        ),
        "start": lambda: services.start(escalation, actor=engineer, now=now),
        "resolve": lambda: services.resolve(
            escalation,
            resolution="Raised the upstream timeout.",
            fix_version="4.2.1",
            actor=engineer,
            now=now,
        ),
        "decline": lambda: services.decline(escalation, reason="Works as designed.", actor=engineer, now=now),
        "link": lambda: services.link(
            escalation,
            external_key="PAY-123",
            external_url="https://jira.example/browse/PAY-123",
            actor=engineer,
            now=now,
        ),
    }
    return calls[action]()


@pytest.fixture
def escalation_in(draft, agent, engineer, now):
    """``escalation_in(state)``: the draft moved along to ``state``."""

    def reach(state: str):
        escalation = draft
        for action in PATHS[state]:
            escalation = perform(escalation, action, agent=agent, engineer=engineer, now=now)
        assert escalation.state == state
        return escalation

    return reach
