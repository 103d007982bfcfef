from django.urls import path

from . import views

app_name = "knowledge"

urlpatterns = [
    path("", views.index, name="index"),
    path("new/", views.create, name="create"),
    path("cases/<str:key>/link/", views.link_case, name="link-case"),
    path("cases/<str:key>/create-article/", views.create_from_case, name="create-from-case"),
    path("<slug:slug>/", views.detail, name="detail"),
    path("<slug:slug>/edit/", views.edit, name="edit"),
    path("<slug:slug>/customer-text/", views.customer_text, name="customer-text"),
    path("<slug:slug>/revisions/", views.revisions, name="revisions"),
    path("<slug:slug>/revisions/<int:number>/", views.revision_detail, name="revision"),
    path("<slug:slug>/revisions/<int:number>/restore/", views.restore, name="restore"),
    path("<slug:slug>/submit/", views.submit, name="submit"),
    path("<slug:slug>/return-to-draft/", views.return_to_draft, name="return-to-draft"),
    path("<slug:slug>/publish/", views.publish, name="publish"),
    path("<slug:slug>/mark-reviewed/", views.mark_reviewed, name="mark-reviewed"),
    path("<slug:slug>/retire/", views.retire, name="retire"),
    path("<slug:slug>/vote/", views.vote, name="vote"),
]
