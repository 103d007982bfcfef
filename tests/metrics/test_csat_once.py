"""A quick resolve -> reopen -> resolve sends the customer one survey, not two (issue 15).

The rule (metrics/surveys.py): one survey per case; a later resolution re-sends its link only while it
is unanswered and its last sending is at least ``SURVEY_RESEND_AFTER`` (24 h) old.
"""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.utils import timezone

from cases import services as cases
from cases.models import Case, Status
from metrics import surveys
from metrics.models import SurveyResponse
from tests.factories import at
from tests.outbox import deliver_mail

pytestmark = pytest.mark.django_db

START = at(2025, 6, 2, 9, 0)


def _move(case: Case, to: str, actor) -> Case:
    return cases.transition(Case.objects.get(pk=case.pk), to, actor=actor, now=timezone.now())


def _reopen_and_resolve(case: Case, actor, traveller) -> None:
    _move(case, Status.REOPENED, actor)
    traveller.shift(dt.timedelta(seconds=10))
    _move(case, Status.IN_PROGRESS, actor)
    traveller.shift(dt.timedelta(seconds=20))
    _move(case, Status.RESOLVED, actor)


@pytest.fixture
def traveller():
    with time_machine.travel(START, tick=False) as machine:
        yield machine


@pytest.fixture
def case(traveller, organisation, contact, agent):
    return cases.create_case(
        title="Checkout fails with 502",
        organisation=organisation,
        requester=contact,
        severity="P2",
        actor=agent,
        now=timezone.now(),
    )


def _surveys_mailed(mailoutbox) -> list:
    deliver_mail()
    return [m for m in mailoutbox if "How did we do?" in m.subject]


def test_resolve_reopen_resolve_within_a_minute_sends_one_survey(
    case, agent, traveller, django_capture_on_commit_callbacks, mailoutbox
):
    with django_capture_on_commit_callbacks(execute=True):
        _move(case, Status.RESOLVED, agent)
        traveller.shift(dt.timedelta(seconds=20))
        _reopen_and_resolve(case, agent, traveller)

    mailed = _surveys_mailed(mailoutbox)
    assert len(mailed) == 1
    survey = SurveyResponse.objects.get(case=case)
    assert survey.token in mailed[0].body
    assert survey.sent_at == START  # the link's open period counts from the one sending


def test_a_resolution_a_day_later_resends_the_same_unanswered_link(
    case, agent, traveller, django_capture_on_commit_callbacks, mailoutbox
):
    with django_capture_on_commit_callbacks(execute=True):
        _move(case, Status.RESOLVED, agent)
    token = SurveyResponse.objects.get(case=case).token

    traveller.shift(surveys.SURVEY_RESEND_AFTER + dt.timedelta(minutes=1))
    with django_capture_on_commit_callbacks(execute=True):
        _reopen_and_resolve(case, agent, traveller)

    mailed = _surveys_mailed(mailoutbox)
    assert len(mailed) == 2
    assert all(token in m.body for m in mailed)
    assert SurveyResponse.objects.filter(case=case).count() == 1


def test_just_inside_the_window_nothing_is_resent(
    case, agent, traveller, django_capture_on_commit_callbacks, mailoutbox
):
    with django_capture_on_commit_callbacks(execute=True):
        _move(case, Status.RESOLVED, agent)
        # The re-resolution lands 30 s after the reopen: 1 minute before the window ends.
        traveller.shift(surveys.SURVEY_RESEND_AFTER - dt.timedelta(minutes=1, seconds=30))
        _reopen_and_resolve(case, agent, traveller)

    assert len(_surveys_mailed(mailoutbox)) == 1


def test_an_answered_survey_is_never_sent_again(
    case, agent, traveller, django_capture_on_commit_callbacks, mailoutbox
):
    with django_capture_on_commit_callbacks(execute=True):
        _move(case, Status.RESOLVED, agent)
    surveys.answer_survey(SurveyResponse.objects.get(case=case), rating=2, now=timezone.now())

    traveller.shift(dt.timedelta(days=3))
    with django_capture_on_commit_callbacks(execute=True):
        _reopen_and_resolve(case, agent, traveller)

    assert len(_surveys_mailed(mailoutbox)) == 1
    assert SurveyResponse.objects.get(case=case).rating == 2


def test_sending_twice_at_the_same_instant_sends_once(
    case, agent, django_capture_on_commit_callbacks, mailoutbox
):
    """What a duplicated resolution signal would do: the constraint and the conditional UPDATE hold."""
    now = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        assert surveys.send_survey(case, now=now) is not None
        assert surveys.send_survey(case, now=now) is None

    assert len(_surveys_mailed(mailoutbox)) == 1
