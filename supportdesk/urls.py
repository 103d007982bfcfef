from csp.constants import UNSAFE_INLINE as CSP_UNSAFE_INLINE
from csp.decorators import csp_update
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from supportdesk.core import health, prometheus
from supportdesk.core import views as core_views

urlpatterns = [
    path("", core_views.home, name="home"),
    # Answered by HealthCheckMiddleware before host checks; named here for reverse().
    path("healthz", health.ready, name="healthz"),
    path("healthz/live", health.live, name="healthz-live"),
    path("healthz/ready", health.ready, name="healthz-ready"),
    # Prometheus (not /metrics/: that is the managers' dashboard).
    path("ops/metrics", prometheus.metrics_view, name="ops-metrics"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("", include("supportdesk.core.urls")),
    path("cases/", include("cases.urls")),
    path("api/", include("cases.api_urls")),
    path("sla/", include("sla.urls")),
    path("api/", include("sla.api_urls")),
    path("escalations/", include("escalations.urls")),
    path("api/", include("escalations.api_urls")),
    path("knowledge/", include("knowledge.urls")),
    path("api/", include("knowledge.api_urls")),
    path("metrics/", include("metrics.urls")),
    path("api/", include("metrics.api_urls")),
    path("survey/", include("metrics.survey_urls")),
    path("imports/", include("imports.urls")),
    path("inbound/", include("inbound.urls")),
    path("incidents/", include("incidents.urls")),
    path("api/", include("incidents.api_urls")),
    path("api/", include("inbound.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves Swagger UI's start-up script as a file: no inline script under the CSP.
    # Swagger UI writes inline styles as it builds the page: this page alone allows those.
    path(
        "api/docs/",
        csp_update({"style-src": [CSP_UNSAFE_INLINE]})(
            SpectacularSwaggerSplitView.as_view(url_name="api-schema")
        ),
        name="api-docs",
    ),
]

# Styled error pages with the server's reason; JSON for the API (supportdesk/core/error_views.py).
handler403 = "supportdesk.core.error_views.permission_denied"
handler404 = "supportdesk.core.error_views.page_not_found"
handler500 = "supportdesk.core.error_views.server_error"
