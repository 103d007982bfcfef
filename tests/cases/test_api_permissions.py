"""Who may call which cases endpoint, by session and by token; and the create_api_token command."""

from __future__ import annotations

import datetime as dt
import json
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone
from knox.crypto import hash_token
from rest_framework.test import APIClient

from cases import services
from cases.models import Case, Contact, Organisation
from supportdesk.core.models import ApiToken
from supportdesk.core.roles import Role, roles_of
from tests import factories


@pytest.fixture
def world(organisation, contact, team, new_case):
    return {"case": new_case, "organisation": organisation, "contact": contact}


# (method, path template, payload, status for an agent, status for a manager or admin)
ENDPOINTS = [
    ("GET", "/api/cases/", None, 200, 200),
    ("POST", "/api/cases/", "new_case", 201, 201),
    ("GET", "/api/cases/{key}/", None, 200, 200),
    ("PATCH", "/api/cases/{key}/", {"title": "Renamed"}, 200, 200),
    ("PUT", "/api/cases/{key}/", {"title": "Renamed"}, 405, 405),
    ("DELETE", "/api/cases/{key}/", None, 405, 405),
    ("GET", "/api/cases/{key}/events/", None, 200, 200),
    ("POST", "/api/cases/{key}/replies/", {"body": "We are on it."}, 201, 201),
    ("POST", "/api/cases/{key}/notes/", {"body": "Looks like DNS."}, 201, 201),
    ("POST", "/api/cases/{key}/transition/", {"to": "resolved"}, 200, 200),
    ("GET", "/api/organisations/", None, 200, 200),
    ("GET", "/api/organisations/{org}/", None, 200, 200),
    ("POST", "/api/organisations/", {"name": "Umbrella", "tier": "business"}, 403, 201),
    ("PATCH", "/api/organisations/{org}/", {"tier": "standard"}, 403, 200),
    ("DELETE", "/api/organisations/{org}/", None, 403, 405),
    ("GET", "/api/contacts/", None, 200, 200),
    ("GET", "/api/contacts/{contact}/", None, 200, 200),
    ("POST", "/api/contacts/", "new_contact", 201, 201),
    ("PATCH", "/api/contacts/{contact}/", {"name": "Carla C."}, 200, 200),
    ("DELETE", "/api/contacts/{contact}/", None, 405, 405),
    ("GET", "/api/teams/", None, 200, 200),
    ("POST", "/api/teams/", {"name": "New", "slug": "new"}, 405, 405),
    ("GET", "/api/staff/", None, 200, 200),
]
ENDPOINT_IDS = [f"{method} {path}" for method, path, *_ in ENDPOINTS]


def _request(client: APIClient, world: dict, method: str, path: str, payload):
    url = path.format(key=world["case"].key, org=world["organisation"].pk, contact=world["contact"].pk)
    if payload == "new_case":
        payload = {
            "title": "New one",
            "organisation": world["organisation"].pk,
            "requester": world["contact"].pk,
        }
    elif payload == "new_contact":
        payload = {"organisation": world["organisation"].pk, "name": "Dan", "email": "dan@acme.example"}
    body = json.dumps(payload) if payload is not None else ""
    return client.generic(method, url, data=body, content_type="application/json")


def _stored_counts() -> tuple:
    case = Case.objects.get()
    return (
        Case.objects.count(),
        case.title,
        case.status,
        case.events.count(),
        Organisation.objects.count(),
        list(Organisation.objects.values_list("tier", flat=True)),
        Contact.objects.count(),
        list(Contact.objects.values_list("name", flat=True)),
    )


ROLE_FACTORIES = {
    "agent": lambda: factories.AgentFactory(username="alice", first_name="Alice", last_name="Agent"),
    "manager": lambda: factories.ManagerFactory(username="maria"),
    "engineer": lambda: factories.EngineerFactory(username="erik"),
    "admin": lambda: factories.AdminFactory(username="root-admin"),
}


def _authenticated(role: str, auth: str) -> APIClient:
    user = ROLE_FACTORIES[role]()
    client = APIClient()
    if auth == "token":
        client.credentials(HTTP_AUTHORIZATION=f"Token {factories.api_token_key(user)}")
    else:
        client.force_login(user)
    return client


@pytest.mark.parametrize("auth", ["session", "token"])
@pytest.mark.parametrize("role", ["agent", "manager", "admin", "engineer"])
@pytest.mark.parametrize(("method", "path", "payload", "as_agent", "as_manager"), ENDPOINTS, ids=ENDPOINT_IDS)
def test_permission_matrix(world, role, auth, method, path, payload, as_agent, as_manager):
    client = _authenticated(role, auth)
    before = _stored_counts()

    response = _request(client, world, method, path, payload)

    expected = {"agent": as_agent, "manager": as_manager, "admin": as_manager, "engineer": 403}[role]
    assert response.status_code == expected, response.content[:300]
    if expected >= 400:
        assert _stored_counts() == before


@pytest.mark.parametrize(("method", "path", "payload", "as_agent", "as_manager"), ENDPOINTS, ids=ENDPOINT_IDS)
def test_anonymous_is_told_to_authenticate(world, method, path, payload, as_agent, as_manager):
    before = _stored_counts()

    response = _request(APIClient(), world, method, path, payload)

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert _stored_counts() == before


def test_engineer_token_cannot_list_cases(world):
    engineer = factories.EngineerFactory(username="erik")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {factories.api_token_key(engineer)}")

    response = client.get("/api/cases/")

    assert response.status_code == 403
    assert "support staff" in response.json()["detail"]
    assert world["case"].key not in response.content.decode()


