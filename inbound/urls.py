"""Browser routes of the inbound app (mounted under /inbound/), and the providers' webhooks under
/inbound/provider/ (see inbound/webhooks.py and docs/mail.md)."""

from django.urls import path

from . import webhooks

app_name = "inbound"

urlpatterns = [
    *[
        path(f"provider/{route}", webhooks.provider_webhook(view_class), name=webhooks.route_name(route))
        for route, view_class in webhooks.PROVIDER_VIEWS.items()
    ],
]
