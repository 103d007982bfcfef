"""Issue a REST API token: ``manage.py create_api_token erik --role engineer``.

Prints only the token on stdout (so a script can capture it); what was done goes to stderr. Tokens
are stored hashed, so an existing one cannot be printed again: every run makes a new token
(``--rotate`` revokes the person's others first).
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from supportdesk.core import audit, tokens
from supportdesk.core.roles import Role

TOKEN_ROLES = (Role.ENGINEER, Role.AGENT, Role.MANAGER)


class Command(BaseCommand):
    help = (
        "Make a new REST API token for USERNAME and print its key (only now: tokens are stored hashed, "
        "so earlier tokens cannot be printed again; each run adds a token, --rotate revokes the others). "
        "A missing user is created (without a password: API only) with --role (default engineer)."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument(
            "--role",
            choices=[r.value for r in TOKEN_ROLES],
            help="Role group of a new user (default engineer); for an existing user, a role to add.",
        )
        parser.add_argument(
            "--rotate", action="store_true", help="Revoke the user's other tokens: they stop working."
        )
        parser.add_argument(
            "--name", default="command line", help="What the token is for (default “command line”)."
        )
        parser.add_argument(
            "--days",
            type=int,
            help=f"Days until the token expires (1 to {tokens.MAX_DAYS}; default API_TOKEN_DAYS).",
        )

    def handle(self, *args, username: str, role: str | None, rotate: bool, name: str, days, **options):
        user_model = get_user_model()
        username = username.strip()
        name = name.strip()
        if not name or len(name) > 100:
            raise CommandError("--name must be 1 to 100 characters.")
        if days is not None and not 1 <= days <= tokens.MAX_DAYS:
            raise CommandError(f"--days must be between 1 and {tokens.MAX_DAYS}.")
        with transaction.atomic(), audit.acting_as(None, reason="manage.py create_api_token"):
            user = user_model.objects.filter(username=username).first()
            if user is None:
                try:
                    user_model.username_validator(username)
                except ValidationError as exc:
                    raise CommandError(
                        f"“{username}” is not a valid username: {' '.join(exc.messages)}"
                    ) from exc
                user = user_model(username=username)
                user.set_unusable_password()
                user.save()
                role = role or Role.ENGINEER
                self.stderr.write(f"Created user {username} (no password: API access only).")
            if role:
                try:
                    group = Group.objects.get(name=role)
                except Group.DoesNotExist as exc:
                    raise CommandError(f"The role group “{role}” is missing; run migrate first.") from exc
                if not user.groups.filter(pk=group.pk).exists():
                    user.groups.add(group)
                    self.stderr.write(f"{username} now has the role {role}.")
            token, key = tokens.issue_token(user=user, name=name, days=days)
            if rotate:
                revoked = tokens.revoke_tokens(user=user, keep=token)
                self.stderr.write(f"Revoked {revoked} other token(s) of {username}.")
            self.stderr.write(
                f"Created the token “{token.name}” for {username}, expiring {token.expiry or 'never'}."
            )
        if not user.is_active:
            self.stderr.write(self.style.WARNING(f"{username} is inactive: the token will not authenticate."))
        self.stdout.write(key)
