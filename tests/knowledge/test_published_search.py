"""Search finds and quotes what readers see: the published revision of an article, not a pending
draft edit of it (issue 15). Holds on SQLite and on PostgreSQL (the stored tsvector)."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from knowledge import selectors, services

pytestmark = pytest.mark.django_db


def _slugs(qs) -> list[str]:
    return [a.slug for a in qs]


@pytest.fixture
def edited(make_article, agent, now):
    """A published article whose working copy has an unpublished edit that replaced its wording."""
    article = make_article(
        title="Spooler restart",
        body="Restart the print spooler service, then send the test page again.",
        status="published",
    )
    return services.update(
        article,
        title="Driver reinstall",
        body_markdown="Reinstall the vendor driver package from the download portal.",
        actor=agent,
        now=now,
    )


def test_published_words_are_still_found_after_a_draft_edit(edited):
    assert _slugs(selectors.search_articles("spooler")) == [edited.slug]
    assert _slugs(selectors.search_articles("restart")) == [edited.slug]


def test_words_of_the_unpublished_draft_are_not_found(edited):
    assert _slugs(selectors.search_articles("reinstall")) == []
    assert _slugs(selectors.search_articles("driver")) == []


def test_snippet_and_title_quote_the_published_text(edited):
    [hit] = selectors.search_articles("spooler")
    snippet = selectors.snippet_html(hit, "spooler")

    assert "<mark>Spooler</mark> restart" in snippet.title
    assert "<mark>spooler</mark>" in snippet.body
    assert "driver" not in snippet.body.lower()
    assert "Driver" not in snippet.title


def test_publishing_the_edit_makes_its_words_searchable(edited, manager, now):
    services.publish(edited, actor=manager, now=now)

    assert _slugs(selectors.search_articles("driver")) == [edited.slug]
    assert _slugs(selectors.search_articles("spooler")) == []


def test_a_draft_never_published_is_found_by_its_working_copy(make_article, agent, now):
    draft = make_article(title="Quota warning", body="Raise the quota in the admin console.")
    services.update(draft, body_markdown="Ask sales for a larger plan.", actor=agent, now=now)

    assert _slugs(selectors.search_articles("sales")) == [draft.slug]
    assert _slugs(selectors.search_articles("console")) == []


def test_suggestions_for_a_case_use_the_published_text(edited, organisation, contact, agent, now):
    from cases import services as case_services

    case = case_services.create_case(
        title="Spooler stuck on every workstation",
        description="Print jobs queue forever.",
        organisation=organisation,
        requester=contact,
        actor=agent,
        now=now,
    )
    assert [a.slug for a in selectors.suggest_for_case(case)] == [edited.slug]

    other = case_services.create_case(
        title="Driver package download portal broken",
        description="Vendor portal gives 404.",
        organisation=organisation,
        requester=contact,
        actor=agent,
        now=now,
    )
    assert selectors.suggest_for_case(other) == []


def test_api_search_shows_the_published_snippet(edited, agent):
    client = APIClient()
    client.force_login(agent)

    response = client.get("/api/knowledge/articles/", {"q": "spooler"})

    assert response.status_code == 200
    [row] = response.json()["results"]
    assert "<mark>spooler</mark>" in row["snippet_html"]
    assert client.get("/api/knowledge/articles/", {"q": "reinstall"}).json()["results"] == []


def test_api_patch_of_an_article_with_a_read_only_field_is_400_naming_it(make_article, agent):
    article = make_article(title="Quota warning", body="Raise the quota.")
    client = APIClient()
    client.force_login(agent)

    response = client.patch(
        f"/api/knowledge/articles/{article.slug}/", {"status": "published", "title": "X"}, format="json"
    )

    assert response.status_code == 400
    assert list(response.json()) == ["status"]
    article.refresh_from_db()
    assert article.title == "Quota warning"
    assert article.status == "draft"
