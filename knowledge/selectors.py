"""Reads of the knowledge base: search, suggestions for a case, an article with what its page shows.

Search is PostgreSQL full-text search in production (a stored, weighted tsvector with a GIN index:
title A, product area C, body B; English stemming; ``websearch`` queries; ranked; highlighted
snippets). On SQLite (development, the quick test run) a simpler search finds every word in the
title or body and ranks title matches first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.contrib.postgres.search import SearchHeadline, SearchQuery, SearchRank, SearchVector
from django.db import connection, models
from django.db.models import (
    Count,
    Exists,
    F,
    FloatField,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.utils.safestring import SafeString

from cases.models import Case

from .models import Article, ArticleCaseLink, ArticleRevision, ArticleStatus, ArticleVote
from .rendering import MARK_START, MARK_STOP, highlight_markers_to_html, plain_text

if TYPE_CHECKING:
    from django.contrib.auth.models import User

SEARCH_CONFIG = "english"
MAX_QUERY_WORDS = 32
SNIPPET_CHARS = 220
_SCORE = "suggestion_score"

# Words too common in support text to say which article fits a case ("error", "fails" are in
# most of them): left out of suggestion queries.
STOPWORDS = frozenset(
    [
        "a", "about", "above", "after", "again", "against", "all", "am", "an", "and", "any", "are", "as",
        "at", "be", "because", "been", "before", "being", "below", "between", "both", "but", "by", "can",
        "cannot", "could", "did", "do", "does", "doing", "down", "during", "each", "few", "for", "from",
        "further", "had", "has", "have", "having", "he", "her", "here", "hers", "him", "his", "how", "i",
        "if", "in", "into", "is", "it", "its", "itself", "just", "let", "me", "more", "most", "my", "no",
        "nor", "not", "now", "of", "off", "on", "once", "only", "or", "other", "our", "ours", "out",
        "over", "own", "same", "she", "should", "so", "some", "such", "than", "that", "the", "their",
        "theirs", "them", "then", "there", "these", "they", "this", "those", "through", "to", "too",
        "under", "until", "up", "very", "was", "we", "were", "what", "when", "where", "which", "while",
        "who", "whom", "why", "will", "with", "would", "you", "your", "yours", "customer", "customers",
        "user", "users", "please", "help", "issue", "issues", "problem", "problems", "hi", "hello",
        "thanks", "thank", "since", "every", "still", "also", "get", "got", "getting", "see", "seeing",
        "seems", "tried", "try", "trying", "want", "need", "needs", "using", "use", "used", "error",
        "errors", "fail", "fails", "failed", "failing", "failure", "work", "works", "working", "worked",
        "unable", "able", "anymore", "today", "morning", "yesterday", "log", "logs",
    ]
)  # fmt: skip
_WORD_RE = re.compile(r"[^\W_]+", re.UNICODE)


def _published(field: str) -> Any:
    """The published revision's ``field`` for an UPDATE of articles (a join is not allowed there)."""
    revision = ArticleRevision.objects.filter(pk=OuterRef("published_revision_id")).values(field)[:1]
    return Subquery(revision, output_field=models.TextField())


def search_vector_expression() -> Any:
    """The weighted document stored in ``Article.search_vector`` (PostgreSQL): the text readers see,
    i.e. the published revision once there is one (a pending draft edit is not searched), else the
    working copy (a draft that was never published)."""

    def seen(field: str) -> Any:
        return Coalesce(_published(field), F(field), output_field=models.TextField())

    return (
        SearchVector(seen("title"), weight="A", config=SEARCH_CONFIG)
        + SearchVector(seen("product_area"), weight="C", config=SEARCH_CONFIG)
        + SearchVector(seen("body_markdown"), weight="B", config=SEARCH_CONFIG)
    )


def _reader_field(field: str) -> Any:
    """``field`` as readers see it, for a read (the published revision is joined)."""
    return Coalesce(F(f"published_revision__{field}"), F(field), output_field=models.TextField())


def reader_text(article: Article) -> tuple[str, str, str]:
    """(title, body, product area) as readers see them: the published revision once there is one."""
    source: Any = article.published_revision if article.published_revision_id else article
    return source.title, source.body_markdown, source.product_area


def is_postgresql() -> bool:
    return connection.vendor == "postgresql"


def query_words(text: str, *, drop_stopwords: bool = False, limit: int = MAX_QUERY_WORDS) -> list[str]:
    """The words of ``text``, lower-cased, in order, each once (letters and digits only)."""
    seen: dict[str, None] = {}
    for word in _WORD_RE.findall((text or "").lower()):
        if drop_stopwords and (word in STOPWORDS or len(word) < 3 or word.isdigit()):
            continue
        seen.setdefault(word, None)
    return list(seen)[:limit]


