"""Browser routes of the metrics pages, included by the project under ``metrics/``."""

from django.urls import path

from . import views

app_name = "metrics"
urlpatterns: list = [
    path("", views.dashboard, name="dashboard"),
    path("cases/", views.cases, name="cases"),
    path("export/<slug:table>.csv", views.export, name="export"),
    path("me/", views.mine, name="mine"),
]
