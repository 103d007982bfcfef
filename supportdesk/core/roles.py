"""The roles of DOMAIN.md, kept as Django groups (created by a migration).

Every permission decision in views and API endpoints goes through these helpers, so a role's
meaning is defined once.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TypeGuard

from django.contrib.auth.models import AnonymousUser, User


class Role(StrEnum):
    AGENT = "agent"
    MANAGER = "manager"
    ENGINEER = "engineer"
    ADMIN = "admin"


ALL_ROLES = tuple(Role)


# A role check that holds narrows the user to a signed-in User (TypeGuard): only they hold roles.
# The roles are read once per user object (a request's user asks many times).
_CACHED_ROLES = "_supportdesk_roles"


def roles_of(user: User | AnonymousUser | None) -> frozenset[Role]:
    """The roles a user holds. Superusers are admins; admins hold every staff role."""
    if user is None or not user.is_authenticated or not user.is_active:
        return frozenset()
    cached: frozenset[Role] | None = getattr(user, _CACHED_ROLES, None)
    if cached is not None:
        return cached
    names = set(user.groups.values_list("name", flat=True))
    roles = {Role(name) for name in names if name in Role._value2member_map_}
    if user.is_superuser:
        roles.add(Role.ADMIN)
    if Role.ADMIN in roles:
        roles |= {Role.AGENT, Role.MANAGER}
    if Role.MANAGER in roles:
        roles.add(Role.AGENT)
    result = frozenset(roles)
    setattr(user, _CACHED_ROLES, result)
    return result


def is_agent(user: User | AnonymousUser | None) -> TypeGuard[User]:
    """Agents (and managers and admins) work cases."""
    return Role.AGENT in roles_of(user)


def is_manager(user: User | AnonymousUser | None) -> TypeGuard[User]:
    return Role.MANAGER in roles_of(user)


def is_engineer(user: User | AnonymousUser | None) -> TypeGuard[User]:
    return Role.ENGINEER in roles_of(user)


def is_admin(user: User | AnonymousUser | None) -> TypeGuard[User]:
    return Role.ADMIN in roles_of(user)


def active_managers() -> list[User]:
    """The active members of the managers' group: who is told when nobody else answers for
    something (an ownerless case's failed reply, an unowned article, a P1/P2 SLA event)."""
    from django.contrib.auth import get_user_model

    return list(get_user_model().objects.filter(is_active=True, groups__name=Role.MANAGER).distinct())
