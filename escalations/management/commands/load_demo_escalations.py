"""Demo engineering teams and escalations: ``manage.py load_demo_escalations`` (after load_demo_data).

Two engineering teams (the demo ``engineer`` works on Payments) and one escalation in each state,
one of them bounced (engineering asked for more, support answered, back to submitted), all made
through the escalation services as the demo people would. Skipped when the teams exist.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from cases.models import OPEN_Q, Case, Status
from escalations import services
from escalations.models import EngineeringTeam
from supportdesk.core import outbox

TEAMS = [
    ("Payments Engineering", "payments", "checkout-api\nbilling\ninvoices", 3, ["engineer"]),
    ("Identity Engineering", "identity", "sso\nlogin\nuser-directory", 2, []),
]

PACKAGE: dict[str, Any] = {
    "component": "checkout-api",
    "steps_to_reproduce": "1. Sign in as a customer admin.\n2. Open Billing > Invoices.\n3. Export March.",
    "expected_behaviour": "A CSV with every invoice line.",
    "actual_behaviour": "The export stops after 1,000 lines without an error.",
    "product_version": "4.18.2",
    "region": "eu-west-1",
    "environment": "production",
    "request_ids": "req-7f3a9c, req-81b2d0",
    "log_excerpts": "ERROR export.writer: row limit reached (1000) for tenant acme-eu",
    "users_affected": 40,
    "tenant": "acme-eu",
    "workaround_available": True,
    "workaround": "Export one week at a time.",
    "hypotheses": "The paginated writer stops at its first page.",
}

# (what happens, summary): one escalation per state; "bounced" goes to needs_info and back.
STORIES = [
    ("draft", "Invoice export truncates at 1,000 lines"),
    ("submitted", "Card payments declined with code 51 for one bank"),
    ("acknowledged", "Webhook retries duplicate refunds"),
    ("needs_info", "Checkout times out for carts over 200 items"),
    ("bounced", "Tax totals off by a cent on multi-currency invoices"),
    ("in_progress", "Payment page blank in Safari 17"),
    ("resolved", "Receipts mailed twice after a retry"),
    ("declined", "Feature request: pay invoices by cheque"),
]


class Command(BaseCommand):
    help = "Load demo engineering teams and one escalation in each state (skipped if already loaded)."

    def handle(self, *args, **options):
        if EngineeringTeam.objects.filter(slug="payments").exists():
            self.stdout.write("Demo escalations already loaded (the Payments Engineering team exists).")
            return
        users = {
            u.username: u
            for u in get_user_model().objects.filter(username__in=["agent", "manager", "engineer"])
        }
        if len(users) < 3:
            raise CommandError("Load the demo cases first (manage.py load_demo_data).")
        now = timezone.now()
        # Demo people never get mail from a demo load.
        with transaction.atomic(), outbox.discarding():
            teams = {}
            for name, slug, components, minimum, members in TEAMS:
                teams[slug] = services.save_team(
                    actor=users["manager"],
                    name=name,
                    slug=slug,
                    components=components,
                    min_quality_score=minimum,
                    members=[get_user_model().objects.get(username=m) for m in members],
                )
            cases = list(
                Case.objects.filter(OPEN_Q)
                .filter(status__in=[Status.TRIAGED, Status.IN_PROGRESS])
                .order_by("severity", "id")[: len(STORIES)]
            )
            if len(cases) < len(STORIES):
                raise CommandError("Not enough open triaged cases to escalate; load more demo cases.")
            for (story, summary), case in zip(STORIES, cases, strict=False):
                self._tell(story, summary, case, team=teams["payments"], users=users, now=now)
        self.stdout.write(
            self.style.SUCCESS(f"Loaded {len(teams)} engineering teams and {len(STORIES)} escalations.")
        )

    def _tell(self, story, summary, case, *, team, users, now) -> None:
        agent, engineer = users["agent"], users["engineer"]
        at = now - dt.timedelta(hours=6)

        def step() -> dt.datetime:
            nonlocal at
            at += dt.timedelta(minutes=25)
            return at

        escalation = services.create_draft(
            case=case, team=team, actor=agent, now=step(), summary=summary, severity=case.severity, **PACKAGE
        )
        if story == "draft":
            return
        escalation = services.submit(escalation, actor=agent, now=step())
        if story == "submitted":
            return
        if story in ("needs_info", "bounced"):
            escalation = services.request_info(
                escalation,
                questions="Which currencies are on the invoice, and does it happen on the API too?",
                actor=engineer,
                now=step(),
            )
            if story == "bounced":
                services.answer_info_request(
                    escalation,
                    answer="EUR and GBP lines on one invoice; the API total is right, only the PDF is off.",
                    actor=agent,
                    now=step(),
                )
            return
        escalation = services.acknowledge(escalation, actor=engineer, now=step())
        if story == "acknowledged":
            return
        if story == "declined":
            services.decline(
                escalation,
                reason="Cheques are out of scope for the payments platform; this is a product decision.",
                actor=engineer,
                now=step(),
            )
            return
        escalation = services.start(escalation, actor=engineer, now=step())
        escalation = services.link(
            escalation,
            actor=engineer,
            now=step(),
            external_key="PAY-4821",
            external_url="https://tracker.example/PAY-4821",
        )
        if story == "resolved":
            services.resolve(
                escalation,
                resolution="The retry now reuses the receipt's id, so the mailer sends it once.",
                fix_version="4.18.3",
                actor=engineer,
                now=step(),
            )
