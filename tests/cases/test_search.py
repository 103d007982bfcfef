"""Case search (cases/search.py): what finds a case, who finds internal notes, how results combine with
the queue's filters, rank and read; the page and the API. Runs on SQLite and on PostgreSQL (full text
and trigrams there)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from cases import search, selectors, services
from cases.models import Case, CaseSearchDocument, Status
from tests import factories

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)


def keys(queryset) -> list[str]:
    return [case.key for case in queryset]


def find(text: str, *, staff: bool = True, queryset=None) -> list[str]:
    return keys(search.search(queryset if queryset is not None else selectors.case_list(), text, staff=staff))


@pytest.fixture
def brightwater(db):
    return factories.OrganisationFactory(name="Brightwater Analytics", tier="enterprise")


@pytest.fixture
def ingrid(brightwater):
    return factories.ContactFactory(
        organisation=brightwater, name="Ingrid Halvorsen", email="ingrid@brightwater.example"
    )


@pytest.fixture
def export_case(ingrid, agent):
    """A case whose words are each in one place only (title, description, reply, note, tags)."""
    case = services.create_case(
        title="Export stalls at eighty percent",
        description="The nightly CSV export stops with a timeout since Tuesday.",
        organisation=ingrid.organisation,
        requester=ingrid,
        actor=agent,
        now=T0,
        tags=["billing-sync"],
    )
    services.add_public_reply(
        case, body="We raised the quota of the zeppelin worker pool.", actor=agent, now=T0 + HOUR
    )
    services.add_internal_note(
        case, body="Suspect the marmalade cache is stale.", actor=agent, now=T0 + 2 * HOUR
    )
    return case


@pytest.fixture
def login_case(contact, agent):
    """Acme's case, resolved and closed by the sweep."""
    case = services.create_case(
        title="Login loop after the one-time code",
        description="Users land on the login page again.",
        organisation=contact.organisation,
        requester=contact,
        actor=agent,
        now=T0,
    )
    case = services.transition(
        case, Status.TRIAGED, actor=agent, now=T0 + HOUR, severity="P3", assignee=agent
    )
    case = services.transition(case, Status.IN_PROGRESS, actor=agent, now=T0 + HOUR)
    case = services.transition(case, Status.RESOLVED, actor=agent, now=T0 + 2 * HOUR)
    services.auto_close_resolved(now=T0 + dt.timedelta(days=8))
    case.refresh_from_db()
    assert case.status == Status.CLOSED
    return case


# --- What finds a case ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "Brightwater Analytics",  # organisation
        "brightwater",
        "Halvorsen",  # contact name
        "ingrid@brightwater.example",  # contact e-mail
        "billing-sync",  # tag
        "zeppelin",  # only in a public reply
        "timeout",  # a description word
        "nightly export",  # description words, any order
        "eighty",  # title
        "Brightw",  # part of the organisation
        "Halvor",  # part of a contact name
    ],
)
def test_a_case_is_found_by_each_of_its_words(export_case, login_case, text):
    assert find(text) == [export_case.key]


def test_a_case_is_found_by_its_key_and_by_part_of_it(export_case):
    others = [
        services.create_case(
            title="Unrelated",
            organisation=export_case.organisation,
            requester=export_case.requester,
            actor=None,
            now=T0,
        )
        for _ in range(2)
    ]
    assert find(export_case.key)[0] == export_case.key
    # A key's first characters find it (CASE-1 finds CASE-1, CASE-12, ...), the exact key first.
    partial = export_case.key[:-1] if len(export_case.key) > 6 else export_case.key
    assert export_case.key in find(partial)
    assert find(others[1].key)[0] == others[1].key


def test_internal_note_words_are_found_for_staff_only(export_case):
    assert find("marmalade", staff=True) == [export_case.key]
    assert find("marmalade", staff=False) == []
    # The public words still find the case for anyone, and its snippet holds no note.
    found = search.search(selectors.case_list(), "zeppelin", staff=False)
    assert keys(found) == [export_case.key]
    assert "marmalade" not in search.snippet_html(found[0], "zeppelin")


def test_closed_cases_are_found(login_case):
    assert find("one-time code") == [login_case.key]
    assert find("Acme") == [login_case.key]


def test_words_of_another_case_do_not_match(export_case, login_case):
    assert find("zeppelin login") == []
    assert find("nothing-like-this") == []


def test_search_narrows_the_queue_filters(export_case, login_case, agent, client):
    client.force_login(agent)
    both = client.get("/cases/search/", {"q": "the"})  # a word in both cases (on SQLite: substring)
    closed = client.get("/cases/search/", {"q": "login", "status": "closed"})
    new_only = client.get("/cases/search/", {"q": "login", "status": "new"})
    open_state = client.get("/cases/search/", {"q": "login", "state": "open"})
    org = client.get("/cases/search/", {"q": "percent", "organisation": export_case.organisation_id})
    assert closed.status_code == 200
    assert [r.case.key for r in closed.context["results"]] == [login_case.key]
    assert new_only.context["results"] == []
    assert open_state.context["results"] == []
    assert [r.case.key for r in org.context["results"]] == [export_case.key]
    assert both.status_code == 200


