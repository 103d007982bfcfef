"""The public survey page: customers are not users, so the link's token is the only credential.

A GET only shows the form (``?rating=N`` from the e-mail pre-selects an answer; mail scanners follow
links, so a GET never records anything); a POST records the answer once.
"""

from __future__ import annotations

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from supportdesk.core.errors import DomainError

from . import surveys
from .models import COMMENT_MAX_LENGTH, RATING_MAX, RATING_MIN, SurveyResponse

TOKEN_MAX_LENGTH = 64


class SurveyForm(forms.Form):
    rating = forms.TypedChoiceField(
        label="How satisfied are you with how we handled your case?",
        choices=[(n, f"{n} – {surveys.RATING_LABELS[n]}") for n in range(RATING_MAX, RATING_MIN - 1, -1)],
        coerce=int,
        widget=forms.RadioSelect,
        error_messages={
            "required": "Choose a rating from 1 to 5.",
            "invalid_choice": "Choose a rating from 1 to 5.",
        },
    )
    comment = forms.CharField(
        label="Anything you would like to tell us? (optional)",
        required=False,
        max_length=COMMENT_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 5}),
    )


def _initial_rating(value: str | None) -> int | None:
    try:
        rating = int(value or "")
    except ValueError:
        return None
    return rating if RATING_MIN <= rating <= RATING_MAX else None


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def answer(request: HttpRequest, token: str) -> HttpResponse:
    survey = (
        SurveyResponse.objects.select_related("case").filter(token=token).first()
        if len(token) <= TOKEN_MAX_LENGTH
        else None
    )
    if survey is None:
        return render(request, "metrics/survey_not_found.html", status=404)
    now = timezone.now()
    context = {"survey": survey, "case": survey.case, "rating_max": RATING_MAX}
    if survey.is_answered:
        # A second submission changes nothing; the page says so.
        refused = request.method == "POST"
        return render(
            request,
            "metrics/survey_answered.html",
            {**context, "refused": refused},
            status=409 if refused else 200,
        )
    if not surveys.is_open(survey, now=now):
        return render(request, "metrics/survey_closed.html", context, status=410)
    if request.method != "POST":
        form = SurveyForm(initial={"rating": _initial_rating(request.GET.get("rating"))})
        return render(request, "metrics/survey.html", {**context, "form": form})
    form = SurveyForm(request.POST)
    if form.is_valid():
        try:
            surveys.answer_survey(
                survey, rating=form.cleaned_data["rating"], comment=form.cleaned_data["comment"], now=now
            )
        except surveys.SurveyAlreadyAnswered:
            survey.refresh_from_db()
            return render(request, "metrics/survey_answered.html", {**context, "refused": True}, status=409)
        except surveys.SurveyClosed:
            return render(request, "metrics/survey_closed.html", context, status=410)
        except DomainError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            return redirect("surveys:answer", token=survey.token)
    return render(request, "metrics/survey.html", {**context, "form": form}, status=400)
