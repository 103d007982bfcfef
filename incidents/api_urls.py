"""REST API routes of the incidents app, mounted under /api/ (see supportdesk/urls.py)."""

from rest_framework.routers import SimpleRouter

from . import api

app_name = "incidents_api"

router = SimpleRouter()
router.register("incidents", api.IncidentViewSet, basename="incident")

urlpatterns = router.urls
