"""Issue a REST API token: ``manage.py create_api_token erik --role engineer``.

Prints only the token on stdout (so a script can capture it); what was done goes to stderr.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from rest_framework.authtoken.models import Token

from supportdesk.core.roles import Role

TOKEN_ROLES = (Role.ENGINEER, Role.AGENT, Role.MANAGER)


class Command(BaseCommand):
    help = (
        "Print the REST API token of USERNAME, creating the token if needed. A missing user is created "
        "(without a password: API only) with --role (default engineer). --rotate replaces the token."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument(
            "--role",
            choices=[r.value for r in TOKEN_ROLES],
            help="Role group of a new user (default engineer); for an existing user, a role to add.",
        )
        parser.add_argument(
            "--rotate", action="store_true", help="Replace the existing token; the old one stops working."
        )

    def handle(self, *args, username: str, role: str | None, rotate: bool, **options):
        user_model = get_user_model()
        username = username.strip()
        with transaction.atomic():
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
            existing = Token.objects.filter(user=user).first()
            if existing is not None and rotate:
                existing.delete()
                existing = None
                self.stderr.write(f"Revoked the previous token of {username}.")
            if existing is None:
                token = Token.objects.create(user=user)
                self.stderr.write(f"Created a new token for {username}.")
            else:
                token = existing
        if not user.is_active:
            self.stderr.write(self.style.WARNING(f"{username} is inactive: the token will not authenticate."))
        self.stdout.write(token.key)
