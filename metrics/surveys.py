"""Post-resolution satisfaction surveys: who gets one, when, and how an answer is recorded.

Sending rule: when a case is resolved, the requester gets one e-mail with the survey link, written
to the outbox in the resolving transaction and sent by a worker after it commits. The first
resolution creates the survey; a later resolution after a reopen sends the same link again only
while the survey is unanswered (the rating then reflects the final outcome) and its last sending is
at least ``SURVEY_RESEND_AFTER`` old, and never once answered: one answer per case. A resolve ->
reopen -> resolve within that window (a quick "not fixed" and its fix) sends nothing more: the
customer's first mail is still in their inbox and its link still works. Imported history never
sends a survey (the customer was asked, or not, by the system it came from). Only the requester
is asked, not the CCs.

The link carries a random token, the only credential a customer has. It stays open for
``SURVEY_OPEN_DAYS`` after the last sending; after that the page says so. The token is never shown
to staff (not on the timeline, not in the admin), so nobody can answer on the customer's behalf.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse

from cases.models import Case, CaseEvent, EventKind, Status
from cases.services import record_event
from supportdesk.core import outbox
from supportdesk.core.errors import Conflict, DomainError
from supportdesk.core.models import MailKind

from .models import RATING_MAX, RATING_MIN, SurveyResponse

logger = logging.getLogger(__name__)

CSAT_ANSWERED = "csat_answered"
SURVEY_OPEN_DAYS = 90
SURVEY_RESEND_AFTER = dt.timedelta(hours=24)
RATING_LABELS = {
    1: "Very dissatisfied",
    2: "Dissatisfied",
    3: "Neither satisfied nor dissatisfied",
    4: "Satisfied",
    5: "Very satisfied",
}


class SurveyAlreadyAnswered(Conflict):
    code = "survey_already_answered"


class SurveyClosed(DomainError):
    code = "survey_closed"


def survey_url(survey: SurveyResponse, *, rating: int | None = None) -> str:
    """The absolute link for the customer (``rating`` pre-selects an answer; it never records one)."""
    url = settings.SITE_URL + reverse("surveys:answer", args=[survey.token])
    return f"{url}?rating={rating}" if rating is not None else url


def closes_at(survey: SurveyResponse) -> dt.datetime:
    return survey.sent_at + dt.timedelta(days=SURVEY_OPEN_DAYS)


def is_open(survey: SurveyResponse, *, now: dt.datetime) -> bool:
    return not survey.is_answered and now < closes_at(survey)


# --- sending ---------------------------------------------------------------------------------------


def on_case_event(sender, *, case: Case, event: CaseEvent, now: dt.datetime, **kwargs) -> None:
    """Receiver of ``cases.signals.case_event_recorded``: a resolution sends the survey after commit."""
    if event.imported or event.kind != EventKind.STATUS_CHANGED or event.new_value != Status.RESOLVED:
        return
    send_survey(case, now=now)


def send_survey(case: Case, *, now: dt.datetime) -> SurveyResponse | None:
    """Create (or re-arm, while unanswered and not sent within ``SURVEY_RESEND_AFTER``) the case's
    survey and e-mail it to the requester on commit; returns None when nothing is sent.

    Runs inside the caller's transaction. Safe against a second resolution racing this one: the
    one-survey-per-case constraint decides the first sending, a conditional UPDATE each re-sending.
    """
    email = case.requester.email
    if not email:
        return None
    with transaction.atomic():
        try:
            with transaction.atomic():
                survey = SurveyResponse.objects.create(case=case, sent_to=email, sent_at=now)
        except IntegrityError:  # the case has its survey: re-send it only if the rule allows
            rearmed = SurveyResponse.objects.filter(
                case=case, answered_at__isnull=True, sent_at__lte=now - SURVEY_RESEND_AFTER
            ).update(sent_to=email, sent_at=now)
            if not rearmed:
                return None
            survey = SurveyResponse.objects.get(case=case)
        _invitation(case, survey, now=now)
    return survey


def _invitation(case: Case, survey: SurveyResponse, *, now: dt.datetime) -> None:
    """Write the invitation to the outbox (in the resolving transaction; sent after commit)."""
    context = {
        "case": case,
        "contact": case.requester,
        "url": survey_url(survey),
        "ratings": [
            {"value": n, "label": RATING_LABELS[n], "url": survey_url(survey, rating=n)}
            for n in range(RATING_MAX, RATING_MIN - 1, -1)
        ],
        "open_days": SURVEY_OPEN_DAYS,
    }
    outbox.enqueue(
        kind=MailKind.SURVEY,
        subject=f"[{case.key}] How did we do? {case.title}",
        body=render_to_string("metrics/email/survey_invitation.txt", context),
        to=[survey.sent_to],
        headers={"X-SupportDesk-Case": case.key, "X-SupportDesk-Survey": str(survey.pk)},
        case_id=case.pk,
        now=now,
    )


# --- answering -------------------------------------------------------------------------------------


def answer_survey(
    survey: SurveyResponse, *, rating: int, comment: str = "", now: dt.datetime
) -> SurveyResponse:
    """Record the customer's answer once, and note it on the case timeline (for staff only).

    Raises SurveyAlreadyAnswered (nothing changes) or SurveyClosed; DomainError for a bad rating.
    """
    if not isinstance(rating, int) or not RATING_MIN <= rating <= RATING_MAX:
        raise DomainError(f"Choose a rating from {RATING_MIN} to {RATING_MAX}.", field="rating")
    comment = comment.strip()
    with transaction.atomic():
        case = Case.objects.select_for_update().get(pk=survey.case_id)
        survey = SurveyResponse.objects.select_for_update().get(pk=survey.pk)
        if survey.is_answered:
            raise SurveyAlreadyAnswered("This survey has already been answered.")
        if not is_open(survey, now=now):
            raise SurveyClosed("This survey has closed.")
        survey.rating = rating
        survey.comment = comment
        survey.answered_at = now
        survey.save(update_fields=["rating", "comment", "answered_at"])
        body = f"Rated {rating} of {RATING_MAX} ({RATING_LABELS[rating].lower()})."
        if comment:
            body += f"\n\n{comment}"
        record_event(
            case,
            CSAT_ANSWERED,
            actor=None,
            actor_name=case.requester.name,
            now=now,
            field="rating",
            new=rating,
            body=body,
            is_public=False,
        )
    return survey
