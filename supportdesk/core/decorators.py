"""Role checks for browser views, defined once."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import AnonymousUser, User
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest


class AuthenticatedHttpRequest(HttpRequest):
    """The request a view behind ``login_required`` or ``role_required`` receives: its user is
    signed in. A type for annotations only (Django builds a plain ``HttpRequest``)."""

    user: User


def role_required(allowed: Callable[[User | AnonymousUser], bool], message: str):
    """A view decorator: anonymous -> login page; a user for whom ``allowed`` is false -> 403."""

    def decorator(view):
        @wraps(view)
        @login_required
        def wrapper(request, *args, **kwargs):
            if not allowed(request.user):
                raise PermissionDenied(message)
            return view(request, *args, **kwargs)

        return wrapper

    return decorator
