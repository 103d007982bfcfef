"""Template helpers for showing knowledge on other apps' pages (the case page's suggestions)."""

from __future__ import annotations

from dataclasses import dataclass, field

from django import template

from cases.models import Case

from .. import selectors
from ..models import Article, ArticleCaseLink, Kind
from ..plaintext import markdown_to_plain

register = template.Library()


@dataclass
class CaseKnowledge:
    suggestions: list[Article] = field(default_factory=list)
    links: list[ArticleCaseLink] = field(default_factory=list)


@register.simple_tag
def knowledge_for_case(case: Case, limit: int = 5) -> CaseKnowledge:
    """The articles linked to ``case`` and the published ones suggested for it (two or three queries)."""
    if case is None or case.pk is None:
        return CaseKnowledge()
    return CaseKnowledge(
        suggestions=selectors.suggest_for_case(case, limit=limit), links=list(selectors.case_links(case))
    )


@register.filter
def customer_text(article: Article) -> str:
    """The published text of a customer-facing article as plain text for a reply e-mail ("" for
    runbooks: they never go to customers)."""
    if article.kind != Kind.ARTICLE or article.status != "published" or article.published_revision is None:
        return ""
    return markdown_to_plain(article.published_revision.body_markdown)
