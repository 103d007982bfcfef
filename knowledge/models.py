"""Knowledge: customer-facing articles and internal runbooks, their kept revisions, votes and case links.

Every write goes through ``knowledge/services.py``; this module holds tables and one-row invariants.
The working copy (``title``, ``body_markdown``) is always the latest revision; what readers and
customers see is ``published_revision``, so an agent's edit to a published article waits for a
manager to publish it.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.contrib.postgres.search import SearchVectorField
from django.db import models
from django.urls import reverse

from cases.models import Case, Tag


class Kind(models.TextChoices):
    ARTICLE = "article", "Article (customer-facing)"
    RUNBOOK = "runbook", "Runbook (internal)"


class ArticleStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    IN_REVIEW = "in_review", "In review"
    PUBLISHED = "published", "Published"
    RETIRED = "retired", "Retired"


DEFAULT_REVIEW_DAYS = 180


class Article(models.Model):
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.ARTICLE)
    title = models.CharField(max_length=300)
    slug = models.SlugField(max_length=200, unique=True)
    body_markdown = models.TextField(blank=True)
    product_area = models.CharField(max_length=100, blank=True)
    tags = models.ManyToManyField(Tag, blank=True, related_name="articles")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="owned_articles",
        help_text="Keeps the article current; told when its review is due.",
    )
    status = models.CharField(max_length=16, choices=ArticleStatus.choices, default=ArticleStatus.DRAFT)
    # The number of the latest revision (the working copy above).
    current_revision = models.PositiveIntegerField(default=0)
    # What readers see while the article is published (may be older than the working copy).
    published_revision = models.ForeignKey(
        "ArticleRevision", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    published_at = models.DateTimeField(null=True, blank=True)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    retired_at = models.DateTimeField(null=True, blank=True)
    review_interval_days = models.PositiveSmallIntegerField(default=DEFAULT_REVIEW_DAYS)
    review_due_at = models.DateTimeField(null=True, blank=True)
    # A review cycle starts at each publication or confirmed review; the stale flag and its
    # notification happen at most once per cycle.
    review_cycle = models.PositiveIntegerField(default=0)
    stale_flagged_at = models.DateTimeField(null=True, blank=True)
    created_from_case = models.ForeignKey(
        Case, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # Filled on PostgreSQL only (weighted title/body/product area); unused on SQLite.
    search_vector = SearchVectorField(null=True, editable=False)

    class Meta:
        ordering = ["-updated_at", "-id"]
        indexes = [
            models.Index(fields=["status", "-updated_at", "id"], name="kb_status_updated_idx"),
            models.Index(fields=["kind", "status"], name="kb_kind_status_idx"),
            models.Index(fields=["product_area"], name="kb_product_area_idx"),
            # The stale sweep: published articles past their review date, not yet flagged.
            models.Index(
                fields=["review_due_at"],
                name="kb_review_due_idx",
                condition=models.Q(status="published", stale_flagged_at__isnull=True),
            ),
        ]
        # The GIN index on search_vector is created by a PostgreSQL-only migration (0002).

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("knowledge:detail", args=[self.slug])

    @property
    def is_customer_facing(self) -> bool:
        return self.kind == Kind.ARTICLE

    @property
    def has_unpublished_changes(self) -> bool:
        return (
            self.status == ArticleStatus.PUBLISHED
            and self.published_revision is not None
            and self.published_revision.number != self.current_revision
        )

    def is_review_overdue(self, now: dt.datetime) -> bool:
        return (
            self.status == ArticleStatus.PUBLISHED
            and self.review_due_at is not None
            and self.review_due_at <= now
        )


class ArticleRevision(models.Model):
    """One kept save of an article: never edited; restoring copies it into a new revision."""

    article = models.ForeignKey(Article, on_delete=models.CASCADE, related_name="revisions")
    number = models.PositiveIntegerField()
    title = models.CharField(max_length=300)
    body_markdown = models.TextField(blank=True)
    product_area = models.CharField(max_length=100, blank=True)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    author_name = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField()
    note = models.CharField(max_length=300, blank=True, help_text="What changed and why.")
    restored_from = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["article", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["article", "number"], name="kb_revision_number_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.article_id} r{self.number}"


class LinkRelation(models.TextChoices):
    USED_TO_RESOLVE = "used_to_resolve", "Used to resolve"
    CREATED_FROM = "created_from", "Created from"


class ArticleCaseLink(models.Model):
    article = models.ForeignKey(Article, on_delete=models.CASCADE, related_name="case_links")
    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="article_links")
    relation = models.CharField(max_length=32, choices=LinkRelation.choices)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["article", "case", "relation"], name="kb_link_unique"),
        ]
        indexes = [models.Index(fields=["case", "relation"], name="kb_link_case_idx")]

    def __str__(self) -> str:
        return f"{self.article_id} {self.relation} case {self.case_id}"


class ArticleVote(models.Model):
    """A reader's verdict on one revision: at most one per person and revision (a new vote replaces it)."""

    article = models.ForeignKey(Article, on_delete=models.CASCADE, related_name="votes")
    revision = models.ForeignKey(ArticleRevision, on_delete=models.CASCADE, related_name="votes")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    helpful = models.BooleanField()
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["revision", "user"], name="kb_vote_once_per_revision"),
        ]
        indexes = [models.Index(fields=["article", "helpful"], name="kb_vote_article_idx")]

    def __str__(self) -> str:
        return f"{'+' if self.helpful else '-'} {self.article_id} r{self.revision_id}"
