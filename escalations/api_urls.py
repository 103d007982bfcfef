"""REST API routes of the escalations app, mounted under /api/ (see supportdesk/urls.py)."""

from rest_framework.routers import SimpleRouter

from . import api

app_name = "escalations_api"

router = SimpleRouter()
router.register("escalations", api.EscalationViewSet, basename="escalation")

urlpatterns = router.urls
