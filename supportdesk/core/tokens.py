"""REST API tokens: hashed at rest (django-rest-knox on ``core.ApiToken``), named, expiring.

Clients send ``Authorization: Token <key>`` (or ``Bearer <key>``). Only a SHA-512 digest of a key
and its first characters (to find the row) are stored, so a key is shown once, when it is made:
on the tokens page (``/tokens/``) or by ``manage.py create_api_token``.

A person's tokens are revoked (deleted) when their password changes or they are deactivated
(``revoke_on_password_change_or_deactivation``, connected in ``CoreConfig.ready``). An expired
token is refused (and deleted) by knox.
"""

from __future__ import annotations

import datetime as dt
import re

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from knox import auth as knox_auth
from knox.crypto import hash_token
from knox.settings import CONSTANTS, knox_settings
from rest_framework import exceptions
from rest_framework.authentication import get_authorization_header

from .models import ApiToken

#: The expiry choices a person has on the tokens page (and the bounds of the command's --days).
EXPIRY_DAYS = (30, 90, 365)
MAX_DAYS = 365
#: ``last_used_at`` is written at most this often per token: not a write per request.
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)
#: The name the conversion gives the tokens made before keys were hashed.
CONVERTED_NAME = "Token from before hashing"

_SCHEMES = (b"token", b"bearer")
# A key is printable ASCII without spaces (knox's are hex, the old DRF ones too); anything else
# (a NUL byte, non-UTF-8 bytes, a megabyte) is refused before it reaches the database.
_KEY = re.compile(rb"[\x21-\x7e]{1,200}")


def issue_token(*, user, name: str, days: int | None = None) -> tuple[ApiToken, str]:
    """A new token of ``user`` and its key (the only time the key is known). ``days`` defaults
    to API_TOKEN_DAYS."""
    expiry = knox_settings.TOKEN_TTL if days is None else dt.timedelta(days=days)
    return ApiToken.objects.create(user=user, name=name.strip(), expiry=expiry)


def revoke_tokens(*, user, keep: ApiToken | None = None) -> int:
    """Delete every token of ``user`` (but ``keep``); how many there were."""
    tokens = ApiToken.objects.filter(user=user)
    if keep is not None:
        tokens = tokens.exclude(pk=keep.pk)
    count, _ = tokens.delete()
    return count


def record_use(token: ApiToken, *, now: dt.datetime) -> bool:
    """Set the token's ``last_used_at`` to ``now`` unless it was set within the last minute. One
    conditional UPDATE (concurrent requests write it once); whether this call wrote it."""
    stale = Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_RESOLUTION)
    written = ApiToken.objects.filter(stale, pk=token.pk).update(last_used_at=now)
    if written:
        token.last_used_at = now
    return bool(written)


class TokenAuthentication(knox_auth.TokenAuthentication):
    """knox's check (digest compared in constant time, expired tokens refused and deleted,
    inactive users refused) under either scheme; records when each token was last used."""

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() not in _SCHEMES:
            return None  # no token (or another scheme): the next class, or a 401 with our challenge
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed(
                _("Invalid token header: send “Token <key>” (or “Bearer <key>”), the key without spaces.")
            )
        if not _KEY.fullmatch(parts[1]):
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        user, token = self.authenticate_credentials(parts[1])
        record_use(token, now=timezone.now())
        return user, token


class TokenScheme(OpenApiAuthenticationExtension):
    """In the schema as DRF's token was (``tokenAuth``): clients generated from it keep working."""

    target_class = TokenAuthentication
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        return build_bearer_security_scheme_object(header_name="Authorization", token_prefix="Token")  # noqa: S106


# --- Revocation ----------------------------------------------------------------------------------


def revoke_on_password_change_or_deactivation(sender, instance, update_fields=None, **kwargs) -> None:
    """pre_save of the user model: notes whether this save changes the stored password or
    deactivates the person; ``_revoke_tokens_after_save`` then deletes their tokens.

    Not a change: Django re-hashing the same password at login after its hasher settings changed
    (``check_password`` saves only the new hash, with no new password set)."""
    instance._supportdesk_revoke_tokens = False
    if instance.pk is None or kwargs.get("raw"):
        return
    if update_fields is not None and not {"password", "is_active"} & set(update_fields):
        return  # e.g. last_login at each login: no query
    stored = sender._default_manager.filter(pk=instance.pk).values("password", "is_active").first()
    if stored is None:
        return
    deactivated = stored["is_active"] and not instance.is_active
    rehash = (
        update_fields is not None
        and set(update_fields) == {"password"}
        and getattr(instance, "_password", None) is None
    )
    password_changed = stored["password"] != instance.password and not rehash
    instance._supportdesk_revoke_tokens = deactivated or password_changed


def _revoke_tokens_after_save(sender, instance, created=False, **kwargs) -> None:
    if getattr(instance, "_supportdesk_revoke_tokens", False):
        instance._supportdesk_revoke_tokens = False
        revoke_tokens(user=instance)


def connect_signals() -> None:
    from django.db.models.signals import post_save, pre_save

    user_model = get_user_model()
    pre_save.connect(
        revoke_on_password_change_or_deactivation, sender=user_model, dispatch_uid="api-tokens-revoke-check"
    )
    post_save.connect(_revoke_tokens_after_save, sender=user_model, dispatch_uid="api-tokens-revoke")


# --- The conversion of the plaintext tokens (core migration 0006) -------------------------------


def hashed_from_plain(key: str) -> tuple[str, str]:
    """(token_key, digest) under which knox finds and checks the plaintext ``key``."""
    return key[: CONSTANTS.TOKEN_KEY_LENGTH], hash_token(key)


def convert_plaintext_tokens(*, plain_model, hashed_model, now: dt.datetime, ttl: dt.timedelta | None) -> int:
    """Store every plaintext token of ``plain_model`` (DRF's authtoken) as a hashed token of
    ``hashed_model`` with the same key (its clients keep working), expiring ``ttl`` from ``now``,
    then delete the plaintext rows. The models may be a migration's historical ones."""
    expiry = None if ttl is None else now + ttl
    converted = 0
    with transaction.atomic():
        for plain in plain_model.objects.order_by("created"):
            token_key, digest = hashed_from_plain(plain.key)
            if not hashed_model.objects.filter(digest=digest).exists():
                # Not ``objects.create``: knox's manager makes a new key.
                row = hashed_model(
                    digest=digest,
                    token_key=token_key,
                    user_id=plain.user_id,
                    expiry=expiry,
                    name=CONVERTED_NAME,
                )
                row.save(force_insert=True)
                # ``created`` is auto_now_add: keep when the key was really made.
                hashed_model.objects.filter(pk=row.pk).update(created=plain.created)
                converted += 1
        plain_model.objects.all().delete()
    return converted
