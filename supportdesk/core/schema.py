"""The API schema's error responses, in one place.

``AutoSchema`` (``REST_FRAMEWORK["DEFAULT_SCHEMA_CLASS"]``) is drf-spectacular's, plus the error
responses every operation can give, so that no view has to copy them and a generated client knows
every status code it may see:

- 400 where there is input (a request body, query parameters or headers) and on every write (a
  delete can be refused with a reason): messages per field;
- 401 where authentication is required; 403 where a permission can refuse (a role check, an object
  permission, or the CSRF check of a signed-in browser session on a write);
- 404 where an object is looked up (a path parameter) or a page is asked for (``?page=`` past the
  last);
- 409 where a version is sent (``If-Match``) or the view says a state conflict can happen
  (``schema_conflict_actions``);
- 429 wherever a throttle applies, with ``Retry-After``.

A response the view documents itself (a more precise body or description) is kept as it is.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular import openapi
from drf_spectacular.plumbing import ResolvedComponent
from drf_spectacular.utils import extend_schema_field
from rest_framework import permissions, serializers
from rest_framework.authentication import SessionAuthentication
from rest_framework.pagination import PageNumberPagination

# What one field's messages look like: a list of messages, or, for a list or a nested object, an
# object keyed by item index or sub-field name holding the messages of each.
FIELD_ERRORS_SCHEMA: dict[str, Any] = {
    "oneOf": [
        {"type": "array", "items": {"type": "string"}},
        {"type": "object", "additionalProperties": {}},
    ],
    "description": "Messages for this field: a list, or per item (index) or per sub-field for a list "
    "or an object.",
}

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "An error about the request as a whole.",
    "properties": {
        "detail": {"type": "string", "description": "What went wrong."},
        "code": {"type": "string", "description": "A stable code for programs (e.g. `conflict`)."},
    },
    "required": ["detail"],
}

VALIDATION_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Invalid input: each field names its messages; `detail` (and `code`) or "
    "`non_field_errors` speak of the request as a whole.",
    "properties": {
        "detail": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
        "code": {"type": "string"},
        "non_field_errors": {"type": "array", "items": {"type": "string"}},
    },
    "additionalProperties": FIELD_ERRORS_SCHEMA,
}

DESCRIPTIONS = {
    "400": "Invalid input: messages per field, or `detail` for the request as a whole.",
    "401": "Not authenticated: send `Authorization: Token <key>` (or a session cookie).",
    "403": "Not allowed for your role or on this object (a browser session's write also needs its "
    "CSRF token).",
    "404": "No such object, or not one you may see (or a page past the last).",
    "409": "The object changed since the version you sent, or its state does not allow this now: "
    "reload and retry.",
    "429": "Too many requests: wait the seconds in `Retry-After`.",
}

OPEN_PERMISSIONS = (permissions.AllowAny,)
AUTHENTICATED_ONLY = (permissions.IsAuthenticated, permissions.AllowAny)
UNSAFE_METHODS = ("POST", "PUT", "PATCH", "DELETE")


@extend_schema_field(FIELD_ERRORS_SCHEMA)
class FieldErrorsField(serializers.JSONField):
    """One field of a documented 400 body (the apps' own error serializers): its messages, a list,
    or an object per item or sub-field for a list or nested field."""


class AutoSchema(openapi.AutoSchema):
    def get_operation(self, path, path_regex, path_prefix, method, registry):
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None:
            return None
        responses = operation.setdefault("responses", {})
        for code in self._error_codes(operation):
            if code not in responses:
                responses[code] = self._error_response(code)
        operation["responses"] = dict(sorted(responses.items()))
        return operation

    # --- which errors this operation can give ------------------------------------------------

    def _error_codes(self, operation: dict) -> list[str]:
        view = self.view
        parameters = operation.get("parameters", [])
        codes = []
        # Input is a body, a query or a header; a write without a body (a delete) can still be
        # refused with a reason (the default calendar cannot be deleted).
        has_input = bool(operation.get("requestBody")) or any(p["in"] != "path" for p in parameters)
        if has_input or self.method in UNSAFE_METHODS:
            codes.append("400")
        permission_classes = [type(p) for p in view.get_permissions()]
        needs_auth = not all(issubclass(p, OPEN_PERMISSIONS) for p in permission_classes)
        if needs_auth:
            codes.append("401")
            refusing = [p for p in permission_classes if not issubclass(p, AUTHENTICATED_ONLY)]
            session = any(isinstance(a, SessionAuthentication) for a in view.get_authenticators())
            if refusing or (session and self.method in UNSAFE_METHODS):
                codes.append("403")
        if any(p["in"] == "path" for p in parameters) or self._pages(parameters):
            codes.append("404")
        conflict_actions = getattr(view, "schema_conflict_actions", ())
        if any(p["in"] == "header" and p["name"].lower() == "if-match" for p in parameters) or (
            getattr(view, "action", None) in conflict_actions
        ):
            codes.append("409")
        if view.get_throttles():
            codes.append("429")
        return codes

    def _pages(self, parameters: list[dict]) -> bool:
        paginator = getattr(self.view, "pagination_class", None)
        if paginator is None or not issubclass(paginator, PageNumberPagination):
            return False
        return any(p["in"] == "query" and p["name"] == paginator.page_query_param for p in parameters)

    # --- the bodies ---------------------------------------------------------------------------

    def _component(self, name: str, schema: dict) -> dict:
        component = ResolvedComponent(name=name, type=ResolvedComponent.SCHEMA, object=name, schema=schema)
        self.registry.register_on_missing(component)
        return component.ref

    def _error_response(self, code: str) -> dict:
        if code == "400":
            schema = self._component("ApiValidationError", VALIDATION_ERROR_SCHEMA)
        else:
            schema = self._component("ApiError", ERROR_SCHEMA)
        response: dict[str, Any] = {
            "description": DESCRIPTIONS[code],
            "content": {"application/json": {"schema": schema}},
        }
        if code == "429":
            response["headers"] = {
                "Retry-After": {
                    "schema": {"type": "integer"},
                    "description": "Seconds to wait before the next request.",
                }
            }
        return response
