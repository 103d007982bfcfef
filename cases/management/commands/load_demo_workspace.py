"""Demo macros and saved views: ``manage.py load_demo_workspace`` (after load_demo_data).

Shared macros a team starts with (written by the demo manager), a personal one for the demo
agent, and saved views: the agent's own and one shared with Tier 1. Made through
``cases.macros`` and ``cases.saved_views``. Skipped when the first shared macro exists.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from cases import macros, saved_views
from cases.models import Macro, Status, Team

SHARED_MACROS = [
    (
        "Acknowledge and investigate",
        "Hello {{requester_first_name}},\n\nthank you for reporting this. I am looking into {{case_key}} "
        "now and will update you within the hour.\n\nBest regards,\n{{agent_name}}",
        Status.IN_PROGRESS,
        [],
    ),
    (
        "Ask for logs",
        "Hello {{requester_first_name}},\n\nto find the cause, could you send the browser console log "
        "and the time the problem last happened (with your time zone)?\n\nThank you,\n{{agent_name}}",
        Status.WAITING_ON_CUSTOMER,
        ["needs-logs"],
    ),
    (
        "Resolved: fix deployed",
        "Hello {{requester_first_name}},\n\nthe fix for {{case_title}} is deployed. Please try again; if "
        "anything is still wrong, just reply to this mail and the case reopens.\n\n{{agent_name}}",
        Status.RESOLVED,
        [],
    ),
]
PERSONAL_MACRO = (
    "Thanks, checking with engineering",
    "Hello {{requester_first_name}},\n\nthanks for the details. I have passed them to our engineers "
    "and will write again as soon as I hear back.\n\n{{agent_name}}",
)
VIEWS = [
    ("agent", None, "My P1 and P2", "mine=true&severity=P1&severity=P2&sort=due"),
    ("agent", None, "Waiting on the customer", "status=waiting_on_customer&sort=due"),
    ("agent", "tier-1", "Tier 1: new today", "status=new&team=tier-1&sort=due"),
]


class Command(BaseCommand):
    help = "Load demo macros and saved views (skipped if already loaded)."

    def handle(self, *args, **options):
        if Macro.objects.filter(owner__isnull=True, name=SHARED_MACROS[0][0]).exists():
            self.stdout.write("Demo macros and saved views already loaded.")
            return
        users = {u.username: u for u in get_user_model().objects.filter(username__in=["agent", "manager"])}
        if len(users) < 2:
            raise CommandError("Load the demo cases first (manage.py load_demo_data).")
        now = timezone.now()
        with transaction.atomic():
            for name, body, status, tags in SHARED_MACROS:
                macros.save_macro(
                    Macro(),
                    actor=users["manager"],
                    now=now,
                    name=name,
                    body=body,
                    shared=True,
                    set_status=status,
                    add_tags=tags,
                )
            macros.save_macro(
                Macro(),
                actor=users["agent"],
                now=now,
                name=PERSONAL_MACRO[0],
                body=PERSONAL_MACRO[1],
                shared=False,
            )
            teams = {t.slug: t for t in Team.objects.all()}
            for owner, team, name, query in VIEWS:
                saved_views.create_view(
                    owner=users[owner],
                    name=name,
                    query=query,
                    now=now,
                    team=teams.get(team) if team else None,
                )
        self.stdout.write(
            self.style.SUCCESS(f"Loaded {len(SHARED_MACROS) + 1} macros and {len(VIEWS)} saved views.")
        )
