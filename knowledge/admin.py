"""Read-only views of the knowledge tables for admins: every change goes through the app's pages and
services (revisions, workflow, timeline events), never through the admin."""

from django.contrib import admin

from .models import Article, ArticleCaseLink, ArticleRevision, ArticleVote


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Article)
class ArticleAdmin(ReadOnlyAdmin):
    list_display = ("title", "kind", "status", "owner", "current_revision", "review_due_at", "updated_at")
    list_filter = ("kind", "status")
    search_fields = ("title", "slug")
    list_select_related = ("owner",)


@admin.register(ArticleRevision)
class ArticleRevisionAdmin(ReadOnlyAdmin):
    list_display = ("article", "number", "author_name", "created_at")
    list_select_related = ("article",)


@admin.register(ArticleCaseLink)
class ArticleCaseLinkAdmin(ReadOnlyAdmin):
    list_display = ("article", "case", "relation", "created_by", "created_at")
    list_select_related = ("article", "case", "created_by")


@admin.register(ArticleVote)
class ArticleVoteAdmin(ReadOnlyAdmin):
    list_display = ("article", "revision", "user", "helpful", "created_at")
    list_select_related = ("article", "revision", "user")
