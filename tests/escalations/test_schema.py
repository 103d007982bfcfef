"""The OpenAPI document describes every escalation endpoint and action with its errors."""

from __future__ import annotations

import pytest
import yaml
from django.core.management import call_command
from drf_spectacular.validation import validate_schema
from jsonschema import ValidationError
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

ACTION_PATHS = {
    "acknowledge": {"400", "401", "403", "404"},
    "request-info": {"400", "401", "403", "404"},
    "start": {"400", "401", "403", "404"},
    "resolve": {"400", "401", "403", "404"},
    "decline": {"400", "401", "403", "404"},
    "link": {"400", "401", "403", "404"},
    "submit": {"400", "401", "403", "404", "409"},
    "answer": {"400", "401", "403", "404"},
    "withdraw": {"400", "401", "403", "404"},
}


@pytest.fixture
def schema(agent) -> dict:
    client = APIClient()
    client.force_login(agent)
    response = client.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    return response.json()


def _resolve(schema: dict, node: dict) -> dict:
    ref = node.get("$ref")
    return schema["components"]["schemas"][ref.rsplit("/", 1)[1]] if ref else node


def _body(schema: dict, operation: dict, code: str) -> dict:
    return _resolve(schema, operation["responses"][code]["content"]["application/json"]["schema"])


def test_the_schema_is_valid_openapi(schema):
    assert schema["openapi"].startswith("3.")
    assert "/api/escalations/{id}/acknowledge/" in schema["paths"]
    validate_schema(schema)  # raises jsonschema.ValidationError on any violation of the OpenAPI 3 schema
    broken = {**schema, "paths": {**schema["paths"], "/api/escalations/": {"get": {"responses": "none"}}}}
    with pytest.raises(ValidationError, match="none"):  # the validation really reads the paths
        validate_schema(broken)


def test_every_escalation_endpoint_is_documented_with_only_its_methods(schema):
    paths = {
        p: set(ops) - {"parameters"}
        for p, ops in schema["paths"].items()
        if p.startswith("/api/escalations/")
    }
    expected = {
        "/api/escalations/": {"get", "post"},  # post: a draft
        "/api/escalations/{id}/": {"get"},
        "/api/escalations/{id}/attachments/": {"post"},
        "/api/escalations/{id}/attachments/{attachment_id}/": {"get"},
        **{f"/api/escalations/{{id}}/{name}/": {"post"} for name in ACTION_PATHS},
    }
    assert paths == expected


@pytest.mark.parametrize(("name", "codes"), ACTION_PATHS.items())
def test_every_action_documents_its_success_and_errors(schema, name, codes):
    operation = schema["paths"][f"/api/escalations/{{id}}/{name}/"]["post"]
    assert set(operation["responses"]) == {"200", "429", *codes}  # 429: every throttled operation
    assert {"state", "detail", "code"} <= set(_body(schema, operation, "400")["properties"])
    assert "allowed_actions" in _body(schema, operation, "200")["properties"]
    assert operation.get("summary")


@pytest.mark.parametrize(
    ("name", "fields"),
    [
        ("request-info", {"questions"}),
        ("resolve", {"resolution", "fix_version"}),
        ("decline", {"reason"}),
        ("link", {"external_key", "external_url"}),
        ("submit", {"override_reason"}),
        ("answer", {"answer"}),
    ],
)
def test_action_bodies_and_their_field_errors(schema, name, fields):
    operation = schema["paths"][f"/api/escalations/{{id}}/{name}/"]["post"]
    request = _resolve(schema, operation["requestBody"]["content"]["application/json"]["schema"])
    assert fields <= set(request["properties"])
    assert fields <= set(_body(schema, operation, "400")["properties"])


def test_the_list_documents_filters_ordering_and_keyset_pages(schema):
    operation = schema["paths"]["/api/escalations/"]["get"]
    names = {p["name"] for p in operation["parameters"]}
    assert {
        "state",
        "team",
        "component",
        "severity",
        "tier",
        "organisation",
        "submitted_after",
        "submitted_before",
        "has_external_key",
        "ordering",
        "cursor",
        "page_size",
    } <= names
    assert {"400", "401", "403"} <= set(operation["responses"])
    page = _body(schema, operation, "200")
    assert set(page["properties"]) == {"next", "previous", "results"}


def test_the_detail_documents_the_package_and_the_case_summary(schema):
    operation = schema["paths"]["/api/escalations/{id}/"]["get"]
    assert {"200", "401", "403", "404", "429"} == set(operation["responses"])
    detail = _body(schema, operation, "200")
    assert {"steps_to_reproduce", "case_summary", "attachments", "info_requests", "quality_missing"} <= set(
        detail["properties"]
    )


def test_spectacular_validates_without_warnings(tmp_path):
    target = tmp_path / "schema.yml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))
    document = yaml.safe_load(target.read_text())
    assert "/api/escalations/{id}/request-info/" in document["paths"]
