"""The project's URLs plus this app's, for tests run before the app is mounted in supportdesk/urls.py.

Once supportdesk/urls.py includes ``escalations.urls`` and ``escalations.api_urls`` this adds nothing.
"""

from django.urls import include, path

from supportdesk.urls import urlpatterns as project_urlpatterns


def _mounted(namespace: str) -> bool:
    return any(getattr(p, "namespace", None) == namespace for p in project_urlpatterns)


urlpatterns = list(project_urlpatterns)
if not _mounted("escalations"):
    urlpatterns.append(path("escalations/", include("escalations.urls")))
if not _mounted("escalations_api"):
    urlpatterns.append(path("api/", include("escalations.api_urls")))
