from django.urls import path

from . import views

app_name = "incidents"

urlpatterns = [
    path("", views.incident_list, name="list"),
    path("declare/", views.declare, name="declare"),
    path("<str:key>/", views.detail, name="detail"),
    path("<str:key>/link/", views.link, name="link"),
    path("<str:key>/update/", views.post_update, name="update"),
    path("<str:key>/cadence/", views.cadence, name="cadence"),
    path("<str:key>/resolve/", views.resolve, name="resolve"),
]
