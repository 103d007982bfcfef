"""A first run has content for every feature: after the demo commands `make run` runs, each
escalation state, knowledge state, CSAT answers, macros and saved views are there, made through
the services; running them again adds nothing."""

from __future__ import annotations

import datetime as dt
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command

from cases.models import Case, Macro, SavedView
from escalations.models import EngineeringTeam, Escalation
from escalations.states import EscalationState
from incidents.models import IncidentUpdate, MajorIncident
from knowledge.models import Article, ArticleStatus
from metrics.models import SurveyResponse
from supportdesk.core.models import OutboundMessage

pytestmark = pytest.mark.django_db(transaction=True)
NOW = dt.datetime(2026, 12, 2, 10, 0, tzinfo=dt.UTC)
COMMANDS = [
    "load_demo_escalations",
    "load_demo_knowledge",
    "load_demo_csat",
    "load_demo_workspace",
    "load_demo_incidents",
]


def _load_everything() -> str:
    out = StringIO()
    call_command("load_demo_data", cases=60, stdout=out)
    for name in COMMANDS:
        call_command(name, stdout=out)
    return out.getvalue()


def _counts() -> dict[str, int]:
    return {
        "teams": EngineeringTeam.objects.count(),
        "escalations": Escalation.objects.count(),
        "articles": Article.objects.count(),
        "answered": SurveyResponse.objects.filter(answered_at__isnull=False).count(),
        "macros": Macro.objects.count(),
        "views": SavedView.objects.count(),
        "cases": Case.objects.count(),
        "incidents": MajorIncident.objects.count(),
        "incident_updates": IncidentUpdate.objects.count(),
    }


def test_the_demo_shows_every_feature_and_loads_once(django_capture_on_commit_callbacks):
    with time_machine.travel(NOW, tick=False), django_capture_on_commit_callbacks(execute=False):
        _load_everything()
        first = _counts()
        again = _load_everything()
    assert "already loaded" in again
    assert _counts() == first

    # Engineering: two teams, the demo engineer on Payments, an escalation in every state.
    payments = EngineeringTeam.objects.get(slug="payments")
    assert payments.engineer_scopes.filter(user__username="engineer").exists()
    states = set(Escalation.objects.values_list("state", flat=True))
    assert states >= {s.value for s in EscalationState if s != EscalationState.WITHDRAWN}
    bounced = Escalation.objects.filter(
        info_requests__answered_at__isnull=False, state=EscalationState.SUBMITTED
    )
    assert bounced.exists()

    # Knowledge in each state, one of them flagged stale.
    assert set(Article.objects.values_list("status", flat=True)) >= {
        ArticleStatus.PUBLISHED,
        ArticleStatus.IN_REVIEW,
        ArticleStatus.DRAFT,
    }
    assert Article.objects.filter(stale_flagged_at__isnull=False).count() == 1

    # CSAT: answers, good and bad.
    ratings = set(SurveyResponse.objects.exclude(rating=None).values_list("rating", flat=True))
    assert max(ratings) == 5
    assert min(ratings) <= 2

    # The workspace: shared and personal macros, personal and team views.
    assert Macro.objects.filter(owner__isnull=True).count() == 3
    assert Macro.objects.filter(owner__username="agent").count() == 1
    assert SavedView.objects.filter(team__isnull=False).count() == 1

    # A major incident with several customers' cases, a public update on each and an internal note.
    incident = MajorIncident.objects.get()
    assert incident.is_active
    assert len({c.organisation_id for c in incident.cases.all()}) > 1
    public = incident.updates.get(is_public=True)
    assert public.deliveries.filter(event_id__isnull=False).count() == incident.cases.count()
    assert incident.updates.filter(is_public=False).count() == 1

    # Nobody got mail from the demo.
    assert not OutboundMessage.objects.exists()