def test_a_title_match_ranks_above_a_body_only_match(ingrid, agent):
    in_title = services.create_case(
        title="Quasar dashboard is blank",
        organisation=ingrid.organisation,
        requester=ingrid,
        actor=agent,
        now=T0,
    )
    in_body = services.create_case(
        title="Dashboard is blank",
        description="The quasar widget shows nothing.",
        organisation=ingrid.organisation,
        requester=ingrid,
        actor=agent,
        now=T0 + HOUR,
    )
    # The body-only match is newer: the rank, not the age, puts the title match first.
    assert find("quasar") == [in_title.key, in_body.key]


# --- Kept current -----------------------------------------------------------------------------------


@pytest.mark.parametrize("matching_every", [1, 3, 7])
def test_searching_the_newest_cases_first_finds_the_newest_matches(
    ingrid, agent, monkeypatch, matching_every
):
    """The newest cases first (here the newest 3, then wider spans): the same newest matches as
    one search over every case, whether the matches are dense or sparse."""
    monkeypatch.setattr(search, "SEARCH_LIMIT", 3)
    monkeypatch.setattr(search, "FIRST_WINDOW", 1)
    matches = []
    for i in range(24):
        word = "quokka" if i % matching_every == 0 else "wombat"
        case = services.create_case(
            title=f"Sync problem {i} {word}",
            description="-",
            organisation=ingrid.organisation,
            requester=ingrid,
            actor=agent,
            now=T0 + i * HOUR,
        )
        if word == "quokka":
            matches.append(case.key)
    newest_first = list(reversed(matches))
    # SEARCH_LIMIT + 1 matches are ranked (the last tells the paginator that more matched).
    found = search.search(selectors.case_list(), "quokka", staff=True)
    assert sorted(keys(found), key=lambda k: -Case.pk_from_key(k)) == newest_first[:4]
    assert found.search_matched == 4
    # With a filter (the join to the cases) too.
    filtered = search.search(
        selectors.case_list().filter(organisation=ingrid.organisation), "quokka", staff=True
    )
    assert set(keys(filtered)) == set(newest_first[:4])


def test_changes_are_searchable_at_once(export_case, agent):
    services.update_case(export_case, actor=agent, now=T0 + 3 * HOUR, title="Export hangs", tags=["exports"])
    assert find("eighty") == []
    assert find("hangs") == [export_case.key]
    assert find("billing-sync") == []
    assert find("exports") == [export_case.key]


def test_renaming_an_organisation_contact_or_tag_reindexes_its_cases(export_case):
    org = export_case.organisation
    org.name = "Tidewater Logistics"
    org.save()
    contact = export_case.requester
    contact.name = "Ingrid Solberg"
    contact.save()
    tag = export_case.tags.get()
    tag.name = "ledger-sync"
    tag.save()
    assert find("Tidewater") == [export_case.key]
    assert find("Solberg") == [export_case.key]
    assert find("ledger-sync") == [export_case.key]
    assert find("Analytics") == []  # (the address still says brightwater)
    assert find("Halvorsen") == []
    assert find("billing-sync") == []


def test_a_customer_mail_is_searchable(export_case, ingrid):
    services.add_customer_message(
        export_case, body="The gondola report is still missing.", sender=ingrid, now=T0 + 5 * HOUR
    )
    assert find("gondola") == [export_case.key]


def test_rebuild_command_restores_the_documents_and_is_idempotent(export_case, login_case):
    CaseSearchDocument.objects.all().delete()
    assert find("zeppelin") == []
    call_command("rebuild_case_search", batch=1)
    first = {d.pk: (d.names_text, d.public_text, d.staff_text) for d in CaseSearchDocument.objects.all()}
    call_command("rebuild_case_search")
    second = {d.pk: (d.names_text, d.public_text, d.staff_text) for d in CaseSearchDocument.objects.all()}
    assert first == second
    assert set(first) == {export_case.pk, login_case.pk}
    assert find("zeppelin") == [export_case.key]
    assert find("marmalade", staff=False) == []


def test_imported_cases_are_searchable():
    from tests.imports.conftest import DATA, run

    run(DATA / "servicenow.csv")
    imported = Case.objects.exclude(external_ref=None)
    assert imported.count() > 0
    assert CaseSearchDocument.objects.filter(case__in=imported).count() == imported.count()
    first = imported.order_by("pk").first()
    assert first.key in find(first.organisation.name)


def test_a_mail_that_opens_a_case_is_searchable(team, settings, tmp_path):
    from inbound.models import Mailbox, MailboxMode
    from tests.inbound.helpers import SUPPORT, fresh, organisation_with_domains, receive

    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.MAIL_MESSAGE_ID_DOMAIN = "help.acme.example"
    organisation_with_domains("Brightwave", "brightwave.example")
    mailbox = Mailbox.objects.create(
        name="support", address=SUPPORT, team=team, default_severity="P2", mode=MailboxMode.PIPE
    )
    record = receive(
        mailbox, fresh("gmail_reply.eml", in_reply_to=None, references=None, subject="Kestrel sync")
    )
    assert record.case_id is not None
    assert find("kestrel") == [f"CASE-{record.case_id}"]
    assert find("Brightwave") == [f"CASE-{record.case_id}"]


