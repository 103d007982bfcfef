from django.urls import path

from . import macro_views, views

app_name = "cases"

urlpatterns = [
    path("", views.queue, name="queue"),
    path("new/", views.create, name="create"),
    # Before "<key>/": "macros" is not a case key.
    path("macros/", macro_views.macro_list, name="macros"),
    path("macros/new/", macro_views.macro_create, name="macro-create"),
    path("macros/<int:pk>/edit/", macro_views.macro_edit, name="macro-edit"),
    path("macros/<int:pk>/delete/", macro_views.macro_delete, name="macro-delete"),
    path("<str:key>/", views.detail, name="detail"),
    path("<str:key>/reply/", views.reply, name="reply"),
    path("<str:key>/note/", views.note, name="note"),
    path("<str:key>/transition/", views.transition, name="transition"),
    path("<str:key>/update/", views.update, name="update"),
    path("<str:key>/assign-me/", views.assign_me, name="assign-me"),
    path("<str:key>/apply-macro/", macro_views.apply_to_case, name="apply-macro"),
    path("<str:key>/attachments/<int:attachment_id>/", views.attachment, name="attachment"),
]
