from __future__ import annotations

from django.core.exceptions import ObjectDoesNotExist
from django.utils import timezone

from .instants import as_zone


class ViewerTimezoneMiddleware:
    """Show times in the viewer's time zone: the one chosen on the preferences page, else the
    browser's (cookie ``tz``, set by app.js), else settings.TIME_ZONE.

    Stateless and cache-free: one query of its own per signed-in request (the viewer's
    preferences row), none for anonymous ones.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        zone = _chosen_zone(getattr(request, "user", None)) or as_zone(request.COOKIES.get("tz"))
        if zone is not None:
            timezone.activate(zone)
        else:
            timezone.deactivate()
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()


def _chosen_zone(user):
    if user is None or not user.is_authenticated:
        return None
    try:
        profile = user.profile
    except ObjectDoesNotExist:
        return None
    return as_zone(profile.time_zone)


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
