"""The knowledge REST API as a client sees it: search, filters, writes with revisions, workflow by role,
votes, a case's links, errors as 400 with field messages, and the OpenAPI document."""

from __future__ import annotations

import json

import pytest
import yaml
from django.core.management import call_command
from rest_framework.test import APIClient

from cases.models import CaseEvent
from knowledge import services
from knowledge.models import Article, ArticleCaseLink, ArticleVote, Kind

pytestmark = pytest.mark.django_db

ARTICLES = "/api/knowledge/articles/"


def _client(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


@pytest.fixture
def api(agent) -> APIClient:
    return _client(agent)


@pytest.fixture
def manager_api(manager) -> APIClient:
    return _client(manager)


def send(client: APIClient, method: str, url: str, payload=None):
    body = payload if isinstance(payload, str | bytes) else json.dumps(payload)
    return client.generic(method, url, data=body, content_type="application/json")


def slugs(response) -> list[str]:
    return [row["slug"] for row in response.json()["results"]]


# --- Who may call it ----------------------------------------------------------------------------------


def test_engineers_get_403_and_anonymous_callers_401(engineer, make_article, case_for_sso):
    article = make_article()
    urls = [
        ("get", ARTICLES),
        ("post", ARTICLES),
        ("get", f"{ARTICLES}{article.slug}/"),
        ("patch", f"{ARTICLES}{article.slug}/"),
        ("post", f"{ARTICLES}{article.slug}/publish/"),
        ("get", f"{ARTICLES}{article.slug}/revisions/"),
        ("get", f"/api/cases/{case_for_sso.key}/articles/"),
        ("post", f"/api/cases/{case_for_sso.key}/articles/"),
        ("post", f"/api/cases/{case_for_sso.key}/articles/draft/"),
    ]
    for method, url in urls:
        assert send(_client(engineer), method, url, {}).status_code == 403, url
        assert send(APIClient(), method, url, {}).status_code == 401, url
    assert Article.objects.count() == 1


def test_agents_draft_but_only_managers_publish(api, manager_api):
    response = send(api, "post", ARTICLES, {"title": "Reset MFA", "body_markdown": "Open **Security**."})
    assert response.status_code == 201, response.json()
    slug = response.json()["slug"]
    assert response.json()["status"] == "draft"
    assert response.json()["body_html"] == "<p>Open <strong>Security</strong>.</p>\n"

    assert send(api, "post", f"{ARTICLES}{slug}/submit/").json()["status"] == "in_review"
    refused = send(api, "post", f"{ARTICLES}{slug}/publish/")
    assert refused.status_code == 403
    assert "manager" in refused.json()["detail"]

    published = send(manager_api, "post", f"{ARTICLES}{slug}/publish/")
    assert published.status_code == 200
    body = published.json()
    assert (body["status"], body["published_revision"], body["published_body_markdown"]) == (
        "published",
        1,
        "Open **Security**.",
    )
    assert body["review_due_at"] is not None
    assert send(api, "post", f"{ARTICLES}{slug}/retire/").status_code == 403
    assert send(manager_api, "post", f"{ARTICLES}{slug}/retire/").json()["status"] == "retired"


# --- Reading and searching ------------------------------------------------------------------------------


def test_search_ranks_title_matches_first_with_highlights(api, make_article):
    body_only = make_article(title="Network checklist", body="Check that the firewall allows webhooks.")
    in_title = make_article(title="Firewall blocks webhooks", body="Allow our range.")
    response = api.get(ARTICLES, {"q": "firewall"})
    assert response.status_code == 200
    assert slugs(response) == [in_title.slug, body_only.slug]
    first, second = response.json()["results"]
    assert first["title_html"] == "<mark>Firewall</mark> blocks webhooks"
    assert "<mark>firewall</mark>" in second["snippet_html"]
    assert first["rank"] > second["rank"]


def test_list_filters(api, make_article):
    runbook = make_article(
        title="Restart sync", kind=Kind.RUNBOOK, status="published", product_area="sync", tags=("ops",)
    )
    make_article(title="Sync explained", status="draft", product_area="sync")
    make_article(title="Retired sync", status="retired", product_area="sync", tags=("ops",))
    assert slugs(api.get(ARTICLES, {"kind": "runbook"})) == [runbook.slug]
    assert slugs(api.get(ARTICLES, {"status": "published"})) == [runbook.slug]
    assert slugs(api.get(ARTICLES, {"tag": "ops"})) == [runbook.slug]
    assert len(slugs(api.get(ARTICLES, {"product_area": "sync"}))) == 2
    assert len(slugs(api.get(ARTICLES, {"product_area": "sync", "status": "retired"}))) == 1


def test_bad_query_parameters_are_400_with_field_messages(api):
    response = api.get(ARTICLES, {"kind": "faq", "status": "gone"})
    assert response.status_code == 400
    assert set(response.json()) == {"kind", "status"}
    assert api.get(ARTICLES, {"page": "99"}).status_code == 404


def test_list_query_count_is_constant(api, make_article, django_assert_max_num_queries):
    for n in range(3):
        make_article(title=f"Guide {n}", tags=("a", f"t{n}"), status="published")
    with django_assert_max_num_queries(10) as few:
        api.get(ARTICLES, {"q": "guide"})
    for n in range(3, 20):
        make_article(title=f"Guide {n}", tags=("a", f"t{n}"), status="published")
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = api.get(ARTICLES, {"q": "guide"})
    assert len(response.json()["results"]) == 20


def test_retrieve_renders_sanitised_html_and_vote_counts(api, make_article, agent, now):
    article = make_article(body="[x](javascript:alert(1)) <img src=x onerror=alert(1)>", status="published")
    services.vote(article, actor=agent, helpful=True, now=now)
    body = api.get(f"{ARTICLES}{article.slug}/").json()
    assert "onerror" not in body["body_html"]
    assert 'href="javascript' not in body["body_html"]
    assert body["votes"] == {"helpful": 1, "not_helpful": 0, "revision_helpful": 1, "revision_not_helpful": 0}
    assert api.get(f"{ARTICLES}no-such-article/").status_code == 404


# --- Writing ------------------------------------------------------------------------------------------


def test_create_validation_is_400_with_field_messages(api):
    response = send(
        api,
        "post",
        ARTICLES,
        {
            "title": 12,
            "kind": "faq",
            "tags": ["ok", "not/ok"],
            "owner": "nobody",
            "slug": "Bad Slug",
            "review_interval_days": 0,
        },
    )
    assert response.status_code == 400
    assert {"title", "kind", "tags", "owner", "slug", "review_interval_days"} <= set(response.json())
    for payload in ("not json", "[]", b"\xff\xfe"):
        assert send(api, "post", ARTICLES, payload).status_code == 400
    assert not Article.objects.exists()


def test_duplicate_slug_is_a_400_on_slug(api, make_article):
    make_article(title="Reset MFA")
    response = send(api, "post", ARTICLES, {"title": "Other", "slug": "reset-mfa"})
    assert response.status_code == 400
    assert "slug" in response.json()


def test_patch_makes_a_revision_and_refuses_stale_writes(api, make_article):
    article = make_article(body="v1")
    url = f"{ARTICLES}{article.slug}/"
    response = send(api, "patch", url, {"body_markdown": "v2", "note": "fix", "revision": 1})
    assert response.status_code == 200
    assert response.json()["current_revision"] == 2
    stale = send(api, "patch", url, {"body_markdown": "v3", "revision": 1})
    assert stale.status_code == 409
    assert send(api, "patch", url, {"title": ""}).status_code == 400
    assert send(api, "patch", url, {"revision": "2"}).status_code == 400

    revisions = api.get(f"{url}revisions/").json()["results"]
    assert [(r["number"], r["note"], r["author"]) for r in revisions] == [
        (2, "fix", "alice"),
        (1, "Created", "alice"),
    ]
    detail = api.get(f"{url}revisions/2/").json()
    assert detail["body_markdown"] == "v2"
    assert "-v1" in detail["diff"]
    assert "+v2" in detail["diff"]
    assert api.get(f"{url}revisions/7/").status_code == 404


def test_restore_by_api(api, make_article, agent, now):
    article = make_article(body="first")
    services.update(article, body_markdown="second", actor=agent, now=now)
    url = f"{ARTICLES}{article.slug}/restore/"
    response = send(api, "post", url, {"revision": 1})
    assert (response.json()["current_revision"], response.json()["body_markdown"]) == (3, "first")
    assert send(api, "post", url, {"revision": 42}).status_code == 400
    assert send(api, "post", url, {"revision": "one"}).status_code == 400


def test_votes_once_per_person(api, make_article, agent):
    article = make_article(status="published")
    url = f"{ARTICLES}{article.slug}/vote/"
    assert send(api, "post", url, {"helpful": True}).status_code == 200
    response = send(api, "post", url, {"helpful": False})
    assert response.json()["votes"]["not_helpful"] == 1
    assert response.json()["votes"]["helpful"] == 0
    assert ArticleVote.objects.filter(user=agent).count() == 1
    assert send(api, "post", url, {"helpful": "yes"}).status_code == 400
    draft = make_article(title="A draft")
    assert send(api, "post", f"{ARTICLES}{draft.slug}/vote/", {"helpful": True}).status_code == 400


# --- A case's articles ----------------------------------------------------------------------------------


def test_link_and_list_a_cases_articles(api, make_article, case_for_sso):
    runbook = make_article(title="SSO runbook", kind=Kind.RUNBOOK, status="published")
    url = f"/api/cases/{case_for_sso.key}/articles/"
    created = send(api, "post", url, {"article": runbook.slug})
    assert created.status_code == 201
    assert (created.json()["relation"], created.json()["case"]) == ("used_to_resolve", case_for_sso.key)
    assert send(api, "post", url, {"article": runbook.slug}).status_code == 200  # again: nothing new
    assert CaseEvent.objects.filter(case=case_for_sso, kind="article_linked").count() == 1

    listed = api.get(url).json()
    assert [(row["article"]["slug"], row["relation"]) for row in listed] == [
        (runbook.slug, "used_to_resolve")
    ]

    assert send(api, "post", url, {"article": "nope"}).status_code == 400
    assert send(api, "post", url, {"article": runbook.slug, "relation": "created_from"}).status_code == 400
    assert send(api, "post", "/api/cases/CASE-999999/articles/", {"article": runbook.slug}).status_code == 404
    assert api.get("/api/cases/garbage/articles/").status_code == 404


def test_draft_an_article_from_a_case(api, case_for_sso):
    response = send(api, "post", f"/api/cases/{case_for_sso.key}/articles/draft/", {"kind": "runbook"})
    assert response.status_code == 201
    body = response.json()
    assert (body["status"], body["kind"], body["created_from_case"]) == ("draft", "runbook", case_for_sso.key)
    link = ArticleCaseLink.objects.get()
    assert link.relation == "created_from"
    assert (
        send(api, "post", f"/api/cases/{case_for_sso.key}/articles/draft/", {"kind": "x"}).status_code == 400
    )


# --- The OpenAPI document -----------------------------------------------------------------------------


def test_schema_documents_the_knowledge_endpoints_without_warnings(tmp_path):
    target = tmp_path / "schema.yml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))
    paths = yaml.safe_load(target.read_text())["paths"]
    expected = {
        "/api/knowledge/articles/": {"get", "post"},
        "/api/knowledge/articles/{slug}/": {"get", "patch"},
        "/api/knowledge/articles/{slug}/publish/": {"post"},
        "/api/knowledge/articles/{slug}/vote/": {"post"},
        "/api/knowledge/articles/{slug}/revisions/": {"get"},
        "/api/knowledge/articles/{slug}/revisions/{number}/": {"get"},
        "/api/cases/{key}/articles/": {"get", "post"},
        "/api/cases/{key}/articles/draft/": {"post"},
    }
    for path, methods in expected.items():
        assert path in paths, path
        assert set(paths[path]) & {"get", "post", "patch", "put", "delete"} == methods, path
        for method in methods:
            assert {"401", "403"} <= set(paths[path][method]["responses"]), (method, path)


def test_the_count_of_a_broad_search_is_capped(api, make_article, monkeypatch):
    from knowledge.pagination import CappedCountPaginator

    monkeypatch.setattr(CappedCountPaginator, "cap", 3)
    for n in range(5):
        make_article(title=f"Timeout guide {n}")
    body = api.get(ARTICLES, {"q": "timeout", "page_size": 2}).json()
    assert (body["count"], body["count_capped"], len(body["results"])) == (3, True, 2)
    body = api.get(ARTICLES, {"q": "guide 4"}).json()
    assert (body["count"], body["count_capped"]) == (1, False)
