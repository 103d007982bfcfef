"""The knowledge pages: search, an article with its revisions and votes, the editor, and the actions
the case page uses (link an article, draft one from the case).

Views read through knowledge.selectors and write through knowledge.services only, with one ``now``
per request. Domain errors become a message (and a form error) on the page; a role that may not take
a step gets 403.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from cases.models import Case
from cases.selectors import case_by_key
from supportdesk.core.decorators import AuthenticatedHttpRequest, role_required
from supportdesk.core.errors import DomainError
from supportdesk.core.roles import is_agent, is_manager

from . import selectors, services
from .forms import ArticleForm, CreateFromCaseForm, LinkForm, SearchForm, VoteForm
from .models import Article, ArticleStatus, Kind
from .pagination import CappedCountPaginator
from .plaintext import markdown_to_plain
from .rendering import diff_lines, render_markdown

PAGE_SIZE = 20


# Logged-in agents, managers and admins only: anonymous -> login, anyone else -> 403.
staff_required = role_required(is_agent, "The knowledge base is for support agents and managers.")


def _article_or_404(slug: str) -> Article:
    article = selectors.article_by_slug(slug)
    if article is None:
        raise Http404("No such article.")
    return article


def _case_or_404(key: str) -> Case:
    case = case_by_key(key)
    if case is None:
        raise Http404(f"No case {key}.")
    return case


def _refuse(request: AuthenticatedHttpRequest, error: DomainError, what: str) -> None:
    if error.status_code == 403:
        raise PermissionDenied(error.message)
    messages.error(request, f"{what}: {error.message}")


# --- Search ----------------------------------------------------------------------------------------


@dataclass
class Result:
    article: Article
    title_html: str
    snippet_html: str


@staff_required
@require_GET
def index(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = SearchForm(request.GET or None)
    filters: dict = {}
    if form.is_bound:
        if not form.is_valid():
            messages.warning(
                request, "Some filters were not understood and are ignored; see the marked fields."
            )
        # The fields that were understood still apply.
        filters = {name: value for name, value in form.cleaned_data.items() if value}
    q = filters.pop("q", "")
    articles = selectors.search_articles(q, **filters)
    page = CappedCountPaginator(articles, PAGE_SIZE).get_page(request.GET.get("page"))
    results = []
    for article in page.object_list:
        snippet = selectors.snippet_html(article, q)
        results.append(Result(article=article, title_html=snippet.title, snippet_html=snippet.body))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "knowledge/index.html",
        {"form": form, "q": q, "page": page, "results": results, "query_string": query.urlencode()},
    )


# --- Writing ---------------------------------------------------------------------------------------


@staff_required
@require_http_methods(["GET", "HEAD", "POST"])
def create(request: AuthenticatedHttpRequest) -> HttpResponse:
    if request.method != "POST":
        initial = {"owner": request.user.get_username(), "review_interval_days": 180}
        if request.GET.get("kind") in Kind.values:
            initial["kind"] = request.GET["kind"]
        return render(request, "knowledge/edit.html", {"form": ArticleForm(initial=initial), "article": None})
    form = ArticleForm(request.POST)
    if form.is_valid():
        kwargs = form.service_kwargs()
        try:
            article = services.create_draft(actor=request.user, now=timezone.now(), **kwargs)
        except DomainError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            messages.success(request, f"Draft “{article.title}” saved.")
            return redirect(article)
    messages.error(request, "The article was not saved: please correct the marked fields.")
    return render(request, "knowledge/edit.html", {"form": form, "article": None}, status=400)


@staff_required
@require_http_methods(["GET", "HEAD", "POST"])
def edit(request: AuthenticatedHttpRequest, slug: str) -> HttpResponse:
    article = _article_or_404(slug)
    if article.status == ArticleStatus.RETIRED:
        messages.error(request, "A retired article can no longer be changed.")
        return redirect(article)
    if request.method != "POST":
        return render(
            request, "knowledge/edit.html", {"form": ArticleForm(article=article), "article": article}
        )
    form = ArticleForm(request.POST, article=article)
    status = 400
    if form.is_valid():
        old_revision = article.current_revision
        try:
            article = services.update(
                article,
                actor=request.user,
                now=timezone.now(),
                expected_revision=form.cleaned_data["base_revision"],
                note=form.cleaned_data["note"],
                **form.service_kwargs(),
            )
        except DomainError as exc:
            if exc.status_code == 403:
                raise PermissionDenied(exc.message) from exc
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
            status = exc.status_code
        else:
            if article.current_revision == old_revision:
                messages.info(request, "Saved; the text did not change, so no new revision was made.")
            elif article.status == ArticleStatus.PUBLISHED:
                messages.success(
                    request,
                    f"Saved as revision {article.current_revision}. Readers see the published revision until "
                    "a manager publishes the changes.",
                )
            else:
                messages.success(request, f"Saved as revision {article.current_revision}.")
            return redirect(article)
    messages.error(request, "The article was not saved: please correct the marked fields.")
    fresh = _article_or_404(slug)
    return render(request, "knowledge/edit.html", {"form": form, "article": fresh}, status=status)


# --- Reading ---------------------------------------------------------------------------------------


@staff_required
@require_GET
def detail(request: AuthenticatedHttpRequest, slug: str) -> HttpResponse:
    article = _article_or_404(slug)
    now = timezone.now()
    user = request.user
    show_latest = request.GET.get("show") == "latest"
    published = article.published_revision if article.status == ArticleStatus.PUBLISHED else None
    if published is not None and not show_latest:
        shown_title, shown_body, shown_number = published.title, published.body_markdown, published.number
    else:
        shown_title, shown_body, shown_number = article.title, article.body_markdown, article.current_revision
    is_owner = article.owner_id == user.pk
    manager = is_manager(user)
    status = article.status
    can = {
        "edit": status != ArticleStatus.RETIRED,
        "submit": status == ArticleStatus.DRAFT,
        "return_to_draft": status == ArticleStatus.IN_REVIEW and (manager or is_owner),
        "publish": manager
        and (status in (ArticleStatus.DRAFT, ArticleStatus.IN_REVIEW) or article.has_unpublished_changes),
        "mark_reviewed": status == ArticleStatus.PUBLISHED and (manager or is_owner),
        "retire": manager and status != ArticleStatus.RETIRED,
        "vote": status == ArticleStatus.PUBLISHED and published is not None,
    }
    context = {
        "article": article,
        "shown_title": shown_title,
        "shown_html": render_markdown(shown_body),
        "shown_number": shown_number,
        "showing_published": published is not None and not show_latest,
        "review_overdue": article.is_review_overdue(now),
        "votes": selectors.vote_counts(article),
        "my_vote": selectors.my_vote(article, user),
        "links": selectors.article_case_links(article),
        "revisions": selectors.revision_list(article)[:10],
        "can": can,
        "tags": [t.name for t in article.tags.all()],
    }
    return render(request, "knowledge/detail.html", context)


@staff_required
@require_GET
def customer_text(request: AuthenticatedHttpRequest, slug: str) -> HttpResponse:
    """The published text of a customer-facing article, as plain text to paste into a reply (its
    Markdown converted: no markup, links as "text (url)")."""
    article = _article_or_404(slug)
    revision = article.published_revision
    if article.kind != Kind.ARTICLE or article.status != ArticleStatus.PUBLISHED or revision is None:
        raise Http404("Only a published customer-facing article has text for customers.")
    response = HttpResponse(
        markdown_to_plain(revision.body_markdown), content_type="text/plain; charset=utf-8"
    )
    response["X-Content-Type-Options"] = "nosniff"
    return response


@staff_required
@require_GET
def revisions(request: AuthenticatedHttpRequest, slug: str) -> HttpResponse:
    article = _article_or_404(slug)
    return render(
        request,
        "knowledge/revisions.html",
        {"article": article, "revisions": selectors.revision_list(article)},
    )


@staff_required
@require_GET
def revision_detail(request: AuthenticatedHttpRequest, slug: str, number: int) -> HttpResponse:
    article = _article_or_404(slug)
    rev = selectors.revision(article, number)
    if rev is None:
        raise Http404("No such revision.")
    against_number = number - 1
    raw_against = request.GET.get("against")
    if raw_against is not None:
        try:
            against_number = int(raw_against)
        except ValueError:
            messages.warning(request, "“against” must be a revision number; comparing with the previous one.")
    base = selectors.revision(article, against_number) if against_number >= 1 else None
    if raw_against is not None and base is None and against_number != number - 1:
        messages.warning(request, f"There is no revision {against_number}; comparing with the previous one.")
        base = selectors.revision(article, number - 1)
    old_title, old_body = (base.title, base.body_markdown) if base else ("", "")
    context = {
        "article": article,
        "rev": rev,
        "base": base,
        "title_changed": base is not None and base.title != rev.title,
        "diff": diff_lines(
            old_body,
            rev.body_markdown,
            old_label=f"revision {base.number}" if base else "empty",
            new_label=f"revision {rev.number}",
        ),
        "rendered": render_markdown(rev.body_markdown),
        "can_restore": article.status != ArticleStatus.RETIRED and number != article.current_revision,
    }
    return render(request, "knowledge/revision.html", context)


# --- Workflow actions ------------------------------------------------------------------------------

_ACTIONS = {
    "submit": (services.submit_for_review, "Submitted for review: a manager can now publish it."),
    "return-to-draft": (services.return_to_draft, "Sent back to draft."),
    "publish": (services.publish, "Published: readers now see this revision."),
    "mark-reviewed": (services.mark_reviewed, "Review confirmed: the next review is due in {days} days."),
    "retire": (services.retire, "Retired: the article is no longer suggested or searched by default."),
}


def _action_view(name: str):
    service, success = _ACTIONS[name]

    @staff_required
    @require_POST
    def view(request: AuthenticatedHttpRequest, slug: str) -> HttpResponse:
        article = _article_or_404(slug)
        try:
            article = service(article, actor=request.user, now=timezone.now())
        except DomainError as exc:
            _refuse(request, exc, "Not done")
        else:
            messages.success(request, success.format(days=article.review_interval_days))
        return redirect(article)

    view.__name__ = f"{name.replace('-', '_')}_view"
    return view


submit = _action_view("submit")
return_to_draft = _action_view("return-to-draft")
publish = _action_view("publish")
mark_reviewed = _action_view("mark-reviewed")
retire = _action_view("retire")


@staff_required
@require_POST
def restore(request: AuthenticatedHttpRequest, slug: str, number: int) -> HttpResponse:
    article = _article_or_404(slug)
    try:
        article = services.restore_revision(article, number, actor=request.user, now=timezone.now())
    except DomainError as exc:
        _refuse(request, exc, "Not restored")
    else:
        messages.success(request, f"Revision {number} restored as revision {article.current_revision}.")
    return redirect(article)


@staff_required
@require_POST
def vote(request: AuthenticatedHttpRequest, slug: str) -> HttpResponse:
    article = _article_or_404(slug)
    form = VoteForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose “Helpful” or “Not helpful”.")
        return redirect(article)
    try:
        services.vote(article, actor=request.user, helpful=form.cleaned_data["helpful"], now=timezone.now())
    except DomainError as exc:
        _refuse(request, exc, "Vote not recorded")
    else:
        messages.success(request, "Thanks: your vote is recorded.")
    return redirect(article)


# --- From the case page ----------------------------------------------------------------------------


@staff_required
@require_POST
def link_case(request: AuthenticatedHttpRequest, key: str) -> HttpResponse:
    """Link an article to the case as "used to resolve" (the case page's suggestion button)."""
    case = _case_or_404(key)
    form = LinkForm(request.POST)
    article = selectors.article_by_slug(form.cleaned_data["article"]) if form.is_valid() else None
    if article is None:
        messages.error(request, "Not linked: choose an article.")
        return redirect(case)
    try:
        _link, created = services.link_to_case(article, case, actor=request.user, now=timezone.now())
    except DomainError as exc:
        _refuse(request, exc, "Not linked")
    else:
        if created:
            messages.success(request, f"Linked “{article.title}” to {case.key} as used to resolve it.")
        else:
            messages.info(request, f"“{article.title}” was already linked to {case.key}.")
    return redirect(case)


@staff_required
@require_POST
def create_from_case(request: AuthenticatedHttpRequest, key: str) -> HttpResponse:
    """Draft an article from the case's resolution and open it in the editor."""
    case = _case_or_404(key)
    form = CreateFromCaseForm(request.POST)
    kind = form.cleaned_data["kind"] if form.is_valid() else Kind.ARTICLE
    try:
        article = services.create_from_case(case, actor=request.user, now=timezone.now(), kind=kind)
    except DomainError as exc:
        _refuse(request, exc, "No article drafted")
        return redirect(case)
    messages.success(request, f"Draft created from {case.key}: edit it, then submit it for review.")
    return redirect("knowledge:edit", slug=article.slug)
