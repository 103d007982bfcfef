"""A demo major incident: ``manage.py load_demo_incidents`` (after load_demo_data).

An open P1 or P2 case of each of several demo customers is linked to one active incident,
declared by the demo agent with the demo manager as commander, with one public update (posted to
each linked case as its reply, no mail written) and one internal note. Made through ``incidents.services``.
Skipped when an incident exists.
"""

from __future__ import annotations

import datetime as dt

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from cases.models import OPEN_Q, Case
from incidents import services
from incidents.models import MajorIncident
from supportdesk.core import outbox


class Command(BaseCommand):
    help = "Create a demo major incident with linked cases and updates (after load_demo_data)."

    def handle(self, *args, **options):
        # The demo's customers are made up: the updates are on their cases, no mail is written.
        with transaction.atomic(), outbox.discarding():
            self._load()

    def _load(self) -> None:
        if MajorIncident.objects.exists():
            self.stdout.write("Demo incident exists; nothing to do.")
            return
        users = get_user_model().objects
        agent, manager = users.filter(username="agent").first(), users.filter(username="manager").first()
        if agent is None or manager is None:
            raise CommandError("Run load_demo_data first (it creates the agent and manager accounts).")
        # One outage, several customers: an open P1 or P2 case of each organisation (at most 8).
        by_organisation: dict[int, Case] = {}
        for case in Case.objects.filter(OPEN_Q, severity__in=["P1", "P2"]).order_by("severity", "id"):
            by_organisation.setdefault(case.organisation_id, case)
        cases = list(by_organisation.values())[:8]
        if not cases:
            self.stdout.write("No open P1/P2 case to link; no demo incident.")
            return
        now = timezone.now()
        incident = services.declare(
            title="Checkout payments fail",
            severity="P1",
            product_area=cases[0].product_area or "checkout",
            commander=manager,
            actor=agent,
            now=now - dt.timedelta(minutes=40),
            from_case=cases[0],
        )
        services.link_cases(incident, cases[1:], actor=agent, now=now - dt.timedelta(minutes=35))
        services.post_update(
            incident,
            body="We are aware that card payments fail at checkout. Engineering is investigating; "
            "the next update follows within 30 minutes.",
            public=True,
            actor=manager,
            now=now - dt.timedelta(minutes=30),
        )
        services.post_update(
            incident,
            body="Payment proxy returns 502 since the 09:10 deploy; rollback being prepared.",
            public=False,
            actor=manager,
            now=now - dt.timedelta(minutes=20),
        )
        self.stdout.write(f"Demo incident {incident.key} with {len(cases)} linked cases.")
