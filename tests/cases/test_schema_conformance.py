"""Cases responses match the API schema (bugs schemathesis found in CI, .ci/fuzz_api.py)."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from cases import macros
from cases.models import Macro
from tests.schema_check import assert_matches_schema

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(agent) -> APIClient:
    client = APIClient()
    client.force_authenticate(agent)
    return client


def test_a_shared_macro_without_a_team_matches_the_schema(api, manager, now):
    macros.save_macro(Macro(), actor=manager, now=now, shared=True, name="Thanks", body="Hello")
    response = api.get("/api/macros/")
    assert response.status_code == 200
    (macro,) = response.json()
    assert (macro["owner"], macro["set_team"]) == (None, None)  # the schema said: a string
    assert_matches_schema(response, "/api/macros/", "get")


def test_a_bad_version_in_a_bulk_change_is_a_400_that_matches_the_schema(api, new_case):
    payload = {"keys": [new_case.key], "action": "assign", "value": "me", "versions": {new_case.key: 0}}
    response = api.post("/api/cases/bulk/", payload, format="json")
    assert response.status_code == 400
    # Messages per key of the object, not a flat list.
    assert isinstance(response.json()["versions"], dict)
    assert_matches_schema(response, "/api/cases/bulk/", "post")
