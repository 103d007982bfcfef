"""Every write to the knowledge base: one function per action, one transaction each.

Callers pass ``now`` (taken once at the edge) and the acting user. Agents write drafts; only
managers publish, retire and publish pending changes. Every change of content is a kept revision.
Links to cases are recorded on the case timeline; e-mail leaves only after the transaction commits.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, connection, transaction
from django.utils.text import slugify

from cases import tags as tags_rule
from cases.models import Case, CaseEvent, EventKind, Tag
from cases.models import Status as CaseStatus
from cases.services import record_event
from supportdesk.core import outbox
from supportdesk.core.errors import Conflict, DomainError
from supportdesk.core.instants import DAY_FORMAT, format_instant, zones_of
from supportdesk.core.models import MailKind
from supportdesk.core.roles import active_managers, is_agent, is_manager
from supportdesk.core.selectors import email_opt_outs
from supportdesk.core.services import notify

from .models import (
    Article,
    ArticleCaseLink,
    ArticleRevision,
    ArticleStatus,
    ArticleVote,
    Kind,
    LinkRelation,
)
from .selectors import search_vector_expression

logger = logging.getLogger(__name__)

ARTICLE_LINKED = "article_linked"
STALE_NOTIFICATION = "knowledge_review_due"
SLUG_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
MAX_TITLE = 300
MAX_BODY = 200_000
# Paths of the knowledge pages that an article's slug must not shadow.
RESERVED_SLUGS = frozenset({"new", "cases", "api"})


class NotAllowed(DomainError):
    """The actor's role does not allow this step (403)."""

    status_code = 403
    code = "permission_denied"


def _name(user: User | None) -> str:
    if user is None:
        return "system"
    return user.get_full_name() or user.get_username()


def _require_agent(actor: User | None) -> None:
    if actor is None or not is_agent(actor):
        raise NotAllowed("Knowledge is written by support agents and managers.")


def _require_manager(actor: User | None, what: str) -> None:
    if actor is None or not is_manager(actor):
        raise NotAllowed(f"Only a manager can {what}.")


def _lock(article: Article) -> Article:
    return Article.objects.select_for_update().get(pk=article.pk)


def _refresh_search_vector(article_pk: int) -> None:
    """Keep the stored tsvector in step with what readers see (PostgreSQL only): called on every
    change of the working copy and on publishing (see ``selectors.search_vector_expression``)."""
    if connection.vendor == "postgresql":
        Article.objects.filter(pk=article_pk).update(search_vector=search_vector_expression())


def _set_tags(article: Article, names: list[str]) -> None:
    existing = {t.name: t for t in Tag.objects.filter(name__in=names)}
    for name in names:
        if name not in existing:
            existing[name], _ = Tag.objects.get_or_create(name=name)
    article.tags.set([existing[n] for n in names])


def _check_content(*, title: str, body_markdown: str) -> None:
    if not title or not title.strip():
        raise DomainError("An article needs a title.", field="title")
    if len(title) > MAX_TITLE:
        raise DomainError(f"A title has at most {MAX_TITLE} characters.", field="title")
    if len(body_markdown) > MAX_BODY:
        raise DomainError(f"The body has at most {MAX_BODY:,} characters.", field="body_markdown")


def _unique_slug(title: str, *, exclude_pk: int | None = None) -> str:
    base = slugify(title)[:180].strip("-") or "article"
    if base in RESERVED_SLUGS:
        base = f"{base}-article"
    rows = Article.objects.filter(slug__startswith=base)
    if exclude_pk is not None:
        rows = rows.exclude(pk=exclude_pk)
    taken = set(rows.values_list("slug", flat=True))
    if base not in taken:
        return base
    n = 2
    while f"{base}-{n}" in taken:
        n += 1
    return f"{base}-{n}"


def _add_revision(
    article: Article,
    *,
    actor: User | None,
    now: dt.datetime,
    note: str = "",
    restored_from: int | None = None,
) -> ArticleRevision:
    """Record the article's working copy as its next revision (the caller holds the row lock)."""
    article.current_revision += 1
    revision = ArticleRevision.objects.create(
        article=article,
        number=article.current_revision,
        title=article.title,
        body_markdown=article.body_markdown,
        product_area=article.product_area,
        author=actor,
        author_name=_name(actor),
        created_at=now,
        note=note[:300],
        restored_from=restored_from,
    )
    article.updated_at = now
    article.save(update_fields=["title", "body_markdown", "product_area", "current_revision", "updated_at"])
    return revision


