"""Engineers hear about their team's escalations: submitted, support answered their questions, and
not acknowledged in time. In-app and by e-mail (the outbox), once each, even with two sweeps."""

from __future__ import annotations

import datetime as dt

import pytest
from django.conf import settings
from django.urls import reverse

from escalations import services, tasks
from escalations.states import EscalationState
from supportdesk.celery import app as celery_app
from supportdesk.core.models import MailKind, Notification, OutboundMessage
from tests import factories

S = EscalationState
pytestmark = pytest.mark.django_db

T0 = factories.at(2026, 3, 2, 9, 0)


@pytest.fixture
def team_engineers(engineer, payments, identity, scope_to):
    """Erik and Pia work on Payments; Ivan on Identity; Una has no scope (sees every team)."""
    pia = factories.EngineerFactory(username="pia", email="pia@eng.example")
    ivan = factories.EngineerFactory(username="ivan")
    factories.EngineerFactory(username="una")
    scope_to(engineer, payments)
    scope_to(pia, payments)
    scope_to(ivan, identity)
    return [engineer, pia]


def _notified(kind: str) -> set[str]:
    return set(Notification.objects.filter(kind=kind).values_list("recipient__username", flat=True))


def _mails(kind=MailKind.ESCALATION_NOTICE):
    return list(OutboundMessage.objects.filter(kind=kind).order_by("id"))


