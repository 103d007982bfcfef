"""REST API routes of the cases app, mounted under /api/ (see supportdesk/urls.py)."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from . import api, macro_api, queue_api, search_api

app_name = "cases_api"

router = SimpleRouter()
router.register("cases", api.CaseViewSet, basename="case")
router.register("organisations", api.OrganisationViewSet, basename="organisation")
router.register("contacts", api.ContactViewSet, basename="contact")
router.register("teams", api.TeamViewSet, basename="team")
router.register("staff", api.StaffViewSet, basename="staff")
router.register("saved-views", queue_api.SavedViewViewSet, basename="saved-view")
router.register("macros", macro_api.MacroViewSet, basename="macro")

# Listed before the router: case keys (CASE-<n>) never read "search", but the order says it plainly.
urlpatterns = [
    path("cases/search/", search_api.CaseSearchView.as_view(), name="case-search"),
    path("cases/bulk/", queue_api.BulkChangeView.as_view(), name="case-bulk"),
    path(
        "cases/<str:key>/apply-macro/",
        macro_api.ApplyMacroView.as_view(),
        name="case-apply-macro",
    ),
    *router.urls,
]