# --- Writing --------------------------------------------------------------------------------------


def create_draft(
    *,
    title: str,
    actor: User,
    now: dt.datetime,
    kind: str = Kind.ARTICLE,
    body_markdown: str = "",
    product_area: str = "",
    tags: Iterable[str] = (),
    owner: User | None = None,
    slug: str | None = None,
    created_from_case: Case | None = None,
    review_interval_days: int | None = None,
) -> Article:
    """A new draft with its first revision; the author owns it unless ``owner`` is given."""
    _require_agent(actor)
    if kind not in Kind.values:
        raise DomainError(f"“{kind}” is not a kind of article; use article or runbook.", field="kind")
    _check_content(title=title, body_markdown=body_markdown)
    if owner is not None and not is_agent(owner):
        raise DomainError(f"{owner.get_username()} is not a support agent.", field="owner")
    tag_names = tags_rule.normalise_all(tags)
    if slug is not None:
        if not SLUG_RE.match(slug) or len(slug) > 200:
            raise DomainError("Give a slug of up to 200 letters, digits and hyphens.", field="slug")
        if slug in RESERVED_SLUGS:
            raise DomainError(f"“{slug}” is reserved; choose another slug.", field="slug")
        if Article.objects.filter(slug=slug).exists():
            raise DomainError(f"The slug “{slug}” is already used by another article.", field="slug")
    try:
        with transaction.atomic():
            article = Article.objects.create(
                kind=kind,
                title=title.strip(),
                slug=slug or _unique_slug(title),
                body_markdown=body_markdown,
                product_area=product_area.strip(),
                owner=owner or actor,
                status=ArticleStatus.DRAFT,
                created_at=now,
                updated_at=now,
                created_from_case=created_from_case,
                review_interval_days=review_interval_days or _default_review_days(),
            )
            if tag_names:
                _set_tags(article, tag_names)
            _add_revision(article, actor=actor, now=now, note="Created")
            _refresh_search_vector(article.pk)
    except IntegrityError as exc:  # a concurrent article took the same slug
        raise DomainError("Another article has just taken this slug; try again.", field="slug") from exc
    return article


def _default_review_days() -> int:
    return int(getattr(settings, "KNOWLEDGE_REVIEW_DAYS", 180))


_UNSET: Any = object()


def update(
    article: Article,
    *,
    actor: User,
    now: dt.datetime,
    expected_revision: int | None = None,
    title: str = _UNSET,
    body_markdown: str = _UNSET,
    product_area: str = _UNSET,
    kind: str = _UNSET,
    tags: Iterable[str] = _UNSET,
    owner: User | None = _UNSET,
    review_interval_days: int = _UNSET,
    note: str = "",
) -> Article:
    """Change the given fields; a change of content is kept as a new revision.

    On a published article the change waits for a manager to publish it; readers keep seeing the
    published revision. ``expected_revision`` refuses to overwrite someone else's newer save.
    """
    _require_agent(actor)
    with transaction.atomic():
        article = _lock(article)
        if article.status == ArticleStatus.RETIRED:
            raise DomainError("A retired article can no longer be changed.")
        if expected_revision is not None and expected_revision != article.current_revision:
            raise Conflict(
                f"“{article.title}” was saved by someone else since you opened it (you edited revision "
                f"{expected_revision}, the latest is {article.current_revision}). Reload and try again."
            )
        content_changed = False
        for field, value in (
            ("title", title),
            ("body_markdown", body_markdown),
            ("product_area", product_area),
        ):
            if value is _UNSET:
                continue
            value = value.strip() if field != "body_markdown" else value
            if value != getattr(article, field):
                setattr(article, field, value)
                content_changed = True
        _check_content(title=article.title, body_markdown=article.body_markdown)
        meta_fields: list[str] = []
        if kind is not _UNSET and kind != article.kind:
            if kind not in Kind.values:
                raise DomainError(f"“{kind}” is not a kind of article; use article or runbook.", field="kind")
            if article.published_revision_id is not None:
                # A runbook once published must not turn customer-facing without a new article.
                raise DomainError("The kind of a published article cannot change.", field="kind")
            article.kind = kind
            meta_fields.append("kind")
        if owner is not _UNSET and (owner.pk if owner else None) != article.owner_id:
            if owner is not None and not is_agent(owner):
                raise DomainError(f"{owner.get_username()} is not a support agent.", field="owner")
            article.owner = owner
            meta_fields.append("owner")
        if review_interval_days is not _UNSET and review_interval_days != article.review_interval_days:
            if not 1 <= int(review_interval_days) <= 3650:
                raise DomainError("Review every 1 to 3650 days.", field="review_interval_days")
            article.review_interval_days = review_interval_days
            meta_fields.append("review_interval_days")
        if meta_fields:
            article.updated_at = now
            article.save(update_fields=[*meta_fields, "updated_at"])
        if tags is not _UNSET:
            current = sorted(article.tags.values_list("name", flat=True))
            # A tag stored before the rule (cases.tags) stays on its article; new ones must follow it.
            names = tags_rule.normalise_all(tags, keep=current)
            if names != current:
                _set_tags(article, names)
                article.updated_at = now
                article.save(update_fields=["updated_at"])
        if content_changed:
            _add_revision(article, actor=actor, now=now, note=note)
            _refresh_search_vector(article.pk)
    return article


