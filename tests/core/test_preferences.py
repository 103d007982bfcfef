"""The preferences page: a person chooses their time zone (and notifications), and every page shows
times in it, in the one format with the zone named."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.contrib.messages import get_messages
from django.urls import reverse

from supportdesk.core import services
from supportdesk.core.instants import format_instant, zone_of, zones_of
from supportdesk.core.models import StaffProfile

pytestmark = pytest.mark.django_db

URL = "/preferences/"
# 09:30 UTC on a winter day: 10:30 in Berlin (CET), 18:30 in Tokyo (JST), 04:30 in New York (EST).
NOON_ISH = dt.datetime(2025, 1, 15, 9, 30, tzinfo=dt.UTC)


@pytest.fixture
def agent_client(client, agent):
    client.force_login(agent)
    return client


def _save(client, **data):
    form = {"time_zone": "", "email_notifications": "on", "sla_warnings": "on", **data}
    return client.post(URL, {k: v for k, v in form.items() if v is not None})


def test_the_preferences_page_is_linked_from_every_page_nav(agent_client):
    html = agent_client.get(reverse("core:notifications")).content.decode()
    assert f'href="{URL}"' in html
    assert reverse("core:preferences") == URL


def test_anonymous_visitors_are_sent_to_log_in(client):
    response = client.get(URL)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_choosing_a_zone_saves_it_and_says_so(agent_client, agent):
    response = _save(agent_client, time_zone="Asia/Tokyo", email_notifications=None)

    assert response.status_code == 302
    assert response["Location"] == URL
    assert [str(m) for m in get_messages(response.wsgi_request)] == ["Preferences saved."]
    profile = StaffProfile.objects.get(user=agent)
    assert (profile.time_zone, profile.email_notifications, profile.sla_warnings) == (
        "Asia/Tokyo",
        False,
        True,
    )


def test_pages_show_times_in_the_chosen_zone_with_the_zone_named(agent_client, agent):
    services.save_preferences(agent, time_zone="Asia/Tokyo", email_notifications=True, sla_warnings=True)
    with time_machine.travel(NOON_ISH, tick=False):
        html = agent_client.get(URL).content.decode()
    assert '<time datetime="2025-01-15T18:30:00+09:00">15 Jan 2025 18:30 JST</time>' in html
    assert "Times are shown in <strong>Asia/Tokyo</strong>" in html


def test_the_chosen_zone_wins_over_the_browsers(agent_client, agent):
    agent_client.cookies["tz"] = "Europe/Berlin"
    with time_machine.travel(NOON_ISH, tick=False):
        assert "15 Jan 2025 10:30 CET" in agent_client.get(URL).content.decode()
        services.save_preferences(
            agent, time_zone="America/New_York", email_notifications=True, sla_warnings=True
        )
        html = agent_client.get(URL).content.decode()
    assert "15 Jan 2025 04:30 EST" in html
    assert "10:30 CET" not in html


def test_utc_can_be_chosen_over_a_browser_elsewhere(agent_client, agent):
    """UTC used to mean "not chosen" and the browser's zone won; now it is a choice like any other."""
    agent_client.cookies["tz"] = "Europe/Berlin"
    services.save_preferences(agent, time_zone="UTC", email_notifications=True, sla_warnings=True)
    with time_machine.travel(NOON_ISH, tick=False):
        html = agent_client.get(URL).content.decode()
    assert "15 Jan 2025 09:30 UTC" in html


def test_without_a_choice_the_site_zone_is_used(agent_client, settings):
    assert settings.TIME_ZONE == "UTC"
    with time_machine.travel(NOON_ISH, tick=False):
        html = agent_client.get(URL).content.decode()
    assert "15 Jan 2025 09:30 UTC" in html
    assert "the site's zone" in html


def test_the_zone_is_active_on_other_pages_too(agent_client, agent):
    services.save_preferences(agent, time_zone="Asia/Tokyo", email_notifications=True, sla_warnings=True)
    services.notify(recipient=agent, kind="test", title="Something happened", now=NOON_ISH)
    html = agent_client.get(reverse("core:notifications")).content.decode()
    assert "15 Jan 2025 18:30 JST" in html


@pytest.mark.parametrize("bad", ["Mars/Olympus_Mons", "CET+1", "europe/berlin ", "x" * 70])
def test_an_unknown_zone_is_a_form_error_and_nothing_is_saved(agent_client, agent, bad):
    services.save_preferences(agent, time_zone="Europe/Berlin", email_notifications=True, sla_warnings=True)

    response = _save(agent_client, time_zone=bad)

    assert response.status_code == 400
    html = response.content.decode()
    assert "Nothing was saved" in html
    assert 'class="field has-error' in html
    assert ("is not a time zone name we know" in html) or ("at most 64 characters" in html)
    assert StaffProfile.objects.get(user=agent).time_zone == "Europe/Berlin"