def test_the_team_is_told_when_an_escalation_is_submitted(
    draft, agent, team_engineers, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        escalation = services.submit(draft, actor=agent, now=T0)
    assert _notified("escalation_submitted") == {"erik", "pia"}
    note = Notification.objects.filter(kind="escalation_submitted").first()
    assert note.url == reverse("escalations:engineer-view", args=[escalation.pk])
    assert escalation.key in note.title
    assert "Payments" in note.title
    assert "Acme Corp" in note.body
    assert "quality 5/5" in note.body
    [mail] = _mails()
    assert mail.to == ["erik@support.example", "pia@eng.example"]
    assert mail.subject.startswith(f"[{escalation.key}] {escalation.key} submitted to Payments")
    assert f"https://support.example/escalations/{escalation.pk}/view/" in mail.body
    assert callbacks  # the mail is handed to the workers only after the commit


def test_nobody_outside_the_team_is_told(draft, agent, team_engineers):
    services.submit(draft, actor=agent, now=T0)
    assert not Notification.objects.filter(recipient__username__in=["ivan", "una"]).exists()


def test_a_team_without_engineers_gets_nothing_and_nothing_breaks(draft, agent):
    escalation = services.submit(draft, actor=agent, now=T0)
    assert escalation.state == S.SUBMITTED
    assert not Notification.objects.filter(kind__startswith="escalation_sub").exists()
    assert _mails() == []


def test_the_team_is_told_each_time_support_answers(escalation_in, agent, engineer, team_engineers):
    escalation = escalation_in(S.NEEDS_INFO)
    services.answer_info_request(escalation, answer="Tenant acme-prod.", actor=agent, now=T0)
    services.request_info(escalation, questions="And the region?", actor=engineer, now=T0)
    services.answer_info_request(escalation, answer="eu-west-1.", actor=agent, now=T0)
    answers = Notification.objects.filter(kind="escalation_answered", recipient=engineer)
    assert [n.body for n in answers.order_by("id")] == ["Tenant acme-prod.", "eu-west-1."]
    assert _notified("escalation_answered") == {"erik", "pia"}
    assert [m.body.split("\n")[0] for m in _mails() if "answered" in m.subject] == [
        "Tenant acme-prod.",
        "eu-west-1.",
    ]


def test_an_unacknowledged_escalation_is_overdue_once_after_the_target(
    draft, agent, team_engineers, time_machine
):
    time_machine.move_to(T0, tick=False)
    escalation = services.submit(draft, actor=agent, now=T0)
    time_machine.move_to(T0 + dt.timedelta(minutes=59), tick=False)
    assert tasks.notify_ack_overdue() == 0
    time_machine.move_to(T0 + dt.timedelta(minutes=61), tick=False)
    assert tasks.notify_ack_overdue() == 1
    assert tasks.notify_ack_overdue() == 0  # run it twice: nothing more
    time_machine.move_to(T0 + dt.timedelta(hours=5), tick=False)
    assert tasks.notify_ack_overdue() == 0
    assert _notified("escalation_ack_overdue") == {"erik", "pia"}
    assert Notification.objects.filter(kind="escalation_ack_overdue").count() == 2
    note = Notification.objects.filter(kind="escalation_ack_overdue").first()
    assert note.title.startswith(f"{escalation.key} not acknowledged within 60 min")
    assert len([m for m in _mails() if "not acknowledged" in m.subject]) == 1
    escalation.refresh_from_db()
    assert escalation.updated_at == T0  # the sweep is not a change an engineer must re-read


def test_the_target_comes_from_the_setting(draft, agent, team_engineers, time_machine, settings):
    settings.ESCALATION_ACK_OVERDUE_MINUTES = 15
    services.submit(draft, actor=agent, now=T0)
    time_machine.move_to(T0 + dt.timedelta(minutes=16), tick=False)
    assert tasks.notify_ack_overdue() == 1


def test_an_acknowledged_escalation_is_never_overdue(draft, agent, engineer, team_engineers, time_machine):
    escalation = services.submit(draft, actor=agent, now=T0)
    services.acknowledge(escalation, actor=engineer, now=T0 + dt.timedelta(minutes=30))
    time_machine.move_to(T0 + dt.timedelta(hours=3), tick=False)
    assert tasks.notify_ack_overdue() == 0
    assert not Notification.objects.filter(kind="escalation_ack_overdue").exists()


def test_time_waiting_on_support_does_not_count(draft, agent, engineer, team_engineers, time_machine):
    escalation = services.submit(draft, actor=agent, now=T0)
    services.request_info(escalation, questions="Tenant?", actor=engineer, now=T0 + dt.timedelta(minutes=10))
    time_machine.move_to(T0 + dt.timedelta(minutes=90), tick=False)
    assert tasks.notify_ack_overdue() == 0  # with support, not engineering
    services.answer_info_request(escalation, answer="acme", actor=agent, now=T0 + dt.timedelta(minutes=100))
    time_machine.move_to(T0 + dt.timedelta(minutes=150), tick=False)
    assert tasks.notify_ack_overdue() == 0  # back with engineering for 50 minutes only
    time_machine.move_to(T0 + dt.timedelta(minutes=161), tick=False)
    assert tasks.notify_ack_overdue() == 1


def test_a_sweep_that_lost_the_claim_tells_nobody(draft, agent, team_engineers, time_machine):
    """Two workers: the one whose conditional UPDATE lands first tells; the other finds it claimed."""
    escalation = services.submit(draft, actor=agent, now=T0)
    time_machine.move_to(T0 + dt.timedelta(hours=2), tick=False)
    # Another worker claimed it a moment ago (and told the team in its own transaction).
    type(escalation).objects.filter(pk=escalation.pk).update(ack_overdue_notified_at=T0)
    assert tasks.notify_ack_overdue() == 0
    assert not Notification.objects.filter(kind="escalation_ack_overdue").exists()


def test_the_notifications_are_written_once_per_key_even_if_told_twice(
    draft, agent, team_engineers, time_machine
):
    """A sweep whose claim was lost after it told the team (say, its row was reset by a restore) tells
    again: the notifications' and the outbox's dedupe keys still write each once."""
    escalation = services.submit(draft, actor=agent, now=T0)
    time_machine.move_to(T0 + dt.timedelta(hours=2), tick=False)
    assert tasks.notify_ack_overdue() == 1
    type(escalation).objects.filter(pk=escalation.pk).update(ack_overdue_notified_at=None)
    tasks.notify_ack_overdue()
    assert Notification.objects.filter(kind="escalation_ack_overdue").count() == 2  # one each
    overdue_mails = [
        m for m in _mails() if escalation.key in m.subject and "acknowledged" in m.subject.lower()
    ]
    assert len(overdue_mails) == 1


def test_engineers_read_them_in_the_app(client, draft, agent, engineer, team_engineers):
    escalation = services.submit(draft, actor=agent, now=T0)
    client.force_login(engineer)
    html = client.get(reverse("core:notifications")).content.decode()
    assert f"{escalation.key} submitted to Payments" in html
    assert reverse("escalations:engineer-view", args=[escalation.pk]) in html


def test_the_sweep_is_scheduled_and_registered():
    name = "escalations.notify_ack_overdue"
    entries = [e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"] == name]
    assert len(entries) == 1
    assert "escalations.notify_ack_overdue" in celery_app.tasks