# --- The page ---------------------------------------------------------------------------------------


def test_the_page_lists_results_with_highlighted_escaped_snippets(ingrid, agent, client):
    case = services.create_case(
        title="Upload <b>broken</b>",
        description="Preview fails.",
        organisation=ingrid.organisation,
        requester=ingrid,
        actor=agent,
        now=T0,
    )
    services.add_public_reply(
        case, body="Pasted: <script>alert('x')</script> & the gizmo crashed.", actor=agent, now=T0 + HOUR
    )
    client.force_login(agent)
    response = client.get("/cases/search/", {"q": "gizmo"})
    page = response.content.decode()
    assert response.status_code == 200
    assert "<script>alert" not in page
    assert "<b>broken</b>" not in page
    assert "Upload &lt;b&gt;broken&lt;/b&gt;" in page
    assert "<mark>gizmo</mark>" in page
    assert case.key in page
    assert "Brightwater Analytics" in page


def test_snippet_markers_become_marks_and_everything_else_is_escaped():
    raw = f"<img src=x onerror=alert(1)> {search.MARK_START}hit{search.MARK_STOP} {search.MARK_STOP} &"
    assert search.markers_to_html(raw) == "&lt;img src=x onerror=alert(1)&gt; <mark>hit</mark>  &amp;"
    assert search.markers_to_html(f"{search.MARK_START}open") == "<mark>open</mark>"


def test_the_page_runs_the_same_queries_for_10_and_50_results(ingrid, agent, client):
    for n in range(55):
        case = services.create_case(
            title=f"Widget {n} misbehaves",
            organisation=ingrid.organisation,
            requester=ingrid,
            actor=agent,
            now=T0 + n * dt.timedelta(minutes=1),
            tags=["widgets", f"w{n}"],
        )
    assert case
    client.force_login(agent)
    client.get("/cases/search/", {"q": "widget"})  # session and roles warmed
    counts = {}
    for size in (10, 50):
        with CaptureQueriesContext(connection) as captured:
            response = client.get("/cases/search/", {"q": "widget", "page_size": size})
        assert len(response.context["results"]) == size
        counts[size] = len(captured.captured_queries)
    assert counts[10] == counts[50]


def test_the_page_needs_an_agent_and_refuses_an_overlong_query(agent, engineer, client):
    client.force_login(engineer)
    assert client.get("/cases/search/", {"q": "x"}).status_code == 403
    client.force_login(agent)
    response = client.get("/cases/search/", {"q": "x" * 201})
    assert response.status_code == 400
    assert "at most 200 characters" in response.content.decode()
    assert client.get("/cases/search/").status_code == 200


def test_the_navigation_has_a_search_box(agent, client):
    client.force_login(agent)
    page = client.get("/cases/").content.decode()
    assert 'action="/cases/search/"' in page


# --- The API ----------------------------------------------------------------------------------------


def test_api_search_returns_ranked_results_with_snippets(export_case, login_case, agent):
    api = APIClient()
    api.force_login(agent)
    response = api.get("/api/cases/search/", {"q": "zeppelin"})
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 1
    assert body["count_capped"] is False
    (row,) = body["results"]
    assert row["key"] == export_case.key
    assert row["organisation"]["name"] == "Brightwater Analytics"
    assert "<mark>zeppelin</mark>" in row["snippet_html"]
    assert "zeppelin" in row["snippet"]
    assert "\x02" not in row["snippet"]
    closed = api.get("/api/cases/search/", {"q": "login", "status": "closed"}).json()
    assert [r["key"] for r in closed["results"]] == [login_case.key]


@pytest.mark.parametrize(
    ("params", "field"),
    [({}, "q"), ({"q": "   "}, "q"), ({"q": "x" * 201}, "q"), ({"q": "a", "page": "x"}, "page"),
     ({"q": "a", "page_size": "0"}, "page_size"), ({"q": "a", "severity": "P9"}, "severity")],
)  # fmt: skip
def test_api_search_refuses_bad_input_with_a_field_message(agent, params, field):
    api = APIClient()
    api.force_login(agent)
    response = api.get("/api/cases/search/", params)
    assert response.status_code == 400
    assert field in response.json()


def test_api_search_is_for_staff_and_documented(engineer, agent):
    api = APIClient()
    api.force_login(engineer)
    assert api.get("/api/cases/search/", {"q": "x"}).status_code == 403
    api.force_login(agent)
    schema = api.get("/api/schema/", {"format": "json"}).json()
    operation = schema["paths"]["/api/cases/search/"]["get"]
    parameters = {p["name"]: p for p in operation["parameters"]}
    assert parameters["q"]["required"] is True
    assert {"status", "organisation", "page", "page_size"} <= set(parameters)
    assert {"200", "400", "401", "403"} <= set(operation["responses"])
