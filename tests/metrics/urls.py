"""The project's URLs plus the metrics API (until supportdesk/urls.py includes it)."""

from django.urls import include, path

from supportdesk.urls import urlpatterns as project_urlpatterns

urlpatterns = [path("api/", include("metrics.api_urls")), *project_urlpatterns]
