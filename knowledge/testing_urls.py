"""The project's URLs plus the knowledge app's, for tests until supportdesk/urls.py includes them."""

from django.urls import include, path

from supportdesk.urls import urlpatterns as project_urlpatterns

_mounted = {getattr(p, "namespace", None) for p in project_urlpatterns}

urlpatterns = list(project_urlpatterns)
if "knowledge" not in _mounted:
    urlpatterns += [path("knowledge/", include("knowledge.urls"))]
if "knowledge_api" not in _mounted:
    urlpatterns += [path("api/", include("knowledge.api_urls"))]
