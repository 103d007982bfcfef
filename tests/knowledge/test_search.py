"""Search and suggestions through the selectors. These hold on SQLite and on PostgreSQL (the service
suite runs them there too); PostgreSQL-only behaviour (stemming, the GIN index) is in
tests/services/test_knowledge_search.py."""

from __future__ import annotations

import pytest

from cases import services as case_services
from knowledge import selectors, services
from knowledge.models import Kind

pytestmark = pytest.mark.django_db


def _slugs(qs) -> list[str]:
    return [a.slug for a in qs]


def test_a_title_match_ranks_above_a_body_only_match(make_article):
    body_only = make_article(
        title="Network checklist", body="If the firewall blocks webhooks, allow our range."
    )
    in_title = make_article(title="Firewall blocks webhooks", body="Allow our IP range in your rules.")
    assert _slugs(selectors.search_articles("firewall")) == [in_title.slug, body_only.slug]


def test_every_word_must_be_found_in_title_or_body(make_article):
    both = make_article(title="Invoice currency", body="The invoice shows EUR instead of USD.")
    make_article(title="Invoice layout", body="Change the logo on invoices.")
    assert _slugs(selectors.search_articles("invoice usd")) == [both.slug]
    assert _slugs(selectors.search_articles("kubernetes")) == []


def test_filters_by_kind_status_product_area_and_tag(make_article):
    runbook = make_article(
        title="Restart the sync worker",
        kind=Kind.RUNBOOK,
        status="published",
        product_area="sync",
        tags=("ops",),
    )
    article = make_article(title="How sync works", status="draft", product_area="sync", tags=("howto",))
    other = make_article(title="Billing sync", status="published", product_area="billing", tags=("ops",))
    assert _slugs(selectors.search_articles("sync", kind="runbook")) == [runbook.slug]
    assert set(_slugs(selectors.search_articles("sync", status="published"))) == {runbook.slug, other.slug}
    assert set(_slugs(selectors.search_articles("", product_area="Sync"))) == {runbook.slug, article.slug}
    assert set(_slugs(selectors.search_articles("", tag="ops"))) == {runbook.slug, other.slug}
    assert _slugs(selectors.search_articles("sync", tag="ops", product_area="billing")) == [other.slug]


def test_retired_articles_are_found_only_when_asked_for(make_article):
    retired = make_article(title="Legacy export", status="retired")
    current = make_article(title="Export to CSV", status="published")
    assert _slugs(selectors.search_articles("export")) == [current.slug]
    assert _slugs(selectors.search_articles("export", status="retired")) == [retired.slug]


def test_without_a_query_the_latest_updated_come_first(make_article, agent, now):
    import datetime as dt

    older = make_article(title="Older", at=now - dt.timedelta(days=2))
    newer = make_article(title="Newer", at=now - dt.timedelta(days=1))
    services.update(older, body_markdown="touched", actor=agent, now=now)
    assert _slugs(selectors.search_articles("")) == [older.slug, newer.slug]


def test_snippets_highlight_matches_and_escape_the_text(make_article):
    make_article(
        title="Webhook <b>signatures</b>",
        body="Before anything: <script>alert(1)</script> then verify the webhook signature header.",
    )
    [article] = selectors.search_articles("webhook")
    snippet = selectors.snippet_html(article, "webhook")
    assert "<mark>" in snippet.body
    assert "<mark>" in snippet.title
    assert "<script" not in snippet.body
    assert "<b>" not in snippet.title
    assert "&lt;b&gt;" in snippet.title


def test_search_handles_punctuation_and_operators_without_error(make_article):
    reset = make_article(title="Password reset", body="Send the user a reset link from the admin page.")
    make_article(title="Invoice currency", body="The invoice shows EUR instead of USD.")
    # Whatever people type returns a result (no error), and operators never widen it to everything.
    for q in ["password -reset", "password or reset", "()&|!:*", "'; drop table --", "é ü 日本"]:
        assert set(_slugs(selectors.search_articles(q))) <= {reset.slug}, q
    assert _slugs(selectors.search_articles('"password reset"')) == [reset.slug]
    assert _slugs(selectors.search_articles("()&|!:*")) == []  # no word, no match
    assert _slugs(selectors.search_articles("'; drop table --")) == []  # words, not SQL
    assert _slugs(selectors.search_articles("é ü 日本")) == []
    assert _slugs(selectors.search_articles("password")) == [reset.slug]  # the table is intact


# --- Suggestions on a case --------------------------------------------------------------------------


def test_suggestions_are_published_articles_matching_the_case(make_article, case_for_sso):
    runbook = make_article(
        title="SSO login fails after certificate rotation",
        body="Upload the new IdP certificate, then clear the metadata cache.",
        kind=Kind.RUNBOOK,
        status="published",
        product_area="identity",
    )
    make_article(title="SSO certificate draft", body="Not reviewed yet.", status="draft")
    make_article(title="Old SSO certificate steps", status="retired")
    make_article(
        title="Invoices show the wrong currency", body="Change the billing currency.", status="published"
    )
    assert selectors.suggest_for_case(case_for_sso) == [runbook]


def test_suggestions_rank_title_matches_first_and_lift_the_case_product_area(make_article, case_for_sso):
    body_only = make_article(
        title="Rotating keys", body="When the SSO certificate changes, re-import it.", status="published"
    )
    other_area = make_article(
        title="Certificate rotation for SSO", body="Re-import it.", status="published", product_area="billing"
    )
    same_area = make_article(
        title="Certificate rotation for SSO",
        body="Re-import it.",
        status="published",
        product_area="identity",
    )
    assert selectors.suggest_for_case(case_for_sso) == [same_area, other_area, body_only]


def test_suggestions_leave_out_articles_already_linked(make_article, case_for_sso, agent, now):
    runbook = make_article(title="SSO certificate rotation", kind=Kind.RUNBOOK, status="published")
    services.link_to_case(runbook, case_for_sso, actor=agent, now=now)
    assert selectors.suggest_for_case(case_for_sso) == []
    assert [link.article for link in selectors.case_links(case_for_sso)] == [runbook]


def test_a_case_with_only_common_words_gets_no_suggestions(make_article, organisation, contact, agent, now):
    make_article(title="Help with the issue", status="published")
    case = case_services.create_case(
        title="Help, please", description="It is not working for us", organisation=organisation,
        requester=contact, actor=agent, now=now,
    )  # fmt: skip
    assert selectors.suggest_for_case(case) == []


def test_suggestions_respect_the_limit(make_article, case_for_sso):
    for n in range(7):
        make_article(title=f"SSO certificate note {n}", status="published")
    assert len(selectors.suggest_for_case(case_for_sso, limit=3)) == 3
