from django.urls import path

from . import macro_views, queue_actions, search_views, views

app_name = "cases"

urlpatterns = [
    path("", views.queue, name="queue"),
    path("new/", views.create, name="create"),
    path("search/", search_views.search, name="search"),
    # Before "<str:key>/": these words are not case keys.
    path("views/", queue_actions.saved_view_list, name="saved_views"),
    path("views/new/", queue_actions.saved_view_create, name="saved_view_create"),
    path("views/<int:pk>/", queue_actions.saved_view_update, name="saved_view_update"),
    path("views/<int:pk>/filters/", queue_actions.saved_view_filters, name="saved_view_filters"),
    path("views/<int:pk>/delete/", queue_actions.saved_view_delete, name="saved_view_delete"),
    path("bulk/", queue_actions.bulk_change, name="bulk"),
    # Before "<key>/": "macros" is not a case key.
    path("macros/", macro_views.macro_list, name="macros"),
    path("macros/new/", macro_views.macro_create, name="macro-create"),
    path("macros/<int:pk>/edit/", macro_views.macro_edit, name="macro-edit"),
    path("macros/<int:pk>/delete/", macro_views.macro_delete, name="macro-delete"),
    path("<str:key>/", views.detail, name="detail"),
    path("<str:key>/clocks/", views.queue_clocks, name="queue_clocks"),
    path("<str:key>/reply/", views.reply, name="reply"),
    path("<str:key>/note/", views.note, name="note"),
    path("<str:key>/transition/", views.transition, name="transition"),
    path("<str:key>/update/", views.update, name="update"),
    path("<str:key>/assign-me/", views.assign_me, name="assign-me"),
    path("<str:key>/apply-macro/", macro_views.apply_to_case, name="apply-macro"),
    path("<str:key>/attachments/<int:attachment_id>/", views.attachment, name="attachment"),
]
