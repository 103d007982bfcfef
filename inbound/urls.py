"""Browser routes of the inbound app (mounted under /inbound/), and the providers' webhooks under
/inbound/provider/ (see inbound/webhooks.py and docs/mail.md)."""

from django.urls import path

from . import views, webhooks

app_name = "inbound"

urlpatterns = [
    path("mailboxes/", views.mailbox_list, name="mailboxes"),
    path("mailboxes/new/", views.mailbox_create, name="mailbox-new"),
    path("mailboxes/<int:pk>/", views.mailbox_edit, name="mailbox-edit"),
    path("mailboxes/<int:pk>/test/", views.mailbox_test, name="mailbox-test"),
    path("mailboxes/<int:pk>/poll/", views.mailbox_poll, name="mailbox-poll"),
    path("messages/", views.received_mail, name="received"),
    path("messages/<int:pk>/retry/", views.message_retry, name="retry"),
    path("messages/<int:pk>/raw.eml", views.raw, name="raw"),
    *[
        path(f"provider/{route}", webhooks.provider_webhook(view_class), name=webhooks.route_name(route))
        for route, view_class in webhooks.PROVIDER_VIEWS.items()
    ],
]
