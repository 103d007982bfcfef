from django.urls import path

from . import survey_views

app_name = "surveys"
urlpatterns: list = [
    path("<str:token>/", survey_views.answer, name="answer"),
]
