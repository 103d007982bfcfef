"""Knowledge responses match the API schema (bugs schemathesis found in CI, .ci/fuzz_api.py)."""

from __future__ import annotations

import json

import pytest
from rest_framework.test import APIClient

from tests.schema_check import assert_matches_schema

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(agent) -> APIClient:
    client = APIClient()
    client.force_authenticate(agent)
    return client


def test_linked_articles_without_a_search_rank_match_the_schema(api, make_article, case_for_sso):
    runbook = make_article(title="SSO runbook", status="published")
    url = f"/api/cases/{case_for_sso.key}/articles/"
    api.post(url, data=json.dumps({"article": runbook.slug}), content_type="application/json")
    response = api.get(url)
    assert response.status_code == 200
    ranks = [row["article"]["rank"] for row in response.json()]
    assert None in ranks  # no search here: the rank is null, which the schema must allow
    assert_matches_schema(response, "/api/cases/{key}/articles/", "get")


def test_bad_tags_are_a_400_whose_per_item_messages_match_the_schema(api):
    payload = {
        "kind": "article",
        "title": "Reset SSO",
        "body_markdown": "Steps.",
        "tags": ["ok", "", "x" * 51],
    }
    response = api.post("/api/knowledge/articles/", data=json.dumps(payload), content_type="application/json")
    assert response.status_code == 400
    # Per item: {"1": [...], "2": [...]}, not a flat list of strings as the schema said.
    assert set(response.json()["tags"]) == {"1", "2"}
    assert_matches_schema(response, "/api/knowledge/articles/", "post")
