"""Knowledge search on real PostgreSQL: the stored weighted tsvector, its GIN index, English stemming,
web-search syntax, ranking (title above body) and highlighted snippets."""

from __future__ import annotations

import pytest
from django.db import connection

from cases import services as case_services
from knowledge import selectors, services
from knowledge.models import Article, Kind

pytestmark = [pytest.mark.services, pytest.mark.django_db]


@pytest.fixture
def write(agent, manager, now):
    def make(title: str, body: str = "", *, publish: bool = False, **kwargs) -> Article:
        article = services.create_draft(title=title, body_markdown=body, actor=agent, now=now, **kwargs)
        if publish:
            article = services.publish(article, actor=manager, now=now)
        return article

    return make


def _slugs(qs) -> list[str]:
    return [a.slug for a in qs]


def test_runs_on_postgresql():
    assert connection.vendor == "postgresql"


def test_a_title_match_ranks_above_a_body_only_match(write):
    body_only = write("Network checklist", "When the firewall blocks outgoing webhooks, allow our range.")
    in_title = write("Firewall blocks webhooks", "Allow our IP range in your rules.")
    results = list(selectors.search_articles("firewall"))
    assert _slugs(results) == [in_title.slug, body_only.slug]
    assert results[0].search_rank > results[1].search_rank


def test_english_stemming_finds_other_forms_of_a_word(write):
    article = write("Certificate rotation", "Rotate the signing certificates every year.")
    assert _slugs(selectors.search_articles("rotating certificates")) == [article.slug]
    assert _slugs(selectors.search_articles("rotated")) == [article.slug]


def test_web_search_syntax_phrases_or_and_exclusion(write):
    reset = write("Password reset", "Send the reset link again.")
    expired = write("Expired password", "Ask an admin to reset it; the link has expired.")
    assert _slugs(selectors.search_articles('"password reset"')) == [reset.slug]
    assert _slugs(selectors.search_articles("password -expired")) == [reset.slug]
    assert set(_slugs(selectors.search_articles("reset or expired"))) == {reset.slug, expired.slug}


def test_the_stored_vector_follows_every_change_of_content(write, agent, now):
    article = write("Printer offline", "Restart the spooler.")
    assert _slugs(selectors.search_articles("spooler")) == [article.slug]
    services.update(article, body_markdown="Reinstall the driver.", actor=agent, now=now)
    assert _slugs(selectors.search_articles("spooler")) == []
    assert _slugs(selectors.search_articles("driver")) == [article.slug]
    services.restore_revision(article, 1, actor=agent, now=now)
    assert _slugs(selectors.search_articles("spooler")) == [article.slug]


def test_snippets_are_highlighted_by_postgresql_and_escaped(write):
    write(
        "Webhook <b>signatures</b>",
        "First <script>alert(1)</script> then verify the webhook signature header.",
    )
    [article] = selectors.search_articles("webhook signature")
    snippet = selectors.snippet_html(article, "webhook signature")
    assert "<mark>webhook</mark>" in snippet.body
    assert "<mark>signature</mark>" in snippet.body
    assert "<script" not in snippet.body
    assert "<b>" not in snippet.title
    assert "<mark>Webhook</mark>" in snippet.title


def test_search_uses_the_gin_index(write):
    write("Indexed article", "Some text about quotas.")
    # A knowledge base of some size, its statistics current and its index as a real one would be:
    # the rolled-back writes of the tests before leave the GIN index bloated (no vacuum runs
    # between tests), and its estimated cost then lost to scanning another index.
    for i in range(300):
        write(f"Filler article {i}", "Printer drivers and spoolers.")
    with connection.cursor() as cursor:
        cursor.execute("REINDEX INDEX kb_article_search_gin")
        cursor.execute("ANALYZE knowledge_article")
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'kb_article_search_gin'")
        [(definition,)] = cursor.fetchall()
        assert "USING gin (search_vector)" in definition
        cursor.execute("SET LOCAL enable_seqscan = off")
        sql, params = selectors.search_articles("quotas").query.sql_with_params()
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "kb_article_search_gin" in plan, plan


def test_suggestions_for_a_case_on_postgresql(write, organisation, contact, agent, now):
    case = case_services.create_case(
        title="Users cannot log in with SSO after certificate rotation",
        description="Every SSO login fails with an invalid signature error.",
        organisation=organisation,
        requester=contact,
        product_area="identity",
        actor=agent,
        now=now,
    )
    runbook = write(
        "SSO login fails after certificate rotation",
        "Upload the new IdP certificate.",
        kind=Kind.RUNBOOK,
        product_area="identity",
        publish=True,
    )
    body_only = write(
        "Rotating keys", "If SSO breaks after a certificate change, re-import it.", publish=True
    )
    write("SSO certificate draft", "Unreviewed.")  # drafts are never suggested
    write("Invoices show the wrong currency", "Change the billing currency.", publish=True)
    assert selectors.suggest_for_case(case) == [runbook, body_only]
