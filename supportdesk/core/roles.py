"""The roles of DOMAIN.md, kept as Django groups (created by a migration).

Every permission decision in views and API endpoints goes through these helpers, so a role's
meaning is defined once.
"""

from __future__ import annotations

from enum import StrEnum

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser


class Role(StrEnum):
    AGENT = "agent"
    MANAGER = "manager"
    ENGINEER = "engineer"
    ADMIN = "admin"


ALL_ROLES = tuple(Role)


def roles_of(user: AbstractBaseUser | AnonymousUser | None) -> frozenset[Role]:
    """The roles a user holds. Superusers are admins; admins hold every staff role."""
    if user is None or not user.is_authenticated or not user.is_active:
        return frozenset()
    cached = getattr(user, "_supportdesk_roles", None)
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
    user._supportdesk_roles = result
    return result


def is_agent(user) -> bool:
    """Agents (and managers and admins) work cases."""
    return Role.AGENT in roles_of(user)


def is_manager(user) -> bool:
    return Role.MANAGER in roles_of(user)


def is_engineer(user) -> bool:
    return Role.ENGINEER in roles_of(user)


def is_admin(user) -> bool:
    return Role.ADMIN in roles_of(user)


def active_managers() -> list:
    """The active members of the managers' group: who is told when nobody else answers for
    something (an ownerless case's failed reply, an unowned article, a P1/P2 SLA event)."""
    from django.contrib.auth import get_user_model

    return list(get_user_model().objects.filter(is_active=True, groups__name=Role.MANAGER).distinct())
