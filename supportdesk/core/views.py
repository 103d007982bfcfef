from __future__ import annotations

import secrets

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from . import services
from .forms import PreferencesForm, zone_names
from .health import readiness
from .instants import as_zone
from .models import Notification, StaffProfile, WorkerPing
from .roles import is_agent, is_engineer, is_manager
from .tasks import ping


@login_required
def home(request):
    """Send each role where its work is."""
    for allowed, name in ((is_agent, "cases:queue"), (is_engineer, "escalations:board")):
        if allowed(request.user):
            try:
                return HttpResponseRedirect(reverse(name))
            except NoReverseMatch:
                continue
    return render(request, "core/home.html")


def _require_manager(request) -> None:
    if not is_manager(request.user):
        raise PermissionDenied("Managers and admins only.")


@login_required
def system_status(request):
    _require_manager(request)
    pings = WorkerPing.objects.order_by("-sent_at")[:5]
    return render(
        request,
        "core/status.html",
        {"checks": readiness(now=timezone.now()).rows(), "pings": pings},
    )


@login_required
@require_POST
def send_ping(request):
    """Send a task through the broker; the worker marks it executed (shown on the status page)."""
    _require_manager(request)
    nonce = secrets.token_hex(8)
    WorkerPing.objects.create(nonce=nonce, sent_at=timezone.now())
    # robust: with the broker down the page still answers (the ping simply stays "waiting").
    transaction.on_commit(lambda: ping.delay(nonce), robust=True)
    if request.headers.get("Accept", "").startswith("application/json"):
        return JsonResponse({"nonce": nonce, "url": reverse("core:ping-detail", args=[nonce])}, status=202)
    messages.info(request, "Test task sent; reload to see the worker pick it up.")
    return redirect("core:status")


@login_required
def ping_detail(request, nonce: str):
    _require_manager(request)
    ping_row = get_object_or_404(WorkerPing, nonce=nonce)
    return JsonResponse(
        {
            "nonce": ping_row.nonce,
            "sent_at": ping_row.sent_at.isoformat(),
            "executed_at": ping_row.executed_at.isoformat() if ping_row.executed_at else None,
            "worker": ping_row.worker,
        }
    )


@login_required
def notifications(request):
    items = Notification.objects.filter(recipient=request.user)[:100]
    return render(request, "core/notifications.html", {"items": items})


@login_required
@require_POST
def notifications_mark_read(request):
    Notification.objects.filter(recipient=request.user, read_at__isnull=True).update(read_at=timezone.now())
    return redirect("core:notifications")


@login_required
def preferences(request):
    """The viewer's own time zone and notification choices."""
    profile = StaffProfile.objects.filter(user=request.user).first()
    browser_zone = request.COOKIES.get("tz") if as_zone(request.COOKIES.get("tz")) else ""
    status = 200
    if request.method == "POST":
        form = PreferencesForm(request.POST)
        if form.is_valid():
            services.save_preferences(request.user, **form.cleaned_data)
            messages.success(request, "Preferences saved.")
            return redirect("core:preferences")
        status = 400
    elif profile is None:
        form = PreferencesForm(initial={"time_zone": "", "email_notifications": True, "sla_warnings": True})
    else:
        form = PreferencesForm(
            initial={
                "time_zone": profile.time_zone,
                "email_notifications": profile.email_notifications,
                "sla_warnings": profile.sla_warnings,
            }
        )
    return render(
        request,
        "core/preferences.html",
        {
            "form": form,
            "zone_names": zone_names(),
            "chosen_zone": profile.time_zone if profile else "",
            "browser_zone": browser_zone,
            "shown_zone": timezone.get_current_timezone_name(),
            "now": timezone.now(),
        },
        status=status,
    )
