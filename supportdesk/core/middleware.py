from __future__ import annotations

import zoneinfo

from django.utils import timezone


class ViewerTimezoneMiddleware:
    """Show times in the viewer's time zone: their profile's, else the browser's (cookie ``tz``)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        name = None
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            profile = getattr(user, "profile", None) if hasattr(user, "profile") else None
            if profile is not None and profile.time_zone != "UTC":
                name = profile.time_zone
        name = name or request.COOKIES.get("tz")
        try:
            timezone.activate(zoneinfo.ZoneInfo(name)) if name else timezone.deactivate()
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            timezone.deactivate()
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()


class HealthCheckMiddleware:
    """Answer ``/healthz``, ``/healthz/live`` and ``/healthz/ready`` before host validation and
    HTTPS redirects (GET and HEAD; other methods get 405), never cached.

    Load balancers and container health checks probe them by IP over plain HTTP, which
    ALLOWED_HOSTS and SECURE_SSL_REDIRECT would otherwise refuse.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        from .health import ENDPOINTS

        if view := ENDPOINTS.get(request.path):
            return view(request)
        return self.get_response(request)
