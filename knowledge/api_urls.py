"""REST API routes of the knowledge app, mounted under /api/ (see supportdesk/urls.py)."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from . import api

app_name = "knowledge_api"

router = SimpleRouter()
router.register("knowledge/articles", api.ArticleViewSet, basename="article")

urlpatterns = [
    path("cases/<str:key>/articles/", api.CaseArticlesView.as_view(), name="case-articles"),
    path("cases/<str:key>/articles/draft/", api.CaseArticleDraftView.as_view(), name="case-article-draft"),
    *router.urls,
]
