"""Defects of the cases API found while trying the product (issue 15): a 201 the development server
turned into a 500, and a PATCH that quietly ignored what it could not change."""

from __future__ import annotations

import io
import json
from wsgiref.util import setup_testing_defaults
from wsgiref.validate import validator

import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from rest_framework.test import APIClient

from cases.models import Case, CaseEvent
from tests import factories

# --- POST /api/cases/ under a strict WSGI server -----------------------------------------------------


def _wsgi_post(path: str, payload: dict, *, token: str) -> tuple[str, list[tuple[str, str]], bytes]:
    """POST through Django's WSGI application wrapped in wsgiref's validator: the same checks the
    development server (wsgiref) makes, among them that every header value is exactly a ``str``."""
    body = json.dumps(payload).encode()
    environ: dict = {
        "REQUEST_METHOD": "POST",
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "HTTP_HOST": "testserver",
        "SERVER_NAME": "testserver",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "HTTP_AUTHORIZATION": f"Token {token}",
        "wsgi.input": io.BytesIO(body),
    }
    setup_testing_defaults(environ)
    seen: dict = {}

    def start_response(status, headers, exc_info=None):
        seen["status"], seen["headers"] = status, headers
        return lambda data: None

    # The test runs inside a transaction: the handler must not close the connection when the request
    # starts or finishes (on PostgreSQL without persistent connections it would, as the test client
    # also prevents).
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        result = validator(WSGIHandler())(environ, start_response)
        content = b"".join(result)
        result.close()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    return seen["status"], seen["headers"], content


def test_create_case_passes_the_wsgi_header_checks_of_the_development_server(agent, organisation, contact):
    token = factories.api_token_key(agent)
    status, headers, content = _wsgi_post(
        "/api/cases/",
        {"title": "Export hangs", "organisation": organisation.pk, "requester": contact.pk},
        token=token,
    )
    assert status.startswith("201")
    location = dict(headers)["Location"]
    assert type(location) is str
    key = json.loads(content)["key"]
    assert location.endswith(f"/api/cases/{key}/")
    assert Case.objects.count() == 1


def test_created_case_location_header_is_a_plain_string(agent, organisation, contact):
    client = APIClient()
    client.force_login(agent)
    response = client.post(
        "/api/cases/",
        {"title": "Export hangs", "organisation": organisation.pk, "requester": contact.pk},
        format="json",
    )
    assert response.status_code == 201
    assert type(response.headers["Location"]) is str
    assert all(type(value) is str for value in response.headers.values())


# --- PATCH with fields it cannot change -----------------------------------------------------------


@pytest.fixture
def api(agent) -> APIClient:
    client = APIClient()
    client.force_login(agent)
    return client


def _patch(api: APIClient, case: Case, payload: dict):
    return api.patch(f"/api/cases/{case.key}/", payload, format="json")


def test_patch_of_a_read_only_field_is_400_naming_it_and_changes_nothing(api, new_case):
    other = type(new_case.organisation).objects.create(name="Other Org", tier="standard")
    before = CaseEvent.objects.filter(case=new_case).count()

    response = _patch(api, new_case, {"organisation": other.pk, "title": "Renamed"})

    assert response.status_code == 400
    body = response.json()
    assert list(body) == ["organisation"]
    assert "cannot be changed" in body["organisation"][0]
    new_case.refresh_from_db()
    assert new_case.organisation_id != other.pk
    assert new_case.title == "Checkout fails with 502"
    assert CaseEvent.objects.filter(case=new_case).count() == before


def test_patch_of_an_unknown_field_is_400_naming_it(api, new_case):
    response = _patch(api, new_case, {"colour": "red"})

    assert response.status_code == 400
    assert "colour" in response.json()
    assert "not a field" in response.json()["colour"][0]


def test_patch_of_the_status_points_to_the_transition_endpoint(api, new_case):
    response = _patch(api, new_case, {"status": "resolved"})

    assert response.status_code == 400
    assert "transition" in response.json()["status"][0]
    new_case.refresh_from_db()
    assert new_case.status == "new"


def test_patch_with_only_changeable_fields_still_succeeds(api, new_case):
    response = _patch(api, new_case, {"title": "Renamed", "version": new_case.version})

    assert response.status_code == 200
    assert response.json()["title"] == "Renamed"


def test_create_with_an_unknown_field_is_400_and_creates_nothing(api, organisation, contact):
    response = api.post(
        "/api/cases/",
        {"title": "x", "organisation": organisation.pk, "requester": contact.pk, "status": "resolved"},
        format="json",
    )

    assert response.status_code == 400
    assert "status" in response.json()
    assert Case.objects.count() == 0


def test_patch_of_an_organisation_with_a_read_only_field_is_400(manager, organisation):
    client = APIClient()
    client.force_login(manager)

    response = client.patch(f"/api/organisations/{organisation.pk}/", {"id": 999}, format="json")

    assert response.status_code == 400
    assert "id" in response.json()
