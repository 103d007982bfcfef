"""SLA API routes, included by the project under ``api/``."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from . import api

app_name = "sla_api"

router = SimpleRouter()
router.register("sla/calendars", api.CalendarViewSet, basename="calendar")
router.register("sla/policies", api.PolicyViewSet, basename="policy")

urlpatterns = [
    path("cases/<str:key>/sla/", api.CaseSlaView.as_view(), name="case-sla"),
    path(
        "cases/<str:key>/sla/<int:clock_id>/explanation/",
        api.ClockExplanationView.as_view(),
        name="case-sla-explanation",
    ),
    path("sla/preview", api.PreviewView.as_view(), name="preview"),
    # The same with a trailing slash (a POST cannot be redirected to the other spelling).
    path("sla/preview/", api.PreviewSlashView.as_view()),
    *router.urls,
]
