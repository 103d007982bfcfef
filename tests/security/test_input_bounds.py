"""Malformed and oversized input is a 400 naming the problem, never a 500."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from cases.models import Case
from supportdesk.core.parsers import MAX_JSON_DEPTH, depth

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(agent) -> APIClient:
    client = APIClient()
    client.force_login(agent)
    return client


def nested(levels: int) -> str:
    return "[" * levels + "]" * levels


@pytest.mark.parametrize("levels", [MAX_JSON_DEPTH + 1, 50_000])
@pytest.mark.parametrize("url", ["/api/cases/", "/api/sla/preview", "/api/knowledge/articles/"])
def test_a_deeply_nested_json_body_is_a_400(api, url, levels):
    response = api.post(url, data=nested(levels), content_type="application/json")
    assert response.status_code == 400
    assert "nested more than 32 levels" in response.json()["detail"]


def test_a_reasonably_nested_body_still_reaches_validation(api, organisation, contact, team):
    payload = (
        '{"title": "Export fails", "description": "x", "severity": "P3", '
        f'"organisation": {organisation.pk}, "requester": {contact.pk}, "team": "{team.slug}", '
        '"tags": [["deep"]]}'
    )
    response = api.post("/api/cases/", data=payload, content_type="application/json")
    # The nesting is allowed; the nested tag list is refused by the field, not by the parser.
    assert response.status_code == 400
    assert "tags" in response.json()
    assert not Case.objects.exists()


def test_depth_counts_levels_without_recursion():
    assert depth(1) == 0
    assert depth({"a": [1, {"b": []}]}) == 4
    deep: list = []
    for _ in range(9_999):
        deep = [deep]
    assert depth(deep) == 10_000
