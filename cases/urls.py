from django.urls import path

from . import search_views, views

app_name = "cases"

urlpatterns = [
    path("", views.queue, name="queue"),
    path("new/", views.create, name="create"),
    path("search/", search_views.search, name="search"),
    path("<str:key>/", views.detail, name="detail"),
    path("<str:key>/reply/", views.reply, name="reply"),
    path("<str:key>/note/", views.note, name="note"),
    path("<str:key>/transition/", views.transition, name="transition"),
    path("<str:key>/update/", views.update, name="update"),
    path("<str:key>/attachments/<int:attachment_id>/", views.attachment, name="attachment"),
]
