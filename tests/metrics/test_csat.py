"""CSAT: the survey e-mailed at resolution, the public survey page, and the CSAT figure.

Hand-worked numbers for the selector (period: the Berlin week Mon 2025-03-03 00:00 to Mon 2025-03-10
00:00 local = 2025-03-02 23:00 UTC to 2025-03-09 23:00 UTC):

- R5: P1, team "Tier 2", rated 5 at 2025-03-02 23:30 UTC (Mon 00:30 in Berlin: inside the Berlin
  week, outside the UTC week 03-03..03-10).
- R4: P2, no team, rated 4 at 2025-03-05 12:00 UTC.
- R1: P1, team "Tier 2", rated 1 at 2025-03-09 22:59 UTC (Sun 23:59 in Berlin: the last minute in).
- Rout: P3, rated 2 at 2025-03-09 23:00 UTC (Mon 03-10 00:00 in Berlin: the period's end, excluded;
  inside the UTC week).
- Unanswered: P2, resolved in the period, never answered: not counted.

Berlin week: ratings 5, 4, 1 -> count 3, mean 10/3 = 3.333..., distribution {1: 1, 4: 1, 5: 1}.
UTC week: ratings 4, 1, 2 -> count 3, mean 7/3 = 2.333...
Team "Tier 2" in the Berlin week: 5 and 1 -> count 2, mean 3.0. Severity P2: 4 -> count 1, mean 4.0.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

import pytest
from django.db import IntegrityError, transaction
from django.urls import reverse

from cases import services as cases
from cases.models import Case, CaseEvent, EventKind, Status
from cases.signals import case_event_recorded
from metrics import surveys
from metrics.figures.csat import csat, csat_cases
from metrics.models import SurveyResponse
from tests.factories import at
from tests.outbox import deliver_mail

pytestmark = pytest.mark.django_db

BERLIN = "Europe/Berlin"
BERLIN_WEEK = {"start": at(2025, 3, 3, tz=BERLIN), "end": at(2025, 3, 10, tz=BERLIN), "tz": BERLIN}
UTC_WEEK = {"start": at(2025, 3, 3), "end": at(2025, 3, 10), "tz": "UTC"}
LINK_RE = re.compile(r"https?://[^/\s]+(/survey/[\w-]+/)(?=\s)")


def _refresh(case: Case) -> Case:
    return Case.objects.get(pk=case.pk)


def _resolve(case: Case, actor, now: dt.datetime) -> Case:
    return cases.transition(_refresh(case), Status.RESOLVED, actor=actor, now=now)


def _reopen_and_resolve(case: Case, actor, now: dt.datetime) -> Case:
    cases.transition(_refresh(case), Status.REOPENED, actor=actor, now=now)
    cases.transition(_refresh(case), Status.IN_PROGRESS, actor=actor, now=now)
    return _resolve(case, actor, now + dt.timedelta(minutes=5))


def _survey_path(message) -> str:
    match = LINK_RE.search(message.body)
    assert match, message.body
    return match.group(1)


@pytest.fixture
def resolved(new_case, agent, now, django_capture_on_commit_callbacks, mailoutbox):
    """``new_case`` resolved, its survey e-mail sent; the outbox is emptied again."""
    with django_capture_on_commit_callbacks(execute=True):
        _resolve(new_case, agent, now)
    deliver_mail()
    mailoutbox.clear()
    return _refresh(new_case)


# --- sending ---------------------------------------------------------------------------------------


def test_resolution_emails_the_requester_one_working_survey_link_after_commit(
    new_case, agent, now, client, django_capture_on_commit_callbacks, mailoutbox
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        _resolve(new_case, agent, now)
    assert mailoutbox == []  # nothing leaves before the resolution is committed
    for callback in callbacks:
        callback()
    assert mailoutbox == []  # written to the outbox; a worker sends it
    assert deliver_mail() == 1

    assert len(mailoutbox) == 1
    message = mailoutbox[0]
    assert message.to == ["carla@acme.example"]
    assert message.cc == []
    assert message.subject == f"[{new_case.key}] How did we do? Checkout fails with 502"
    assert message.extra_headers["X-SupportDesk-Case"] == new_case.key
    assert "X-SupportDesk-Notification" not in message.extra_headers  # not a staff notification
    survey = SurveyResponse.objects.get(case=new_case)
    assert survey.token in message.body
    assert f"/survey/{survey.token}/?rating=5" in message.body  # one-click ratings

    page = client.get(_survey_path(message))
    assert page.status_code == 200
    assert "How did we do?" in page.text
    assert 'type="radio"' in page.text


def test_token_is_long_and_random(resolved, other_agent, organisation, contact, now):
    other = cases.create_case(
        title="Second", organisation=organisation, requester=contact, actor=other_agent, now=now
    )
    _resolve(other, other_agent, now)
    first, second = (s.token for s in SurveyResponse.objects.order_by("id"))
    assert len(first) >= 43
    assert len(second) >= 43
    assert first != second


def test_reresolution_after_reopen_sends_nothing_once_answered(
    resolved, agent, now, django_capture_on_commit_callbacks, mailoutbox
):
    survey = SurveyResponse.objects.get(case=resolved)
    surveys.answer_survey(survey, rating=4, now=now + dt.timedelta(hours=1))

    with django_capture_on_commit_callbacks(execute=True):
        _reopen_and_resolve(resolved, agent, now + dt.timedelta(hours=2))

    assert deliver_mail() == 0
    assert mailoutbox == []
    assert SurveyResponse.objects.filter(case=resolved).count() == 1
    assert SurveyResponse.objects.get(case=resolved).rating == 4


def test_reresolution_of_an_unanswered_survey_resends_the_same_link(
    resolved, agent, now, django_capture_on_commit_callbacks, mailoutbox
):
    before = SurveyResponse.objects.get(case=resolved)
    later = now + dt.timedelta(days=2)

    with django_capture_on_commit_callbacks(execute=True):
        _reopen_and_resolve(resolved, agent, later)

    assert deliver_mail() == 1
    assert len(mailoutbox) == 1
    after = SurveyResponse.objects.get(case=resolved)
    assert after.token == before.token  # the first e-mail's link still works
    assert after.token in mailoutbox[0].body
    assert after.sent_at == later + dt.timedelta(minutes=5)


def test_other_changes_send_no_survey(new_case, agent, now, django_capture_on_commit_callbacks, mailoutbox):
    with django_capture_on_commit_callbacks(execute=True):
        cases.transition(new_case, Status.TRIAGED, actor=agent, now=now, severity="P2", assignee=agent)
        cases.add_internal_note(new_case, body="Looking.", actor=agent, now=now)
    assert SurveyResponse.objects.count() == 0
    assert deliver_mail() == 0
    assert mailoutbox == []


def test_imported_resolutions_never_send_a_survey(
    new_case, now, django_capture_on_commit_callbacks, mailoutbox
):
    """Imported history is written as events with ``imported=True``; the signal still fires for it."""
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        case = Case.objects.select_for_update().get(pk=new_case.pk)
        event = CaseEvent.objects.create(
            case=case,
            kind=EventKind.STATUS_CHANGED,
            actor_name="Old Desk",
            created_at=now,
            field="status",
            old_value=Status.NEW,
            new_value=Status.RESOLVED,
            imported=True,
        )
        case_event_recorded.send(sender=Case, case=case, event=event, now=now)

    assert SurveyResponse.objects.count() == 0
    assert deliver_mail() == 0
    assert mailoutbox == []


# --- the survey page -------------------------------------------------------------------------------


def _url(survey: SurveyResponse) -> str:
    return reverse("surveys:answer", args=[survey.token])


def test_page_preselects_the_rating_from_the_email_link(resolved, client):
    survey = SurveyResponse.objects.get(case=resolved)
    page = client.get(_url(survey) + "?rating=2")
    assert page.status_code == 200
    assert re.search(r'<input[^>]*value="2"[^>]*checked', page.text)
    assert not re.search(r'<input[^>]*value="[1345]"[^>]*checked', page.text)
    # A GET never records an answer (mail scanners follow links).
    survey.refresh_from_db()
    assert survey.rating is None

    for junk in ("0", "6", "x", ""):
        page = client.get(_url(survey) + f"?rating={junk}")
        assert page.status_code == 200
        assert "checked" not in page.text


def test_customer_answers_without_logging_in(resolved, client):
    survey = SurveyResponse.objects.get(case=resolved)
    response = client.post(_url(survey), {"rating": "4", "comment": "  Quick and friendly.  "})
    assert response.status_code == 302
    assert response["Location"] == _url(survey)

    survey.refresh_from_db()
    assert (survey.rating, survey.comment) == (4, "Quick and friendly.")
    assert survey.answered_at is not None
    thanks = client.get(_url(survey))
    assert "Thank you for your feedback" in thanks.text
    assert "4 of 5" in thanks.text
    assert "already been answered" not in thanks.text

    # On the case timeline, for staff only.
    event = CaseEvent.objects.get(case=resolved, kind=surveys.CSAT_ANSWERED)
    assert event.is_public is False
    assert event.new_value == 4
    assert event.actor_id is None
    assert event.actor_name == "Carla Customer"
    assert "Rated 4 of 5" in event.body
    assert "Quick and friendly." in event.body


@pytest.mark.parametrize("rating", ["0", "6", "x", "4.5", ""])
def test_bad_rating_is_a_form_error(resolved, client, rating):
    survey = SurveyResponse.objects.get(case=resolved)
    response = client.post(_url(survey), {"rating": rating, "comment": "hm"})
    assert response.status_code == 400
    assert "Choose a rating from 1 to 5." in response.text
    assert 'class="errorlist' in response.text
    survey.refresh_from_db()
    assert survey.answered_at is None
    assert not CaseEvent.objects.filter(kind=surveys.CSAT_ANSWERED).exists()


def test_too_long_comment_is_a_form_error(resolved, client):
    survey = SurveyResponse.objects.get(case=resolved)
    response = client.post(_url(survey), {"rating": "3", "comment": "x" * 2001})
    assert response.status_code == 400
    assert "at most 2000 characters" in response.text
    survey.refresh_from_db()
    assert survey.answered_at is None


def test_second_answer_is_refused_and_the_first_kept(resolved, client):
    survey = SurveyResponse.objects.get(case=resolved)
    client.post(_url(survey), {"rating": "5", "comment": "Great"})

    again = client.post(_url(survey), {"rating": "1", "comment": "Changed my mind"})

    assert again.status_code == 409
    assert "already been answered" in again.text
    survey.refresh_from_db()
    assert (survey.rating, survey.comment) == (5, "Great")
    assert CaseEvent.objects.filter(case=resolved, kind=surveys.CSAT_ANSWERED).count() == 1
    with pytest.raises(surveys.SurveyAlreadyAnswered):
        surveys.answer_survey(survey, rating=2, now=survey.answered_at)


def test_unknown_token_is_404(resolved, client):
    token = SurveyResponse.objects.get(case=resolved).token
    near_miss = token[:-1] + ("A" if token[-1] != "A" else "B")
    assert client.get(reverse("surveys:answer", args=["nope"])).status_code == 404
    assert client.get(reverse("surveys:answer", args=[near_miss])).status_code == 404
    response = client.post(reverse("surveys:answer", args=[near_miss]), {"rating": "5"})
    assert response.status_code == 404
    assert "Survey not found" in response.text
    assert client.post(reverse("surveys:answer", args=["x" * 500]), {"rating": "5"}).status_code == 404
    assert SurveyResponse.objects.get(case=resolved).answered_at is None


def test_a_survey_closes_after_its_open_days_and_says_so(resolved, client):
    survey = SurveyResponse.objects.get(case=resolved)
    SurveyResponse.objects.filter(pk=survey.pk).update(
        sent_at=survey.sent_at - dt.timedelta(days=surveys.SURVEY_OPEN_DAYS + 1)
    )
    response = client.post(_url(survey), {"rating": "5"})
    assert response.status_code == 410
    assert "This survey has closed" in response.text
    survey.refresh_from_db()
    assert survey.answered_at is None
    # Still open just inside the window (well over the 30 days a customer may take).
    SurveyResponse.objects.filter(pk=survey.pk).update(
        sent_at=survey.sent_at + dt.timedelta(days=surveys.SURVEY_OPEN_DAYS - 30)
    )
    assert client.get(_url(survey)).status_code == 200


def test_staff_see_the_answer_on_the_timeline_but_never_the_link(resolved, client, agent, admin_user):
    survey = SurveyResponse.objects.get(case=resolved)
    surveys.answer_survey(survey, rating=3, comment="Fine", now=survey.sent_at + dt.timedelta(hours=1))
    client.force_login(agent)
    page = client.get(reverse("cases:detail", args=[resolved.key]))
    assert page.status_code == 200
    assert "Customer satisfaction survey answered" in page.text
    assert "Rated 3 of 5" in page.text
    assert survey.token not in page.text

    client.force_login(admin_user)
    listing = client.get(reverse("admin:metrics_surveyresponse_changelist"))
    detail = client.get(reverse("admin:metrics_surveyresponse_change", args=[survey.pk]))
    assert listing.status_code == 200
    assert detail.status_code == 200
    assert survey.token not in listing.text
    assert survey.token not in detail.text


def test_database_refuses_ratings_outside_1_to_5(resolved, now):
    survey = SurveyResponse.objects.get(case=resolved)
    with pytest.raises(IntegrityError), transaction.atomic():
        SurveyResponse.objects.filter(pk=survey.pk).update(rating=6, answered_at=now)
    with pytest.raises(IntegrityError), transaction.atomic():
        SurveyResponse.objects.filter(pk=survey.pk).update(rating=0, answered_at=now)
    with pytest.raises(IntegrityError), transaction.atomic():
        SurveyResponse.objects.filter(pk=survey.pk).update(rating=3)  # a rating needs its time
    with pytest.raises(IntegrityError), transaction.atomic():
        SurveyResponse.objects.create(case=resolved, sent_to="x@example.com", sent_at=now)  # one per case


# --- the CSAT figure -------------------------------------------------------------------------------


@dataclass
class Answers:
    r5: Case
    r4: Case
    r1: Case
    out: Case
    unanswered: Case


@pytest.fixture
def answers(organisation, contact, agent, team) -> Answers:
    def answered(title, severity, rating, when, **kw):
        case = cases.create_case(
            title=title,
            organisation=organisation,
            requester=contact,
            severity=severity,
            actor=agent,
            now=when - dt.timedelta(days=1),
            **kw,
        )
        _resolve(case, agent, when - dt.timedelta(hours=1))
        if rating is not None:
            surveys.answer_survey(SurveyResponse.objects.get(case=case), rating=rating, now=when)
        return _refresh(case)

    return Answers(
        r5=answered("R5", "P1", 5, at(2025, 3, 2, 23, 30), team=team),
        r4=answered("R4", "P2", 4, at(2025, 3, 5, 12, 0)),
        r1=answered("R1", "P1", 1, at(2025, 3, 9, 22, 59), team=team),
        out=answered("Rout", "P3", 2, at(2025, 3, 9, 23, 0)),
        unanswered=answered("Unanswered", "P2", None, at(2025, 3, 5, 12, 0)),
    )


def test_csat_over_the_berlin_week(answers):
    stats = csat(**BERLIN_WEEK)
    assert stats.count == 3
    assert stats.mean == pytest.approx(10 / 3)
    assert stats.distribution == {1: 1, 2: 0, 3: 0, 4: 1, 5: 1}
    assert set(csat_cases(**BERLIN_WEEK)) == {answers.r5, answers.r4, answers.r1}


def test_csat_period_boundary_follows_the_time_zone(answers):
    stats = csat(**UTC_WEEK)
    assert (stats.count, stats.distribution) == (3, {1: 1, 2: 1, 3: 0, 4: 1, 5: 0})
    assert stats.mean == pytest.approx(7 / 3)
    assert set(csat_cases(**UTC_WEEK)) == {answers.r4, answers.r1, answers.out}


def test_csat_with_dashboard_filters(answers, team):
    by_team = csat(**BERLIN_WEEK, team=team)
    assert (by_team.count, by_team.mean) == (2, 3.0)
    assert set(csat_cases(**BERLIN_WEEK, team=team.pk)) == {answers.r5, answers.r1}
    by_severity = csat(**BERLIN_WEEK, severity="P2")
    assert (by_severity.count, by_severity.mean) == (1, 4.0)
    assert csat(**BERLIN_WEEK, severity="P4").count == 0
    tier = csat(**BERLIN_WEEK, tier="enterprise", organisation=answers.r4.organisation, assignee=None)
    assert tier.count == 3


def test_csat_of_an_empty_period(answers):
    stats = csat(start=at(2024, 1, 1), end=at(2024, 2, 1))
    assert (stats.count, stats.mean) == (0, None)
    assert stats.distribution == {1: 0, 2: 0, 3: 0, 4: 0, 5: 0}


def test_csat_is_one_query(answers, team, django_assert_num_queries):
    with django_assert_num_queries(1):
        csat(**BERLIN_WEEK, team=team, severity="P1")
    with django_assert_num_queries(1):
        list(csat_cases(**BERLIN_WEEK))


def test_csat_rejects_a_bad_period(answers):
    with pytest.raises(ValueError, match="aware"):
        csat(start=dt.datetime(2025, 3, 3), end=dt.datetime(2025, 3, 10))  # noqa: DTZ001
    with pytest.raises(ValueError, match="end after"):
        csat(start=at(2025, 3, 10), end=at(2025, 3, 3))
    with pytest.raises(TypeError, match="Unknown metric filters"):
        csat(**BERLIN_WEEK, colour="blue")
