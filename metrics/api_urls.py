"""Metrics API routes, to be included by the project under ``api/``."""

from django.urls import path

from . import api

app_name = "metrics_api"

urlpatterns = [
    path("metrics/summary/", api.SummaryView.as_view(), name="summary"),
    path("metrics/backlog/", api.BacklogView.as_view(), name="backlog"),
    path("metrics/trends/", api.TrendsView.as_view(), name="trends"),
    path("metrics/cases/", api.DrilldownView.as_view(), name="cases"),
    path("metrics/agents/", api.AgentsView.as_view(), name="agents"),
]
