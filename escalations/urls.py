"""Browser routes of the escalations app, mounted under /escalations/ (see supportdesk/urls.py)."""

from django.urls import path

from . import views

app_name = "escalations"

urlpatterns = [
    path("", views.board, name="board"),
    path("score/", views.score, name="score"),
    path("teams/", views.team_list, name="teams"),
    path("teams/new/", views.team_create, name="team-create"),
    path("teams/<slug:slug>/", views.team_edit, name="team-edit"),
    path("teams/<slug:slug>/targets/", views.team_targets, name="team-targets"),
    path("new/<str:key>/", views.create, name="create"),
    path("<int:pk>/", views.detail, name="detail"),
    path("<int:pk>/edit/", views.edit, name="edit"),
    path("<int:pk>/submit/", views.submit, name="submit"),
    path("<int:pk>/answer/", views.answer, name="answer"),
    path("<int:pk>/withdraw/", views.withdraw, name="withdraw"),
    path("<int:pk>/attachments/", views.upload, name="upload"),
    path("<int:pk>/attachments/<int:attachment_id>/", views.attachment, name="attachment"),
    path("<int:pk>/view/", views.engineer_view, name="engineer-view"),
    path("<int:pk>/view/<slug:action>/", views.engineer_action, name="engineer-action"),
]
