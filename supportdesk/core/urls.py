from django.urls import path

from . import audit_views, token_views, views

app_name = "core"

urlpatterns = [
    path("status/", views.system_status, name="status"),
    path("status/ping/", views.send_ping, name="ping"),
    path("status/ping/<str:nonce>/", views.ping_detail, name="ping-detail"),
    path("notifications/", views.notifications, name="notifications"),
    path("notifications/read/", views.notifications_mark_read, name="notifications-read"),
    path("preferences/", views.preferences, name="preferences"),
    path("tokens/", token_views.token_list, name="tokens"),
    path("tokens/<int:pk>/revoke/", token_views.token_revoke, name="token-revoke"),
    path("config-changes/", audit_views.config_changes, name="config-changes"),
    path("api/config-changes/", audit_views.ConfigChangeList.as_view(), name="api-config-changes"),
]
