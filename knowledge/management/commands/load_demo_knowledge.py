"""Demo knowledge: ``manage.py load_demo_knowledge`` (after load_demo_data).

Articles and runbooks in each state a team meets: published, in review, a draft, and one past its
review date (flagged stale, its owner told), written and published through the knowledge services
by the demo agent and manager. Skipped when the first article exists.
"""

from __future__ import annotations

import datetime as dt

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from knowledge import services
from knowledge.models import Article, Kind
from supportdesk.core import outbox

# (slug, kind, title, product area, tags, state, body)
ARTICLES = [
    (
        "reset-sso-after-idp-certificate-rotation",
        Kind.RUNBOOK,
        "Reset SSO after the identity provider rotates its certificate",
        "sso",
        ["sso", "saml"],
        "published",
        "## When\n\nCustomers see *SAML login loops* right after their IdP rotated its signing "
        "certificate.\n\n## Steps\n\n1. Ask for the new certificate's fingerprint.\n2. In **Admin > SSO**, "
        "upload it as the secondary certificate.\n3. Ask one user to sign in; then make it primary.\n\n"
        "See [the SSO guide](https://docs.example/sso) for screenshots.",
    ),
    (
        "export-more-than-1000-invoice-lines",
        Kind.ARTICLE,
        "Exporting more than 1,000 invoice lines",
        "billing",
        ["billing", "export"],
        "published",
        "The invoice export stops at 1,000 lines in version 4.18.2.\n\n- Export one week at a time, or\n"
        "- use the `GET /invoices?page=` API.\n\nFixed in 4.18.3.",
    ),
    (
        "webhook-retries-and-duplicates",
        Kind.ARTICLE,
        "Why a webhook can arrive twice, and how to ignore the copy",
        "integrations",
        ["webhooks"],
        "review",
        "Every delivery carries a `webhook-id`. A receiver that stores the ids it processed can skip a "
        "retry of one it already handled.",
    ),
    (
        "safari-blank-payment-page",
        Kind.RUNBOOK,
        "Payment page blank in Safari",
        "checkout",
        ["safari", "checkout"],
        "draft",
        "1. Ask for the Safari version.\n2. Ask the customer to turn off *Hide IP address* and retry.",
    ),
    (
        "dashboard-widgets-load-forever",
        Kind.ARTICLE,
        "Dashboard widgets that never finish loading",
        "dashboards",
        ["dashboards"],
        "stale",
        "Clear the browser's site data for the app, then reload. If it persists, collect a HAR file.",
    ),
]


class Command(BaseCommand):
    help = "Load demo knowledge articles and runbooks in each state (skipped if already loaded)."

    def handle(self, *args, **options):
        if Article.objects.filter(slug=ARTICLES[0][0]).exists():
            self.stdout.write("Demo knowledge already loaded.")
            return
        users = {u.username: u for u in get_user_model().objects.filter(username__in=["agent", "manager"])}
        if len(users) < 2:
            raise CommandError("Load the demo cases first (manage.py load_demo_data).")
        agent, manager = users["agent"], users["manager"]
        now = timezone.now()
        # Demo people never get mail from a demo load.
        with transaction.atomic(), outbox.discarding():
            for slug, kind, title, area, tags, state, body in ARTICLES:
                # The stale one was published long ago with a 30-day review interval.
                written = now - (dt.timedelta(days=60) if state == "stale" else dt.timedelta(days=3))
                article = services.create_draft(
                    title=title,
                    actor=agent,
                    now=written,
                    kind=kind,
                    body_markdown=body,
                    product_area=area,
                    tags=tags,
                    slug=slug,
                    review_interval_days=30 if state == "stale" else 180,
                )
                if state == "draft":
                    continue
                article = services.submit_for_review(
                    article, actor=agent, now=written + dt.timedelta(hours=1)
                )
                if state == "review":
                    continue
                services.publish(article, actor=manager, now=written + dt.timedelta(hours=2))
            flagged = services.flag_stale(now=now)
        self.stdout.write(
            self.style.SUCCESS(
                f"Loaded {len(ARTICLES)} knowledge articles and runbooks ({flagged} flagged stale)."
            )
        )