def restore_revision(article: Article, number: int, *, actor: User, now: dt.datetime) -> Article:
    """Make an old revision's content the working copy again, as a new revision (nothing is lost)."""
    _require_agent(actor)
    with transaction.atomic():
        article = _lock(article)
        if article.status == ArticleStatus.RETIRED:
            raise DomainError("A retired article can no longer be changed.")
        old = ArticleRevision.objects.filter(article=article, number=number).first()
        if old is None:
            raise DomainError(f"This article has no revision {number}.", field="revision")
        if number == article.current_revision:
            raise DomainError(f"Revision {number} is already the latest.", field="revision")
        article.title, article.body_markdown, article.product_area = (
            old.title,
            old.body_markdown,
            old.product_area,
        )
        _add_revision(article, actor=actor, now=now, note=f"Restored revision {number}", restored_from=number)
        _refresh_search_vector(article.pk)
    return article


# --- Workflow -------------------------------------------------------------------------------------


def submit_for_review(article: Article, *, actor: User, now: dt.datetime) -> Article:
    """draft -> in_review: ask a manager to publish."""
    _require_agent(actor)
    with transaction.atomic():
        article = _lock(article)
        if article.status != ArticleStatus.DRAFT:
            raise DomainError(
                "Only a draft can be submitted for review "
                f"(this article is {article.get_status_display().lower()})."
            )
        article.status = ArticleStatus.IN_REVIEW
        article.updated_at = now
        article.save(update_fields=["status", "updated_at"])
    return article


def return_to_draft(article: Article, *, actor: User, now: dt.datetime) -> Article:
    """in_review -> draft: a manager asks for changes, or the owner withdraws it."""
    _require_agent(actor)
    with transaction.atomic():
        article = _lock(article)
        if not (is_manager(actor) or article.owner_id == actor.pk):
            raise NotAllowed("Only a manager or the article's owner can send it back to draft.")
        if article.status != ArticleStatus.IN_REVIEW:
            raise DomainError("Only an article in review can go back to draft.")
        article.status = ArticleStatus.DRAFT
        article.updated_at = now
        article.save(update_fields=["status", "updated_at"])
    return article


def _start_review_cycle(article: Article, *, now: dt.datetime) -> None:
    article.review_due_at = now + dt.timedelta(days=article.review_interval_days)
    article.review_cycle += 1
    article.stale_flagged_at = None


def publish(article: Article, *, actor: User, now: dt.datetime) -> Article:
    """Make the latest revision what readers see (managers only); starts a new review cycle.

    A manager may publish a draft directly (their publishing is the review), an article in review,
    or the pending changes of a published article.
    """
    _require_manager(actor, "publish knowledge")
    with transaction.atomic():
        article = _lock(article)
        if article.status == ArticleStatus.RETIRED:
            raise DomainError("A retired article cannot be published again; create a new one.")
        if article.status == ArticleStatus.PUBLISHED and not article.has_unpublished_changes:
            raise DomainError("This article is already published and has no unpublished changes.")
        article.published_revision = ArticleRevision.objects.get(
            article=article, number=article.current_revision
        )
        article.status = ArticleStatus.PUBLISHED
        article.published_at = now
        article.published_by = actor
        article.updated_at = now
        _start_review_cycle(article, now=now)
        article.save(
            update_fields=[
                "published_revision",
                "status",
                "published_at",
                "published_by",
                "updated_at",
                "review_due_at",
                "review_cycle",
                "stale_flagged_at",
            ]
        )
        # What readers see changed: from now on search finds (and quotes) this revision.
        _refresh_search_vector(article.pk)
    return article


