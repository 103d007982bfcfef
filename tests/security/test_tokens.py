"""API tokens: hashed at rest, several named ones per person, expiring, last use recorded, revoked
with a password change or deactivation, made and revoked on /tokens/ and in the admin; the old
plaintext tokens converted (issue 16, finding 8)."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.contrib.auth.hashers import PBKDF2PasswordHasher, make_password
from django.utils import timezone
from knox.crypto import hash_token
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from supportdesk.core import tokens
from supportdesk.core.models import ApiToken
from tests import factories

pytestmark = pytest.mark.django_db

START = dt.datetime(2026, 12, 3, 9, 0, tzinfo=dt.UTC)


def api(key: str | None = None, *, scheme: str = "Token") -> APIClient:
    client = APIClient()
    if key is not None:
        client.credentials(HTTP_AUTHORIZATION=f"{scheme} {key}")
    return client


def works(key: str, *, scheme: str = "Token") -> bool:
    status = api(key, scheme=scheme).get("/api/cases/").status_code
    assert status in (200, 401), status
    return status == 200


# --- Storage and authentication ---------------------------------------------------------------


def test_only_a_hash_of_the_key_is_stored(agent):
    token, key = ApiToken.objects.create(user=agent, name="laptop")

    stored = ApiToken.objects.filter(pk=token.pk).values().get()
    assert key not in [str(value) for value in stored.values()]
    assert stored["digest"] == hash_token(key)
    assert stored["token_key"] == key[:15]  # the lookup prefix, not enough to authenticate
    assert works(key)
    assert not works(key[:15])


def test_a_person_has_several_named_tokens_that_work_alone(agent):
    _ci, ci_key = tokens.issue_token(user=agent, name="CI", days=30)
    laptop, laptop_key = tokens.issue_token(user=agent, name="Laptop", days=90)

    assert sorted(agent.auth_token_set.values_list("name", flat=True)) == ["CI", "Laptop"]
    assert works(ci_key)
    assert works(laptop_key)

    laptop.delete()

    assert works(ci_key)
    assert not works(laptop_key)


def test_bearer_is_accepted_as_well_as_token(agent):
    key = factories.api_token_key(agent)
    assert works(key, scheme="Bearer")
    assert works(key, scheme="bearer")
    assert works(key, scheme="Token")
    assert not works(key + "0", scheme="Bearer")


def test_an_anonymous_call_is_asked_for_a_token():
    response = api().get("/api/cases/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


@pytest.mark.parametrize(
    "header",
    ["Token", "Bearer ", "Token a b", "Token caf\u00e9", "Token abc\x00def", "Token " + "a" * 5000],
)
def test_a_malformed_token_header_is_401_not_500(agent, header):
    factories.api_token_key(agent)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    assert client.get("/api/cases/").status_code == 401


def test_an_expired_token_is_refused(agent):
    with time_machine.travel(START, tick=False) as clock:
        token, key = tokens.issue_token(user=agent, name="CI", days=30)
        assert token.expiry == START + dt.timedelta(days=30)

        clock.move_to(START + dt.timedelta(days=30) - dt.timedelta(minutes=1))
        assert works(key)

        clock.move_to(START + dt.timedelta(days=30, minutes=1))
        assert not works(key)
        assert not ApiToken.objects.filter(pk=token.pk).exists()


def test_using_a_token_does_not_extend_it(agent):
    with time_machine.travel(START, tick=False) as clock:
        token, key = tokens.issue_token(user=agent, name="CI", days=30)
        clock.move_to(START + dt.timedelta(days=29))
        assert works(key)
        token.refresh_from_db()
        assert token.expiry == START + dt.timedelta(days=30)


def test_the_default_lifetime_is_api_token_days(agent):
    with time_machine.travel(START, tick=False):
        token, _key = ApiToken.objects.create(user=agent, name="CI")
    assert token.expiry == START + dt.timedelta(days=90)


def test_last_use_is_recorded_at_most_once_a_minute(agent):
    with time_machine.travel(START, tick=False) as clock:
        token, key = tokens.issue_token(user=agent, name="CI")
        assert token.last_used_at is None

        assert works(key)
        token.refresh_from_db()
        assert token.last_used_at == START

        clock.move_to(START + dt.timedelta(seconds=59))
        assert works(key)
        token.refresh_from_db()
        assert token.last_used_at == START  # not rewritten within the minute

        clock.move_to(START + dt.timedelta(seconds=61))
        assert works(key)
        token.refresh_from_db()
        assert token.last_used_at == START + dt.timedelta(seconds=61)


def test_recording_use_is_one_conditional_update(agent, django_assert_num_queries):
    token, _key = tokens.issue_token(user=agent, name="CI")
    now = timezone.now()
    with django_assert_num_queries(1):
        assert tokens.record_use(token, now=now) is True
    with django_assert_num_queries(1):
        assert tokens.record_use(token, now=now + dt.timedelta(seconds=30)) is False
    token.refresh_from_db()
    assert token.last_used_at == now


# --- Revocation ---------------------------------------------------------------------------------


def test_a_password_change_revokes_every_token(agent, other_agent):
    keys = [factories.api_token_key(agent, name=name) for name in ("CI", "Laptop")]
    others = factories.api_token_key(other_agent)

    agent.set_password("a-new-password-1")
    agent.save()

    assert not agent.auth_token_set.exists()
    assert not any(works(key) for key in keys)
    assert works(others)


def test_setting_an_unusable_password_revokes_the_tokens(agent):
    key = factories.api_token_key(agent)
    agent.set_unusable_password()
    agent.save()
    assert not works(key)


def test_deactivation_revokes_every_token_for_good(agent):
    key = factories.api_token_key(agent)

    agent.is_active = False
    agent.save(update_fields=["is_active"])
    agent.is_active = True
    agent.save()

    assert not agent.auth_token_set.exists()
    assert not works(key)


def test_other_saves_keep_the_tokens(agent):
    key = factories.api_token_key(agent)

    agent.first_name = "Alicia"
    agent.save()
    agent.last_login = timezone.now()
    agent.save(update_fields=["last_login"])

    assert works(key)


class QuickPBKDF2(PBKDF2PasswordHasher):
    iterations = 1000


def test_django_rehashing_the_same_password_at_login_keeps_the_tokens(agent, settings):
    agent.password = make_password("same-password-1", hasher="md5")
    agent.save()
    key = factories.api_token_key(agent)
    settings.PASSWORD_HASHERS = [
        "tests.security.test_tokens.QuickPBKDF2",
        "django.contrib.auth.hashers.MD5PasswordHasher",
    ]

    assert agent.check_password("same-password-1")  # upgrades the stored hash

    agent.refresh_from_db()
    assert agent.password.startswith("pbkdf2_sha256$")
    assert works(key)


# --- The tokens page ----------------------------------------------------------------------------


def test_the_page_lists_only_my_tokens(client, agent, other_agent):
    tokens.issue_token(user=agent, name="Deploy script")
    tokens.issue_token(user=other_agent, name="Bob's notebook")
    client.force_login(agent)

    page = client.get("/tokens/").content.decode()

    assert "Deploy script" in page
    assert "notebook" not in page
    assert '<time datetime="' in page  # created and expires, through the `when` filter


def test_making_a_token_on_the_page_shows_the_key_once(client, engineer):
    client.force_login(engineer)

    response = client.post("/tokens/", {"name": "Triage bot", "days": "30"})

    assert response.status_code == 200
    [token] = ApiToken.objects.filter(user=engineer)
    key = response.context["new_key"]
    assert token.digest == hash_token(key)
    assert token.name == "Triage bot"
    assert abs(token.expiry - (timezone.now() + dt.timedelta(days=30))) < dt.timedelta(minutes=1)
    assert key in response.content.decode()
    assert "shown only this once" in response.content.decode()
    assert "no-store" in response["Cache-Control"]
    assert key not in client.get("/tokens/").content.decode()
    assert api(key).get("/api/escalations/").status_code == 200  # the engineer's own access


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"name": "", "days": "30"}, "name"),
        ({"name": "x" * 101, "days": "30"}, "name"),
        ({"name": "CI", "days": "3650"}, "days"),
    ],
)
def test_bad_input_on_the_page_is_a_form_error(client, agent, data, field):
    client.force_login(agent)

    response = client.post("/tokens/", data)

    assert response.status_code == 400
    assert response.context["form"].errors[field]
    assert not ApiToken.objects.exists()


def test_revoking_my_token_on_the_page(client, agent):
    token, key = tokens.issue_token(user=agent, name="Old laptop")
    client.force_login(agent)

    response = client.post(f"/tokens/{token.pk}/revoke/", follow=True)

    assert "Revoked the token “Old laptop”" in response.content.decode()
    assert not ApiToken.objects.filter(pk=token.pk).exists()
    assert not works(key)


def test_revoking_another_persons_token_is_404(client, agent, other_agent):
    token, key = tokens.issue_token(user=other_agent, name="Bob's")
    client.force_login(agent)

    assert client.post(f"/tokens/{token.pk}/revoke/").status_code == 404
    assert client.get(f"/tokens/{token.pk}/revoke/").status_code == 405
    assert works(key)


def test_the_page_needs_a_login_and_a_role(client):
    assert client.get("/tokens/").status_code == 302
    client.force_login(factories.UserFactory(username="no-role"))
    assert client.get("/tokens/").status_code == 403
    assert client.post("/tokens/", {"name": "x", "days": "30"}).status_code == 403
    assert not ApiToken.objects.exists()


def test_the_nav_links_the_page_for_people_with_a_role(client, agent):
    client.force_login(agent)
    assert 'href="/tokens/"' in client.get("/notifications/").content.decode()


# --- The admin ----------------------------------------------------------------------------------


def test_the_admin_lists_tokens_without_key_or_digest(client, admin_user, agent):
    token, key = tokens.issue_token(user=agent, name="Deploy script")
    client.force_login(admin_user)

    listing = client.get("/admin/core/apitoken/").content.decode()
    detail = client.get(f"/admin/core/apitoken/{token.pk}/change/").content.decode()

    assert "Deploy script" in listing
    assert token.token_key in listing
    for page in (listing, detail):
        assert key not in page
        assert token.digest not in page
    assert client.get("/admin/core/apitoken/add/").status_code == 403


def test_an_admin_revokes_a_token_by_deleting_it(client, admin_user, agent):
    token, key = tokens.issue_token(user=agent, name="Deploy script")
    client.force_login(admin_user)

    client.post(f"/admin/core/apitoken/{token.pk}/delete/", {"post": "yes"})

    assert not works(key)


def test_the_old_plaintext_tokens_are_not_in_the_admin(client, admin_user):
    client.force_login(admin_user)
    assert client.get("/admin/authtoken/tokenproxy/").status_code == 404
    assert "/admin/authtoken/" not in client.get("/admin/").content.decode()


# --- Conversion of the plaintext tokens (migration core 0006) ----------------------------------


def test_the_conversion_hashes_plaintext_tokens_that_keep_working(agent, other_agent):
    old = Token.objects.create(user=agent)
    Token.objects.create(user=other_agent)
    now = timezone.now()

    converted = tokens.convert_plaintext_tokens(
        plain_model=Token, hashed_model=ApiToken, now=now, ttl=dt.timedelta(days=90)
    )

    assert converted == 2
    assert not Token.objects.exists()  # the plaintext rows are gone
    token = ApiToken.objects.get(user=agent)
    assert token.digest == hash_token(old.key) != old.key
    assert token.token_key == old.key[:15]
    assert token.name == "Token from before hashing"
    assert token.expiry == now + dt.timedelta(days=90)
    assert token.created == old.created
    assert works(old.key)


def test_the_conversion_run_again_converts_nothing(agent):
    Token.objects.create(user=agent)
    now = timezone.now()
    args = {"plain_model": Token, "hashed_model": ApiToken, "now": now, "ttl": dt.timedelta(days=90)}

    assert tokens.convert_plaintext_tokens(**args) == 1
    assert tokens.convert_plaintext_tokens(**args) == 0
    assert ApiToken.objects.count() == 1


def test_the_migration_step_converts_with_the_configured_lifetime(agent):
    from importlib import import_module

    from django.apps import apps

    old = Token.objects.create(user=agent)
    migration = import_module("supportdesk.core.migrations.0006_api_tokens")
    with time_machine.travel(START, tick=False):
        migration.convert_plaintext_tokens(apps, None)

    token = ApiToken.objects.get(user=agent)
    assert token.expiry == START + dt.timedelta(days=90)
    assert not Token.objects.exists()
    assert works(old.key)
