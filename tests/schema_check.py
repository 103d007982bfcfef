"""Check a test client's response against the API schema, as schemathesis does in CI
(``.ci/fuzz_api.py``): the status code is documented for the operation, and the JSON body matches
the schema documented for that code."""

from __future__ import annotations

import functools
import json
from typing import Any
from urllib.parse import urlsplit

import jsonschema
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer

# jsonschema's own checker skips "uri" without an extra package: an absolute URI has a scheme.
FORMATS = jsonschema.FormatChecker()


@FORMATS.checks("uri")
def _is_uri(value: object) -> bool:
    return not isinstance(value, str) or bool(urlsplit(value).scheme)


@functools.cache
def api_schema() -> dict[str, Any]:
    # JSON-shaped (string status codes, plain lists): what a client downloads.
    raw = SchemaGenerator().get_schema(request=None, public=True)
    return json.loads(OpenApiJsonRenderer().render(raw, renderer_context={}))


def _json_schema(node: Any) -> Any:
    """OpenAPI 3.0's ``nullable`` spelled as JSON Schema (which jsonschema understands)."""
    if isinstance(node, list):
        return [_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: _json_schema(value) for key, value in node.items() if key != "nullable"}
    if node.get("nullable"):
        return {"anyOf": [converted, {"type": "null"}]}
    return converted


def documented_response(path: str, method: str, status: int) -> dict[str, Any]:
    operation = api_schema()["paths"][path][method.lower()]
    responses = operation["responses"]
    assert str(status) in responses, f"{method} {path} answered {status}; documented: {sorted(responses)}"
    return responses[str(status)]


def assert_matches_schema(response, path: str, method: str) -> None:
    """``response`` (a test client's) is what the schema documents for ``method path``."""
    documented = documented_response(path, method, response.status_code)
    content = documented.get("content", {})
    if "application/json" not in content:
        return
    schema = {
        **_json_schema(content["application/json"]["schema"]),
        "components": _json_schema(api_schema()["components"]),
    }
    jsonschema.validate(response.json(), schema, format_checker=FORMATS)