def test_wrong_token_is_401(world):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    assert client.get("/api/cases/").status_code == 401


def test_token_of_deactivated_agent_stops_working(world):
    agent = factories.AgentFactory(username="alice")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {factories.api_token_key(agent)}")
    assert client.get("/api/cases/").status_code == 200

    agent.is_active = False
    agent.save()

    assert client.get("/api/cases/").status_code == 401


def test_session_writes_need_csrf(world):
    agent = factories.AgentFactory(username="alice")
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(agent)

    response = client.patch(f"/api/cases/{world['case'].key}/", {"title": "Forged"}, format="json")

    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
    world["case"].refresh_from_db()
    assert world["case"].title == "Checkout fails with 502"


def test_token_writes_need_no_csrf(world):
    agent = factories.AgentFactory(username="alice")
    client = APIClient(enforce_csrf_checks=True)
    client.credentials(HTTP_AUTHORIZATION=f"Token {factories.api_token_key(agent)}")
    response = client.patch(f"/api/cases/{world['case'].key}/", {"title": "By token"}, format="json")
    assert response.status_code == 200


def test_agent_reassigning_someone_elses_case_is_refused_cleanly(world, other_agent, manager, now):
    case = world["case"]
    services.update_case(case, assignee=other_agent, actor=manager, now=now)
    client = _authenticated("agent", "token")

    response = client.post(
        f"/api/cases/{case.key}/transition/",
        {"to": "triaged", "severity": "P2", "assignee": "alice"},
        format="json",
    )

    assert response.status_code == 400
    assert response.json()["assignee"] == ["Only a manager can reassign a case that belongs to someone else."]
    case.refresh_from_db()
    assert case.status == "new"
    assert case.assignee == other_agent


# --- create_api_token -------------------------------------------------------------------------------


def _run(*args) -> str:
    out, err = StringIO(), StringIO()
    call_command("create_api_token", *args, stdout=out, stderr=err)
    return out.getvalue().strip()


def test_create_api_token_creates_user_with_role_and_prints_token(db):
    key = _run("erika", "--role", "engineer")

    user = get_user_model().objects.get(username="erika")
    [token] = ApiToken.objects.filter(user=user)
    assert token.digest == hash_token(key) != key  # only the hash is stored
    assert token.name == "command line"
    assert roles_of(user) == frozenset({Role.ENGINEER})
    assert not user.has_usable_password()


def test_create_api_token_defaults_new_users_to_engineer(db):
    _run("svc-ci")
    assert roles_of(get_user_model().objects.get(username="svc-ci")) == frozenset({Role.ENGINEER})


def test_create_api_token_adds_a_named_token_each_run_and_rotate_revokes_the_others(db):
    first = _run("erika", "--role", "engineer")
    second = _run("erika", "--name", "CI deploy", "--days", "30")

    assert second != first  # a hashed token cannot be printed again: a second one is made
    assert sorted(ApiToken.objects.values_list("name", flat=True)) == ["CI deploy", "command line"]
    ci = ApiToken.objects.get(name="CI deploy")
    assert abs(ci.expiry - (timezone.now() + dt.timedelta(days=30))) < dt.timedelta(minutes=1)

    rotated = _run("erika", "--rotate")

    assert list(ApiToken.objects.values_list("digest", flat=True)) == [hash_token(rotated)]


def test_create_api_token_expires_after_api_token_days_by_default(db):
    _run("erika")
    token = ApiToken.objects.get()
    assert abs(token.expiry - (timezone.now() + dt.timedelta(days=90))) < dt.timedelta(minutes=1)


@pytest.mark.parametrize("args", [("--days", "0"), ("--days", "366"), ("--name", " "), ("--name", "x" * 101)])
def test_create_api_token_refuses_bad_expiry_and_name(db, args):
    with pytest.raises(CommandError):
        _run("erika", *args)
    assert not ApiToken.objects.exists()


def test_create_api_token_adds_role_to_existing_user(db):
    user = factories.UserFactory(username="pat")
    key = _run("pat", "--role", "agent")
    assert ApiToken.objects.get(user=user).digest == hash_token(key)
    assert roles_of(get_user_model().objects.get(pk=user.pk)) == frozenset({Role.AGENT})


def test_create_api_token_refuses_unknown_role_and_bad_username(db):
    with pytest.raises(CommandError):
        _run("pat", "--role", "admin")
    with pytest.raises(CommandError, match="not a valid username"):
        _run("no spaces allowed")
    assert not get_user_model().objects.exists()


def test_tokens_from_the_command_work_by_role(world):
    engineer = APIClient()
    engineer.credentials(HTTP_AUTHORIZATION=f"Token {_run('erika', '--role', 'engineer')}")
    agent = APIClient()
    agent.credentials(HTTP_AUTHORIZATION=f"Token {_run('andy', '--role', 'agent')}")
    manager = APIClient()
    manager.credentials(HTTP_AUTHORIZATION=f"Token {_run('mia', '--role', 'manager')}")

    assert engineer.get("/api/cases/").status_code == 403
    assert agent.get("/api/cases/").status_code == 200
    assert agent.post("/api/organisations/", {"name": "Umbrella"}, format="json").status_code == 403
    assert manager.post("/api/organisations/", {"name": "Umbrella"}, format="json").status_code == 201


def test_rotated_token_stops_the_old_one(world):
    old = _run("andy", "--role", "agent")
    new = _run("andy", "--rotate")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {old}")
    assert client.get("/api/cases/").status_code == 401
    client.credentials(HTTP_AUTHORIZATION=f"Token {new}")
    assert client.get("/api/cases/").status_code == 200