def test_the_middleware_costs_at_most_one_query(agent_client, agent, django_assert_max_num_queries):
    services.save_preferences(agent, time_zone="Asia/Tokyo", email_notifications=True, sla_warnings=True)
    agent_client.get(URL)  # warm up
    # session, user, the preferences row (middleware), the view's own read, the roles, the unread count
    with django_assert_max_num_queries(6):
        agent_client.get(URL)


def test_text_built_without_a_request_uses_the_recipients_zone(agent, other_agent, manager):
    services.save_preferences(agent, time_zone="Europe/Berlin", email_notifications=True, sla_warnings=True)
    services.save_preferences(other_agent, time_zone="", email_notifications=True, sla_warnings=True)

    zones = zones_of([agent, other_agent, manager])

    assert {pk: str(z) for pk, z in zones.items()} == {
        agent.pk: "Europe/Berlin",
        other_agent.pk: "UTC",  # not chosen: settings.TIME_ZONE
        manager.pk: "UTC",  # no preferences row
    }
    assert format_instant(NOON_ISH, zone_of(agent)) == "15 Jan 2025 10:30 CET"
    assert format_instant(NOON_ISH, zone_of(manager)) == "15 Jan 2025 09:30 UTC"
    assert format_instant(None, zone_of(agent)) == "—"


# --- text built by a worker: in each recipient's zone, and their notification choices -------------

# A Wednesday, 10:00 UTC. An enterprise P1's first response is due 15 min later (24x7): 10:15 UTC,
# 11:15 in Berlin, 19:15 in Tokyo.
T0 = dt.datetime(2026, 3, 4, 10, 0, tzinfo=dt.UTC)


def _p1(organisation, contact, agent, assignee):
    from cases import services as cases

    return cases.create_case(
        title="Checkout down",
        organisation=organisation,
        requester=contact,
        severity="P1",
        assignee=assignee,
        actor=agent,
        now=T0,
    )


def test_an_sla_breach_reads_in_each_recipients_zone(organisation, contact, agent, manager):
    from sla import services as sla
    from supportdesk.core.models import Notification, OutboundMessage

    services.save_preferences(agent, time_zone="Asia/Tokyo", email_notifications=True, sla_warnings=True)
    services.save_preferences(manager, time_zone="Europe/Berlin", email_notifications=True, sla_warnings=True)
    case = _p1(organisation, contact, agent, agent)

    sla.record_due_warnings_and_breaches(now=T0 + dt.timedelta(minutes=16))

    notes = {n.recipient_id: n.body for n in Notification.objects.filter(dedupe_key__endswith=":breach")}
    assert "it was due 4 Mar 2026 19:15 JST." in notes[agent.pk]
    assert "it was due 4 Mar 2026 11:15 CET." in notes[manager.pk]
    # The timeline is read by everyone: the same format, in UTC, the zone named.
    event = case.events.get(kind="sla_breached")
    assert "it was due 4 Mar 2026 10:15 UTC." in event.body
    # One mail to two people in two zones: the site's zone, named.
    mail = OutboundMessage.objects.get(dedupe_key__endswith=":breach")
    assert sorted(mail.to) == sorted([agent.email, manager.email])
    assert "it was due 4 Mar 2026 10:15 UTC." in mail.body


def test_a_mail_to_one_person_reads_in_their_zone(organisation, contact, agent, other_agent):
    from sla import services as sla
    from supportdesk.core.models import OutboundMessage

    services.save_preferences(
        other_agent, time_zone="America/New_York", email_notifications=True, sla_warnings=True
    )
    _p1(organisation, contact, agent, other_agent)  # no managers exist: the assignee alone is told
    sla.record_due_warnings_and_breaches(now=T0 + dt.timedelta(minutes=12))  # the P1 warning (75 %)

    mail = OutboundMessage.objects.get(dedupe_key__endswith=":warning")
    assert mail.to == [other_agent.email]
    assert "due 4 Mar 2026 05:15 EST" in mail.body


def test_people_who_opt_out_get_no_mail_and_no_warnings(organisation, contact, agent, manager):
    from sla import services as sla
    from supportdesk.core.models import Notification, OutboundMessage

    services.save_preferences(agent, time_zone="", email_notifications=False, sla_warnings=False)
    _p1(organisation, contact, agent, agent)

    sla.record_due_warnings_and_breaches(now=T0 + dt.timedelta(minutes=12))  # warning
    warned = set(
        Notification.objects.filter(dedupe_key__endswith=":warning").values_list("recipient_id", flat=True)
    )
    assert warned == {manager.pk}
    assert OutboundMessage.objects.get(dedupe_key__endswith=":warning").to == [manager.email]

    sla.record_due_warnings_and_breaches(now=T0 + dt.timedelta(minutes=16))  # breach: always told in the app
    breached = set(
        Notification.objects.filter(dedupe_key__endswith=":breach").values_list("recipient_id", flat=True)
    )
    assert breached == {agent.pk, manager.pk}
    assert OutboundMessage.objects.get(dedupe_key__endswith=":breach").to == [manager.email]