def article_list() -> QuerySet[Article]:
    """Articles with what a list row shows joined (owner, published revision, tags)."""
    return Article.objects.select_related("owner", "published_revision").prefetch_related("tags")


def _filtered(
    qs: QuerySet[Article],
    *,
    kind: str | None,
    status: str | None,
    product_area: str | None,
    tag: str | None,
) -> QuerySet[Article]:
    if kind:
        qs = qs.filter(kind=kind)
    qs = qs.filter(status=status) if status else qs.exclude(status=ArticleStatus.RETIRED)
    if product_area:
        qs = qs.filter(product_area__iexact=product_area.strip())
    if tag:
        # Tag names are unique, so this join keeps one row per article.
        qs = qs.filter(tags__name=tag.strip().lower())
    return qs


def search_articles(
    q: str = "",
    *,
    kind: str | None = None,
    status: str | None = None,
    product_area: str | None = None,
    tag: str | None = None,
) -> QuerySet[Article]:
    """Articles matching ``q`` (all of its words), best first; without ``q``, recently updated first.

    Without a ``status`` filter retired articles are left out. Each row carries ``search_rank`` and
    the raw highlighted ``search_title``/``search_snippet`` (see ``snippet_html``).
    """
    qs = _filtered(article_list(), kind=kind, status=status, product_area=product_area, tag=tag)
    q = (q or "").strip()
    if not q:
        return qs.annotate(search_rank=Value(0.0, output_field=FloatField())).order_by("-updated_at", "-id")
    if is_postgresql():
        query = SearchQuery(q, search_type="websearch", config=SEARCH_CONFIG)
        return (
            qs.filter(search_vector=query)
            .annotate(
                search_rank=SearchRank(F("search_vector"), query),
                search_title=SearchHeadline(
                    _reader_field("title"),
                    query,
                    config=SEARCH_CONFIG,
                    start_sel=MARK_START,
                    stop_sel=MARK_STOP,
                    highlight_all=True,
                ),
                search_snippet=SearchHeadline(
                    _reader_field("body_markdown"),
                    query,
                    config=SEARCH_CONFIG,
                    start_sel=MARK_START,
                    stop_sel=MARK_STOP,
                    max_words=35,
                    min_words=15,
                    max_fragments=2,
                    fragment_delimiter=" … ",
                ),
            )
            .order_by("-search_rank", "-updated_at", "-id")
        )
    words = query_words(q)
    if not words:
        return qs.none()
    qs = qs.annotate(reader_title=_reader_field("title"), reader_body=_reader_field("body_markdown"))
    for word in words:
        qs = qs.filter(Q(reader_title__icontains=word) | Q(reader_body__icontains=word))
    title_hits = sum(
        (
            models.Case(
                When(reader_title__icontains=w, then=Value(1)),
                default=Value(0),
                output_field=IntegerField(),
            )
            for w in words
        ),
        Value(0),
    )
    return qs.annotate(search_rank=title_hits * 1.0).order_by("-search_rank", "-updated_at", "-id")


def _mark_words(text: str, words: list[str]) -> str:
    if not words:
        return text
    pattern = re.compile("|".join(re.escape(w) for w in sorted(words, key=len, reverse=True)), re.IGNORECASE)
    return pattern.sub(lambda m: f"{MARK_START}{m.group(0)}{MARK_STOP}", text)


