"""The project's URLs plus the SLA routes, until the project includes them itself."""

from django.urls import include, path

from supportdesk.urls import urlpatterns as project_urlpatterns


def _included(namespace: str) -> bool:
    return any(getattr(p, "namespace", None) == namespace for p in project_urlpatterns)


urlpatterns = list(project_urlpatterns)
if not _included("sla"):
    urlpatterns.append(path("sla/", include("sla.urls")))
if not _included("sla_api"):
    urlpatterns.append(path("api/", include("sla.api_urls")))
