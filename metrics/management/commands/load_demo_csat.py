"""Demo CSAT answers: ``manage.py load_demo_csat`` (after load_demo_data).

The demo's resolved cases were sent their surveys (kept in the database; the mails were taken
back). About two in three customers answer, a day after the survey, mostly satisfied, some not,
a few with a comment, through ``metrics.surveys.answer_survey``. Skipped once any survey is answered.
"""

from __future__ import annotations

import datetime as dt
import random

from django.core.management.base import BaseCommand
from django.db import transaction

from metrics import surveys
from metrics.models import SurveyResponse
from supportdesk.core import outbox

RATINGS = {5: 45, 4: 30, 3: 12, 2: 8, 1: 5}
COMMENTS = {
    5: ["Fixed within the hour, thank you!", "Clear answers and quick."],
    4: ["Good help, took a little long."],
    3: ["It works now, but I had to explain the problem twice."],
    2: ["Three days without an update."],
    1: ["The workaround did not work and nobody called back."],
}


class Command(BaseCommand):
    help = "Answer about two thirds of the demo's CSAT surveys (skipped if any survey is answered)."

    def handle(self, *args, **options):
        if SurveyResponse.objects.filter(answered_at__isnull=False).exists():
            self.stdout.write("Demo CSAT answers already loaded.")
            return
        rng = random.Random(15)
        answered = 0
        # Demo people never get mail from a demo load.
        with transaction.atomic(), outbox.discarding():
            for survey in SurveyResponse.objects.order_by("id"):
                if rng.random() > 0.66:
                    continue
                rating = rng.choices(list(RATINGS), weights=list(RATINGS.values()))[0]
                comment = rng.choice(COMMENTS[rating]) if rng.random() < 0.5 else ""
                surveys.answer_survey(
                    survey, rating=rating, comment=comment, now=survey.sent_at + dt.timedelta(hours=20)
                )
                answered += 1
        self.stdout.write(self.style.SUCCESS(f"Answered {answered} CSAT surveys."))
