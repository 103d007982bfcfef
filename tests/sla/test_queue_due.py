"""The queue is sorted by what is due next (the SLA's earliest running clock), by default."""

from __future__ import annotations

import datetime as dt
import re

from django.urls import reverse

from cases import services
from sla.models import ClockState, SlaClock
from tests import factories


def _keys(html: str) -> list[str]:
    return re.findall(r'<td class="nowrap"><a href="/cases/(CASE-\d+)/">', html)


def test_queue_defaults_to_next_due_and_pages_through_it(client, agent, organisation, contact, now):
    created = now - dt.timedelta(minutes=5)
    p4 = services.create_case(
        title="Question about invoices",
        organisation=organisation,
        requester=contact,
        severity="P4",
        actor=agent,
        now=created,
    )
    p1 = services.create_case(
        title="Production down",
        organisation=organisation,
        requester=contact,
        severity="P1",
        actor=agent,
        now=created + dt.timedelta(minutes=1),
    )
    p3 = services.create_case(
        title="Export is slow",
        organisation=organisation,
        requester=contact,
        severity="P3",
        actor=agent,
        now=created - dt.timedelta(minutes=1),
    )
    no_clock_org = factories.OrganisationFactory(name="No SLA Inc", tier="standard")
    no_clock = services.create_case(
        title="No running clock",
        organisation=no_clock_org,
        requester=factories.ContactFactory(organisation=no_clock_org),
        severity="P2",
        actor=agent,
        now=created,
    )
    SlaClock.objects.filter(case=no_clock).update(state=ClockState.MET, met_at=created)
    expected_first = min(
        (p1, p3, p4),
        key=lambda c: SlaClock.objects.filter(case=c, state="running").order_by("due_at")[0].due_at,
    )
    assert expected_first == p1  # enterprise P1 answers in 15 minutes

    client.force_login(agent)
    page = client.get(reverse("cases:queue")).content.decode()
    keys = _keys(page)
    assert keys[0] == p1.key
    assert keys[-1] == no_clock.key  # nothing running sorts last
    assert "Next SLA due first" in page

    # Keyset paging over the computed due instant: no case twice, none lost.
    seen, url = [], reverse("cases:queue") + "?sort=due"
    from cases import views

    original = views.QUEUE_PAGE_SIZE
    views.QUEUE_PAGE_SIZE = 1
    try:
        while url:
            html = client.get(url).content.decode()
            seen += _keys(html)
            match = re.search(
                r'href="(\?[^"]*cursor=[^"]*)"[^>]*rel="next"|rel="next"[^>]*href="(\?[^"]*)"', html
            )
            url = (
                (reverse("cases:queue") + (match.group(1) or match.group(2)).replace("&amp;", "&"))
                if match
                else None
            )
    finally:
        views.QUEUE_PAGE_SIZE = original
    assert seen == keys
