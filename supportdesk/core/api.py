from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import status
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
