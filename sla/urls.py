"""Browser routes of the SLA pages, included by the project under ``sla/``."""

from django.urls import path

from . import views

app_name = "sla"

urlpatterns = [
    path("policies/", views.policies, name="policies"),
    path("policies/<int:pk>/ladder/", views.ladder, name="ladder"),
    path("calendars/new/", views.calendar_new, name="calendar-new"),
    path("calendars/<int:pk>/", views.calendar_edit, name="calendar-edit"),
    path("calendars/<int:pk>/delete/", views.calendar_delete, name="calendar-delete"),
    path("clocks/<int:pk>/", views.clock_explanation, name="clock-explanation"),
]
