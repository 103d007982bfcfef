"""The knowledge pages through the Django test client, and the case page's knowledge box."""

from __future__ import annotations

import re

import pytest
from django.contrib.messages import get_messages
from django.template.loader import render_to_string
from django.test import RequestFactory
from django.urls import reverse

from cases.models import CaseEvent
from knowledge import services
from knowledge.models import Article, ArticleCaseLink, ArticleVote, Kind

pytestmark = pytest.mark.django_db


@pytest.fixture
def agent_client(client, agent):
    client.force_login(agent)
    return client


def _messages(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def _all_urls(slug: str, key: str) -> list[tuple[str, str]]:
    return [
        ("get", reverse("knowledge:index")),
        ("get", reverse("knowledge:create")),
        ("post", reverse("knowledge:create")),
        ("get", reverse("knowledge:detail", args=[slug])),
        ("get", reverse("knowledge:edit", args=[slug])),
        ("post", reverse("knowledge:edit", args=[slug])),
        ("get", reverse("knowledge:customer-text", args=[slug])),
        ("get", reverse("knowledge:revisions", args=[slug])),
        ("get", reverse("knowledge:revision", args=[slug, 1])),
        ("post", reverse("knowledge:restore", args=[slug, 1])),
        ("post", reverse("knowledge:submit", args=[slug])),
        ("post", reverse("knowledge:publish", args=[slug])),
        ("post", reverse("knowledge:retire", args=[slug])),
        ("post", reverse("knowledge:vote", args=[slug])),
        ("post", reverse("knowledge:link-case", args=[key])),
        ("post", reverse("knowledge:create-from-case", args=[key])),
    ]


def test_anonymous_visitors_are_sent_to_log_in(client, make_article, case_for_sso):
    article = make_article()
    for method, url in _all_urls(article.slug, case_for_sso.key):
        response = getattr(client, method)(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/login/"), url


def test_engineers_get_403_everywhere(client, engineer, make_article, case_for_sso):
    article = make_article()
    client.force_login(engineer)
    for method, url in _all_urls(article.slug, case_for_sso.key):
        assert getattr(client, method)(url).status_code == 403, url
    assert Article.objects.count() == 1
    assert not ArticleCaseLink.objects.exists()


# --- Search page ------------------------------------------------------------------------------------


def test_search_page_shows_ranked_results_with_highlighted_snippets(agent_client, make_article):
    make_article(title="Proxy settings", body="Set the proxy so the agent can reach our webhook endpoint.")
    make_article(title="Webhook retries", body="We retry failed deliveries <script>x</script> five times.")
    response = agent_client.get(reverse("knowledge:index"), {"q": "webhook"})
    html = response.content.decode()
    assert response.status_code == 200
    titles = re.findall(r'class="kb-result-title" href="[^"]+">(.*?)</a>', html)
    assert titles == ["<mark>Webhook</mark> retries", "Proxy settings"]
    assert "reach our <mark>webhook</mark> endpoint" in html
    assert "<script>x" not in html


def test_search_page_query_count_does_not_grow_with_results(
    agent_client, make_article, django_assert_max_num_queries
):
    for n in range(3):
        make_article(title=f"Webhook guide {n}", tags=("hooks", f"t{n}"))
    with django_assert_max_num_queries(12) as few:
        agent_client.get(reverse("knowledge:index"), {"q": "webhook"})
    for n in range(3, 20):
        make_article(title=f"Webhook guide {n}", tags=("hooks", f"t{n}"))
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = agent_client.get(reverse("knowledge:index"), {"q": "webhook"})
    assert response.content.decode().count('class="kb-result-title"') == 20


def test_search_page_survives_bad_filters(agent_client, make_article):
    make_article(title="Webhook retries")
    response = agent_client.get(reverse("knowledge:index"), {"q": "webhook", "kind": "faq", "page": "zz"})
    assert response.status_code == 200
    assert any("not understood" in m for m in _messages(response))
    assert "<mark>Webhook</mark> retries" in response.content.decode()


# --- Article page and actions -----------------------------------------------------------------------


def test_article_page_shows_text_status_review_date_votes_links_and_revisions(
    agent_client, make_article, case_for_sso, agent, other_agent, now
):
    article = make_article(
        title="Clear the SSO cache",
        body="# Steps\n\n<img src=x onerror=alert(1)>Run `sso flush`.",
        status="published",
    )
    services.vote(article, actor=agent, helpful=True, now=now)
    services.vote(article, actor=other_agent, helpful=False, now=now)
    services.link_to_case(article, case_for_sso, actor=agent, now=now)
    response = agent_client.get(reverse("knowledge:detail", args=[article.slug]))
    html = response.content.decode()
    assert response.status_code == 200
    assert "<h1>Steps</h1>" in html
    assert "<code>sso flush</code>" in html
    assert "onerror" not in html
    assert "Published" in html
    assert f'datetime="{article.review_due_at.isoformat()}"' in html
    assert "1 helpful" in html
    assert "1 not helpful" in html
    assert case_for_sso.key in html
    assert "Revision 1" in html


def test_buttons_follow_the_role(client, agent, manager, make_article):
    article = make_article(status="in_review")
    url = reverse("knowledge:detail", args=[article.slug])
    publish_action = reverse("knowledge:publish", args=[article.slug])
    client.force_login(agent)
    assert publish_action not in client.get(url).content.decode()
    client.force_login(manager)
    assert publish_action in client.get(url).content.decode()


def test_an_agent_cannot_publish_but_a_manager_can(client, agent, manager, make_article):
    article = make_article(status="in_review")
    client.force_login(agent)
    assert client.post(reverse("knowledge:publish", args=[article.slug])).status_code == 403
    article.refresh_from_db()
    assert article.status == "in_review"
    client.force_login(manager)
    response = client.post(reverse("knowledge:publish", args=[article.slug]))
    assert response.status_code == 302
    article.refresh_from_db()
    assert article.status == "published"


def test_a_refused_step_is_explained(agent_client, make_article):
    article = make_article(status="published")
    response = agent_client.post(reverse("knowledge:submit", args=[article.slug]), follow=True)
    assert any("Only a draft" in m for m in _messages(response))


def test_creating_and_editing_keeps_revisions(agent_client, agent):
    response = agent_client.post(
        reverse("knowledge:create"),
        {"kind": "runbook", "title": "Drain a node", "body_markdown": "kubectl drain", "owner": "alice",
         "tags": "ops, K8s", "review_interval_days": "90"},
    )  # fmt: skip
    article = Article.objects.get()
    assert response["Location"] == reverse("knowledge:detail", args=[article.slug])
    assert (article.kind, article.owner, article.review_interval_days) == ("runbook", agent, 90)
    assert sorted(article.tags.values_list("name", flat=True)) == ["k8s", "ops"]

    response = agent_client.post(
        reverse("knowledge:edit", args=[article.slug]),
        {"kind": "runbook", "title": "Drain a node", "body_markdown": "kubectl drain --ignore-daemonsets",
         "owner": "alice", "base_revision": "1", "note": "Daemonsets"},
    )  # fmt: skip
    assert response.status_code == 302
    article.refresh_from_db()
    assert article.current_revision == 2
    assert article.revisions.get(number=2).note == "Daemonsets"


def test_an_invalid_form_is_shown_again_with_errors(agent_client):
    response = agent_client.post(reverse("knowledge:create"), {"kind": "faq", "title": "", "tags": "a/b"})
    assert response.status_code == 400
    form = response.context["form"]
    assert set(form.errors) == {"kind", "title", "tags"}
    assert not Article.objects.exists()


def test_a_stale_edit_is_refused_and_what_was_typed_is_kept(agent_client, make_article, other_agent, now):
    article = make_article(body="v1")
    services.update(article, body_markdown="v2 by bob", actor=other_agent, now=now)
    response = agent_client.post(
        reverse("knowledge:edit", args=[article.slug]),
        {"kind": "article", "title": article.title, "body_markdown": "my v2", "base_revision": "1"},
    )
    assert response.status_code == 409
    assert "saved by someone else" in response.content.decode()
    assert "my v2" in response.content.decode()
    article.refresh_from_db()
    assert article.body_markdown == "v2 by bob"


def test_revision_page_shows_an_escaped_diff_and_restores(agent_client, make_article, agent, now):
    article = make_article(body="line one\n<script>old</script>")
    services.update(article, body_markdown="line one\nline two", actor=agent, now=now)
    response = agent_client.get(reverse("knowledge:revision", args=[article.slug, 2]))
    html = response.content.decode()
    assert '<span class="del">-&lt;script&gt;old&lt;/script&gt;</span>' in html
    assert '<span class="add">+line two</span>' in html
    assert "<script>old" not in html

    response = agent_client.post(reverse("knowledge:restore", args=[article.slug, 1]))
    assert response.status_code == 302
    article.refresh_from_db()
    assert (article.current_revision, article.body_markdown) == (3, "line one\n<script>old</script>")

    assert (
        agent_client.get(reverse("knowledge:revision", args=[article.slug, 1]), {"against": "x"}).status_code
        == 200
    )
    assert agent_client.get(reverse("knowledge:revision", args=[article.slug, 99])).status_code == 404


def test_voting_twice_counts_once(agent_client, make_article, agent):
    article = make_article(status="published")
    url = reverse("knowledge:vote", args=[article.slug])
    agent_client.post(url, {"helpful": "yes"})
    agent_client.post(url, {"helpful": "yes"})
    assert list(ArticleVote.objects.values_list("user", "helpful")) == [(agent.pk, True)]
    response = agent_client.post(url, {"helpful": "maybe"}, follow=True)
    assert any("Helpful" in m for m in _messages(response))


def test_customer_text_is_plain_text_of_published_customer_facing_articles(
    agent_client, make_article, agent, now
):
    article = make_article(body="Clear your browser cache.", status="published")
    services.update(article, body_markdown="Unpublished change", actor=agent, now=now)
    response = agent_client.get(reverse("knowledge:customer-text", args=[article.slug]))
    assert response["Content-Type"].startswith("text/plain")
    assert response.content.decode() == "Clear your browser cache."
    runbook = make_article(title="Internal runbook", kind=Kind.RUNBOOK, status="published")
    assert agent_client.get(reverse("knowledge:customer-text", args=[runbook.slug])).status_code == 404


# --- From the case page -----------------------------------------------------------------------------


def test_linking_from_the_case_page(agent_client, make_article, case_for_sso, agent):
    runbook = make_article(title="SSO certificate rotation", kind=Kind.RUNBOOK, status="published")
    response = agent_client.post(
        reverse("knowledge:link-case", args=[case_for_sso.key]), {"article": runbook.slug}
    )
    assert response["Location"] == case_for_sso.get_absolute_url()
    link = ArticleCaseLink.objects.get()
    assert (link.article, link.case, link.relation, link.created_by) == (
        runbook,
        case_for_sso,
        "used_to_resolve",
        agent,
    )
    assert CaseEvent.objects.filter(case=case_for_sso, kind="article_linked").count() == 1

    response = agent_client.post(
        reverse("knowledge:link-case", args=[case_for_sso.key]), {"article": "no-such"}, follow=True
    )
    assert any("choose an article" in m for m in _messages(response))
    assert (
        agent_client.post(
            reverse("knowledge:link-case", args=["CASE-999999"]), {"article": runbook.slug}
        ).status_code
        == 404
    )


def test_create_article_from_case_opens_the_editor(agent_client, case_for_sso):
    response = agent_client.post(
        reverse("knowledge:create-from-case", args=[case_for_sso.key]), {"kind": "runbook"}
    )
    article = Article.objects.get()
    assert response["Location"] == reverse("knowledge:edit", args=[article.slug])
    assert (article.kind, article.status, article.created_from_case) == ("runbook", "draft", case_for_sso)


def _render_box(case, user) -> str:
    request = RequestFactory().get(case.get_absolute_url())
    request.user = user
    return render_to_string("knowledge/_case_suggestions.html", {"case": case}, request=request)


def test_case_box_offers_link_and_insert_for_suggestions(make_article, case_for_sso, agent):
    article = make_article(
        title="SSO login fails after certificate rotation", body="Upload the **new** certificate & retry.",
        status="published",
    )  # fmt: skip
    runbook = make_article(title="SSO certificate runbook", kind=Kind.RUNBOOK, status="published")
    html = _render_box(case_for_sso, agent)
    assert f'action="{reverse("knowledge:link-case", args=[case_for_sso.key])}"' in html
    assert f'name="article" value="{article.slug}"' in html
    assert f'name="article" value="{runbook.slug}"' in html
    # Only customer-facing text can be inserted into a reply (as plain text); a runbook is internal.
    assert 'data-insert-text="Upload the new certificate &amp; retry."' in html
    assert html.count("data-insert-text=") == 1
    assert f'href="{reverse("knowledge:customer-text", args=[article.slug])}"' in html
    assert reverse("knowledge:create-from-case", args=[case_for_sso.key]) in html


def test_case_box_lists_linked_articles_with_few_queries(
    make_article, case_for_sso, agent, now, django_assert_max_num_queries
):
    for n in range(4):
        linked = make_article(title=f"SSO certificate fix {n}", status="published")
        services.link_to_case(linked, case_for_sso, actor=agent, now=now)
    for n in range(4):
        make_article(title=f"SSO certificate idea {n}", status="published")
    with django_assert_max_num_queries(3):
        html = _render_box(case_for_sso, agent)
    assert html.count('class="kb-suggestion"') == 4
    assert "used to resolve" in html


def test_case_box_for_a_case_with_nothing_to_suggest(case_for_sso, agent):
    html = _render_box(case_for_sso, agent)
    assert "No published article or runbook matches this case yet." in html


def test_search_page_counts_broad_searches_only_up_to_the_cap(agent_client, make_article, monkeypatch):
    from knowledge.pagination import CappedCountPaginator

    monkeypatch.setattr(CappedCountPaginator, "cap", 3)
    for n in range(5):
        make_article(title=f"Timeout guide {n}")
    html = agent_client.get(reverse("knowledge:index"), {"q": "timeout"}).content.decode()
    assert "More than 3 articles for “timeout”" in html
    html = agent_client.get(reverse("knowledge:index"), {"q": "guide 4"}).content.decode()
    assert "1 article for “guide 4”" in html