def _fallback_snippet(body: str, words: list[str]) -> str:
    text = plain_text(body)
    lowered = text.lower()
    positions = [p for p in (lowered.find(w) for w in words) if p >= 0]
    start = max(0, min(positions) - SNIPPET_CHARS // 3) if positions else 0
    piece = text[start : start + SNIPPET_CHARS]
    prefix = "… " if start > 0 else ""
    suffix = " …" if start + SNIPPET_CHARS < len(text) else ""
    return prefix + _mark_words(piece, words) + suffix


@dataclass(frozen=True)
class Snippet:
    title: SafeString
    body: SafeString


def snippet_html(article: Article, q: str = "") -> Snippet:
    """The article's title and a short excerpt as readers see them (the published revision once
    there is one), HTML-escaped, with the query's words in <mark>."""
    words = query_words(q)
    pg_title = getattr(article, "search_title", None)
    pg_body = getattr(article, "search_snippet", None)
    reader_title, reader_body, _area = reader_text(article)
    title = pg_title if pg_title is not None else _mark_words(reader_title, words)
    body = plain_text(pg_body) if pg_body is not None else _fallback_snippet(reader_body, words)
    return Snippet(title=highlight_markers_to_html(title), body=highlight_markers_to_html(body))


# --- Suggestions on a case --------------------------------------------------------------------------

PRODUCT_AREA_BOOST = 0.2
SUGGESTION_TITLE_WORDS = 8
SUGGESTION_WORDS = 12


def suggest_for_case(case: Case, *, limit: int = 5) -> list[Article]:
    """Published articles and runbooks that fit the case's title and description, best first.

    Any significant word may match (title matches weigh most); an article of the case's product
    area is lifted. Articles already linked to the case are left out (they are listed as linked).
    """
    # The title says most; a long description would otherwise turn the query into "anything".
    words = query_words(case.title, drop_stopwords=True, limit=SUGGESTION_TITLE_WORDS)
    for word in query_words(case.description, drop_stopwords=True, limit=SUGGESTION_WORDS):
        if len(words) >= SUGGESTION_WORDS:
            break
        if word not in words:
            words.append(word)
    if not words:
        return []
    linked = ArticleCaseLink.objects.filter(article=OuterRef("pk"), case=case)
    qs = (
        Article.objects.filter(status=ArticleStatus.PUBLISHED)
        .exclude(Exists(linked))
        .select_related("published_revision")
    )
    area = (case.product_area or "").strip()
    if is_postgresql():
        query = SearchQuery(" or ".join(words), search_type="websearch", config=SEARCH_CONFIG)
        boost: Any = Value(0.0, output_field=FloatField())
        if area:
            boost = models.Case(
                When(product_area__iexact=area, then=Value(PRODUCT_AREA_BOOST)),
                default=Value(0.0),
                output_field=FloatField(),
            )
        return list(
            qs.filter(search_vector=query)
            .annotate(suggestion_score=SearchRank(F("search_vector"), query) + boost)
            .order_by("-suggestion_score", "-updated_at", "-id")[:limit]
        )
    any_word = Q()
    for word in words:
        any_word |= Q(reader_title__icontains=word) | Q(reader_body__icontains=word)
    qs = qs.annotate(reader_title=_reader_field("title"), reader_body=_reader_field("body_markdown"))
    candidates: list[Article] = list(qs.filter(any_word).order_by("-updated_at", "-id")[:200])

    def score(article: Article) -> float:
        title, body, product_area = (text.lower() for text in reader_text(article))
        points = sum(3 for w in words if w in title) + sum(1 for w in words if w in body)
        if area and product_area == area.lower():
            points += 2
        return points

    scores = {article.pk: score(article) for article in candidates}
    for article in candidates:
        # What the PostgreSQL branch annotates (an attribute the model does not declare).
        setattr(article, _SCORE, scores[article.pk])
    return sorted(candidates, key=lambda a: -scores[a.pk])[:limit]


def case_links(case: Case) -> QuerySet[ArticleCaseLink]:
    """The case's links to articles, newest first, with the article (and its published text)."""
    return (
        ArticleCaseLink.objects.filter(case=case)
        .select_related("article", "article__published_revision", "created_by")
        .order_by("-created_at", "-id")
    )


# --- An article's page ------------------------------------------------------------------------------


def article_by_slug(slug: str) -> Article | None:
    return (
        Article.objects.select_related("owner", "published_revision", "published_by", "created_from_case")
        .prefetch_related("tags")
        .filter(slug=slug)
        .first()
    )


@dataclass(frozen=True)
class VoteCounts:
    helpful: int
    not_helpful: int
    revision_helpful: int
    revision_not_helpful: int


def vote_counts(article: Article) -> VoteCounts:
    """Helpful / not helpful votes, in all and for the published revision, in one query."""
    revision_id = article.published_revision_id
    counts = ArticleVote.objects.filter(article=article).aggregate(
        n_helpful=Count("id", filter=Q(helpful=True)),
        n_not_helpful=Count("id", filter=Q(helpful=False)),
        n_revision_helpful=Count("id", filter=Q(helpful=True, revision_id=revision_id)),
        n_revision_not_helpful=Count("id", filter=Q(helpful=False, revision_id=revision_id)),
    )
    return VoteCounts(**{name.removeprefix("n_"): value for name, value in counts.items()})


def my_vote(article: Article, user: User) -> bool | None:
    """The viewer's vote on the published revision (None when they have not voted on it)."""
    if article.published_revision_id is None:
        return None
    return (
        ArticleVote.objects.filter(revision_id=article.published_revision_id, user=user)
        .values_list("helpful", flat=True)
        .first()
    )


def article_case_links(article: Article, *, limit: int = 50) -> QuerySet[ArticleCaseLink]:
    return (
        ArticleCaseLink.objects.filter(article=article)
        .select_related("case", "created_by")
        .order_by("-created_at", "-id")[:limit]
    )


def revision_list(article: Article) -> QuerySet[ArticleRevision]:
    """The article's revisions, newest first, without their bodies."""
    return (
        ArticleRevision.objects.filter(article=article)
        .defer("body_markdown")
        .select_related("author")
        .order_by("-number")
    )


def revision(article: Article, number: int) -> ArticleRevision | None:
    return ArticleRevision.objects.filter(article=article, number=number).select_related("author").first()