def mark_reviewed(article: Article, *, actor: User, now: dt.datetime) -> Article:
    """The owner (or a manager) confirms a published article is still right: a new review cycle."""
    _require_agent(actor)
    with transaction.atomic():
        article = _lock(article)
        if not (is_manager(actor) or article.owner_id == actor.pk):
            raise NotAllowed("Only the article's owner or a manager can confirm its review.")
        if article.status != ArticleStatus.PUBLISHED:
            raise DomainError("Only a published article has a review date.")
        _start_review_cycle(article, now=now)
        article.updated_at = now
        article.save(update_fields=["review_due_at", "review_cycle", "stale_flagged_at", "updated_at"])
    return article


def retire(article: Article, *, actor: User, now: dt.datetime) -> Article:
    """Take an article out of use (managers only); it stays readable for its history and links."""
    _require_manager(actor, "retire knowledge")
    with transaction.atomic():
        article = _lock(article)
        if article.status == ArticleStatus.RETIRED:
            raise DomainError("This article is already retired.")
        article.status = ArticleStatus.RETIRED
        article.retired_at = now
        article.updated_at = now
        article.save(update_fields=["status", "retired_at", "updated_at"])
    return article


# --- Readers ----------------------------------------------------------------------------------------


def vote(article: Article, *, actor: User, helpful: bool, now: dt.datetime) -> ArticleVote:
    """Record whether the published revision helped; one vote per person and revision."""
    _require_agent(actor)
    if not isinstance(helpful, bool):
        raise DomainError("Say whether the article was helpful (true or false).", field="helpful")
    article = Article.objects.select_related("published_revision").get(pk=article.pk)
    if article.status != ArticleStatus.PUBLISHED or article.published_revision is None:
        raise DomainError("Only a published article can be voted on.")
    revision = article.published_revision
    for _attempt in range(2):
        try:
            with transaction.atomic():
                vote_row, created = ArticleVote.objects.get_or_create(
                    revision=revision,
                    user=actor,
                    defaults={"article": article, "helpful": helpful, "created_at": now},
                )
                if not created and vote_row.helpful != helpful:
                    vote_row.helpful = helpful
                    vote_row.created_at = now
                    vote_row.save(update_fields=["helpful", "created_at"])
                return vote_row
        except IntegrityError:  # the same person's second click won the insert race: update it
            continue
    raise Conflict("Your vote could not be recorded; try again.")


# --- Cases ------------------------------------------------------------------------------------------


def link_to_case(
    article: Article,
    case: Case,
    *,
    actor: User,
    now: dt.datetime,
    relation: str = LinkRelation.USED_TO_RESOLVE,
) -> tuple[ArticleCaseLink, bool]:
    """Link the article to the case (once per relation) and record it on the case timeline.

    Returns the link and whether it is new; linking twice changes nothing.
    """
    _require_agent(actor)
    if relation not in LinkRelation.values:
        raise DomainError(f"“{relation}” is not a kind of link.", field="relation")
    with transaction.atomic():
        case = Case.objects.select_for_update().get(pk=case.pk)
        return _link(article, case, actor=actor, now=now, relation=relation)


def _link(
    article: Article, case: Case, *, actor: User, now: dt.datetime, relation: str
) -> tuple[ArticleCaseLink, bool]:
    """The link itself; the caller holds the case's row lock inside a transaction."""
    if case.status == CaseStatus.CLOSED:
        raise DomainError(f"{case.key} is closed and can no longer be changed.")
    if article.status == ArticleStatus.RETIRED:
        raise DomainError(f"“{article.title}” is retired; link a current article instead.", field="article")
    existing = ArticleCaseLink.objects.filter(article=article, case=case, relation=relation).first()
    if existing is not None:
        return existing, False
    link = ArticleCaseLink.objects.create(
        article=article, case=case, relation=relation, created_by=actor, created_at=now
    )
    record_event(
        case,
        ARTICLE_LINKED,
        actor=actor,
        now=now,
        field="article",
        new={"article": article.slug, "title": article.title, "kind": article.kind, "relation": relation},
    )
    return link, True


def resolution_text(case: Case) -> str:
    """The case's last public reply: what the customer was told fixed it."""
    reply = (
        CaseEvent.objects.filter(case=case, kind=EventKind.PUBLIC_REPLY, is_public=True)
        .order_by("-created_at", "-id")
        .values_list("body", flat=True)
        .first()
    )
    return reply or ""


