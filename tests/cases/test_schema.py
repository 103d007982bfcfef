"""The OpenAPI document describes every cases endpoint, its bodies and its error responses."""

from __future__ import annotations

import pytest
import yaml
from django.core.management import call_command
from drf_spectacular.validation import validate_schema
from rest_framework.test import APIClient

EXPECTED_OPERATIONS = {
    "/api/cases/": {"get", "post"},
    "/api/cases/{key}/": {"get", "patch"},
    "/api/cases/{key}/events/": {"get"},
    "/api/cases/{key}/replies/": {"post"},
    "/api/cases/{key}/notes/": {"post"},
    "/api/cases/{key}/attachments/{attachment_id}/": {"get"},
    "/api/cases/{key}/transition/": {"post"},
    "/api/organisations/": {"get", "post"},
    "/api/organisations/{id}/": {"get", "patch"},
    "/api/contacts/": {"get", "post"},
    "/api/contacts/{id}/": {"get", "patch"},
    "/api/teams/": {"get"},
    "/api/staff/": {"get"},
}
HTTP_METHODS = {"get", "post", "put", "patch", "delete", "head", "options", "trace"}


@pytest.fixture
def schema(agent) -> dict:
    client = APIClient()
    client.force_login(agent)
    response = client.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    return response.json()


def _resolve(schema: dict, ref_or_schema: dict) -> dict:
    ref = ref_or_schema.get("$ref")
    if ref is None:
        return ref_or_schema
    return schema["components"]["schemas"][ref.rsplit("/", 1)[1]]


def _json_body(schema: dict, operation: dict, code: str) -> dict:
    return _resolve(schema, operation["responses"][code]["content"]["application/json"]["schema"])


def test_schema_is_valid_openapi_3(schema):
    assert schema["openapi"].startswith("3.")
    validate_schema(schema)


def test_schema_has_every_cases_endpoint_and_only_the_offered_methods(schema):
    for path, methods in EXPECTED_OPERATIONS.items():
        assert path in schema["paths"], path
        assert set(schema["paths"][path]) & HTTP_METHODS == methods, path


def test_every_operation_documents_auth_errors(schema):
    for path, methods in EXPECTED_OPERATIONS.items():
        for method in methods:
            responses = schema["paths"][path][method]["responses"]
            assert {"401", "403"} <= set(responses), f"{method} {path}"


def test_every_write_documents_400_and_every_detail_404(schema):
    for path, methods in EXPECTED_OPERATIONS.items():
        for method in methods:
            responses = schema["paths"][path][method]["responses"]
            if method in {"post", "patch"}:
                assert "400" in responses, f"{method} {path}"
            if "{" in path:
                assert "404" in responses, f"{method} {path}"


@pytest.mark.parametrize(
    ("path", "method"), [("/api/cases/{key}/transition/", "post"), ("/api/cases/{key}/", "patch")]
)
def test_transition_and_patch_document_400_and_409(schema, path, method):
    operation = schema["paths"][path][method]
    assert {"200", "400", "409"} <= set(operation["responses"])
    conflict = _json_body(schema, operation, "409")
    assert {"detail", "code"} <= set(conflict["properties"])
    bad_request = _json_body(schema, operation, "400")
    assert "version" in bad_request["properties"]
    assert any(p["name"] == "If-Match" and p["in"] == "header" for p in operation["parameters"])


def test_transition_400_names_the_to_field(schema):
    operation = schema["paths"]["/api/cases/{key}/transition/"]["post"]
    assert "to" in _json_body(schema, operation, "400")["properties"]
    request = _resolve(schema, operation["requestBody"]["content"]["application/json"]["schema"])
    assert request["required"] == ["to"]


def test_case_create_request_and_response_bodies(schema):
    operation = schema["paths"]["/api/cases/"]["post"]
    request = _resolve(schema, operation["requestBody"]["content"]["application/json"]["schema"])
    assert set(request["required"]) == {"title", "organisation", "requester"}
    assert {"severity", "team", "assignee", "tags", "cc", "product_area", "description"} <= set(
        request["properties"]
    )
    case = _json_body(schema, operation, "201")
    assert {
        "key",
        "url",
        "web_url",
        "organisation",
        "requester",
        "assignee",
        "team",
        "tags",
        "version",
        "reopen_count",
        "allowed_transitions",
        "created_at",
    } <= set(case["properties"])


def test_lists_are_documented_as_keyset_pages(schema):
    for path in ["/api/cases/", "/api/cases/{key}/events/", "/api/contacts/", "/api/staff/"]:
        operation = schema["paths"][path]["get"]
        page = _json_body(schema, operation, "200")
        assert set(page["properties"]) == {"next", "previous", "results"}, path
        assert page["properties"]["results"]["type"] == "array"
        names = {p["name"] for p in operation["parameters"]}
        assert {"cursor", "page_size"} <= names, path


def test_case_list_documents_filters_and_orderings(schema):
    parameters = {p["name"]: p for p in schema["paths"]["/api/cases/"]["get"]["parameters"]}
    assert {
        "status",
        "severity",
        "organisation",
        "tier",
        "assignee",
        "team",
        "mine",
        "unassigned",
        "tag",
        "q",
    } <= set(parameters)
    assert set(parameters["ordering"]["schema"]["enum"]) == {
        "due",
        "severity",
        "oldest",
        "newest",
        "updated",
        "stale",
    }


@pytest.mark.parametrize("path", ["/api/cases/{key}/replies/", "/api/cases/{key}/notes/"])
def test_replies_and_notes_take_json_or_multipart_with_files(schema, path):
    operation = schema["paths"][path]["post"]
    content = operation["requestBody"]["content"]
    assert set(content) == {"application/json", "multipart/form-data"}
    json_body = _resolve(schema, content["application/json"]["schema"])
    assert set(json_body["properties"]) == {"body"}
    multipart = _resolve(schema, content["multipart/form-data"]["schema"])
    files = multipart["properties"]["attachments"]
    assert files["type"] == "array"
    assert files["maxItems"] == 10
    assert files["items"] == {"type": "string", "format": "binary"}
    assert "attachments" in _json_body(schema, operation, "400")["properties"]
    event = _json_body(schema, operation, "201")
    listed = _resolve(schema, event["properties"]["attachments"]["items"])
    assert {"id", "name", "content_type", "size", "uploaded_at", "download_url"} <= set(listed["properties"])


def test_the_download_is_documented_as_a_binary_file(schema):
    operation = schema["paths"]["/api/cases/{key}/attachments/{attachment_id}/"]["get"]
    # Any media type: the file is sent with its own verified type (image/png, application/pdf).
    assert operation["responses"]["200"]["content"]["*/*"]["schema"] == {
        "type": "string",
        "format": "binary",
    }
    assert {p["name"] for p in operation["parameters"]} == {"key", "attachment_id"}
    assert {"401", "403", "404"} <= set(operation["responses"])


def test_spectacular_command_validates_without_warnings(db, tmp_path):
    target = tmp_path / "schema.yml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))
    document = yaml.safe_load(target.read_text())
    assert "/api/cases/{key}/transition/" in document["paths"]
