from __future__ import annotations

from collections.abc import Mapping

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from .errors import DomainError
from .roles import is_agent, is_manager, roles_of


def exception_handler(exc, context):
    """DRF's handler, plus our domain errors (400/409) and model validation errors (400)."""
    if isinstance(exc, DomainError):
        body = {"detail": exc.message, "code": exc.code}
        if exc.field:
            body[exc.field] = [exc.message]
        return Response(body, status=exc.status_code)
    if isinstance(exc, DjangoValidationError):
        if hasattr(exc, "message_dict"):
            return Response(exc.message_dict, status=status.HTTP_400_BAD_REQUEST)
        return Response({"detail": exc.messages}, status=status.HTTP_400_BAD_REQUEST)
    return drf_exception_handler(exc, context)


class IsSupportStaff(BasePermission):
    """Agents, managers and admins; engineers and customers are refused."""

    message = "Only support staff (agents and managers) can use this endpoint."

    def has_permission(self, request, view) -> bool:
        return is_agent(request.user)


class HasRole(BasePermission):
    """Anyone holding a role (agent, manager, engineer, admin): the people of this install."""

    message = "Only SupportDesk staff (agents, managers, engineers) can use this endpoint."

    def has_permission(self, request, view) -> bool:
        return bool(roles_of(request.user))


class IsManager(BasePermission):
    message = "Only managers can use this endpoint."

    def has_permission(self, request, view) -> bool:
        return is_manager(request.user)


class ManagerCanWrite(BasePermission):
    """Reads for whoever else the view allows; creating and changing needs a manager."""

    message = "Only managers can create or change this."

    def has_permission(self, request, view) -> bool:
        return request.method in SAFE_METHODS or is_manager(request.user)


class RejectUnexpectedFields:
    """A serializer mixin: a write that names a field it cannot change is a 400 naming that field,
    never a 200 that quietly ignores it (DRF drops unknown and read-only keys).

    ``represented_fields`` lists the names the output shows (say ``CaseSerializer``'s), so that
    sending one of them is "cannot be changed here", not "not a field"; ``field_hints`` gives a
    better message per name (where to change it instead).
    """

    represented_fields: tuple[str, ...] | list[str] = ()
    field_hints: dict[str, str] = {}

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            writable = {name for name, field in self.fields.items() if not field.read_only}
            shown = set(self.represented_fields) | set(self.fields)
            errors: dict[str, list[str]] = {}
            for name in data:
                if name in writable:
                    continue
                if name in self.field_hints:
                    errors[name] = [self.field_hints[name]]
                elif name in shown:
                    errors[name] = [f"“{name}” cannot be changed here."]
                else:
                    accepted = ", ".join(sorted(writable))
                    errors[str(name)] = [f"“{name}” is not a field of this request; send only {accepted}."]
            if errors:
                raise ValidationError(errors)
        return super().to_internal_value(data)