def draft_body_from_case(case: Case, *, kind: str) -> str:
    """A starting body for an article written from a case: the problem and how it was resolved."""
    problem = case.description.strip() or case.title
    resolution = resolution_text(case).strip() or "_Describe the fix or workaround that resolved the case._"
    parts = ["## Problem", "", problem, "", "## Resolution", "", resolution, ""]
    if kind == Kind.RUNBOOK:
        # Internal notes may go into an internal runbook, never into a customer-facing article.
        bodies = (
            CaseEvent.objects.filter(case=case, kind=EventKind.INTERNAL_NOTE)
            .order_by("created_at", "id")
            .values_list("body", flat=True)
        )
        notes = [n.strip() for n in bodies if n.strip()]
        if notes:
            parts += ["## Internal notes", "", *[f"- {n}" for n in notes], ""]
    return "\n".join(parts)


def create_from_case(
    case: Case,
    *,
    actor: User,
    now: dt.datetime,
    kind: str = Kind.ARTICLE,
    title: str | None = None,
) -> Article:
    """Draft an article prefilled from the case's resolution, linked to it as "created from"."""
    _require_agent(actor)
    if kind not in Kind.values:
        raise DomainError(f"“{kind}” is not a kind of article; use article or runbook.", field="kind")
    with transaction.atomic():
        case = Case.objects.select_for_update().get(pk=case.pk)
        if case.status == CaseStatus.CLOSED:
            raise DomainError(f"{case.key} is closed and can no longer be changed.")
        article = create_draft(
            title=(title or case.title).strip()[:MAX_TITLE],
            kind=kind,
            body_markdown=draft_body_from_case(case, kind=kind),
            product_area=case.product_area,
            tags=list(case.tags.values_list("name", flat=True)),
            actor=actor,
            now=now,
            created_from_case=case,
        )
        _link(article, case, actor=actor, now=now, relation=LinkRelation.CREATED_FROM)
    return article


# --- Staleness ------------------------------------------------------------------------------------


def _stale_recipients(article: Article) -> list[User]:
    if article.owner is not None and article.owner.is_active:
        return [article.owner]
    # Nobody owns it any more: the managers decide who takes it over.
    return active_managers()


def flag_stale(*, now: dt.datetime, batch: int = 500) -> int:
    """Flag published articles past their review date and tell their owners; returns how many it flagged.

    Each article is claimed with a conditional UPDATE on (not yet flagged, same review cycle), so it is
    flagged and its owner told once per cycle, however many workers run the sweep at once.
    """
    candidates = list(
        Article.objects.filter(
            status=ArticleStatus.PUBLISHED, review_due_at__lte=now, stale_flagged_at__isnull=True
        )
        .order_by("review_due_at", "id")
        .values_list("id", "review_cycle")[:batch]
    )
    flagged = 0
    for article_id, cycle in candidates:
        with transaction.atomic():
            claimed = Article.objects.filter(
                pk=article_id,
                status=ArticleStatus.PUBLISHED,
                review_cycle=cycle,
                review_due_at__lte=now,
                stale_flagged_at__isnull=True,
            ).update(stale_flagged_at=now)
            if claimed != 1:
                continue
            article = Article.objects.select_related("owner").get(pk=article_id)
            _tell_review_due(article, cycle=cycle, now=now)
            flagged += 1
    return flagged


def _tell_review_due(article: Article, *, cycle: int, now: dt.datetime) -> None:
    url = article.get_absolute_url()
    title = f"Review due: “{article.title}”"
    recipients = _stale_recipients(article)
    zones = zones_of(recipients)  # each person reads the date in their own zone
    no_mail = email_opt_outs(user_ids=[r.pk for r in recipients])
    for recipient in recipients:
        due = format_instant(article.review_due_at, zones[recipient.pk], fmt=DAY_FORMAT)
        body = (
            f"The {article.get_kind_display().lower()} “{article.title}” was due for review on "
            f"{due}. Check it is still right, then update it or confirm the review."
        )
        created = notify(
            recipient=recipient,
            kind=STALE_NOTIFICATION,
            title=title,
            body=body,
            url=url,
            now=now,
            dedupe_key=f"kb-review:{article.pk}:{cycle}",
        )
        if created is not None and recipient.email and recipient.pk not in no_mail:
            outbox.enqueue(
                kind=MailKind.NOTIFICATION,
                subject=f"[SupportDesk] {title}",
                body=f"{body}\n\n{settings.SITE_URL}{url}",
                to=[recipient.email],
                dedupe_key=f"kb-review:{article.pk}:{cycle}:{recipient.pk}",
                now=now,
            )
