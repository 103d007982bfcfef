"""The case search page: full text over open and closed cases, narrowed by the queue's filters.

``/cases/search/?q=...&<queue filters>`` lists the matches ranked, with highlighted snippets, in pages
whose query count does not depend on their size (cases.search decides the joins and ranks only the
matching ids; snippets are computed for the page's rows only).
"""

from __future__ import annotations

from dataclasses import dataclass

import django_filters
from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.safestring import SafeString
from django.views.decorators.http import require_safe

from supportdesk.core.decorators import role_required
from supportdesk.core.roles import is_agent

from . import search as case_search
from . import selectors
from .filters import CaseFilter
from .models import Case, Severity, Tier

SEARCH_PAGE_SIZE = 25
MAX_PAGE_SIZE = 100

agent_required = role_required(is_agent, "Case search is for support agents and managers.")


class CaseSearchFilter(CaseFilter):
    """The queue's filters; ``q`` is the search text, applied by ``cases.search`` (not as the
    queue's title filter)."""

    q = django_filters.CharFilter(method="filter_text", label="Search cases")

    def filter_text(self, queryset, name, value):
        return queryset


def sees_internal_notes(user) -> bool:
    """Whether a search by ``user`` looks into internal notes: staff only, never a customer."""
    return is_agent(user)


def query_problem(raw: str | None) -> str | None:
    """Why the search text cannot be searched, or None."""
    text = " ".join((raw or "").split())
    if not text:
        return "Type what to search for (a word, a key such as CASE-12, an organisation or a contact)."
    if len(text) > case_search.MAX_QUERY_CHARS:
        return f"Search for at most {case_search.MAX_QUERY_CHARS} characters (this is {len(text)})."
    return None


def search_filter(request: HttpRequest) -> CaseSearchFilter:
    """The filters of this request; open and closed cases unless the request says otherwise."""
    data = request.GET.copy()
    if data.get("status") or not data.get("state"):
        data["state"] = "all"
    case_filter = CaseSearchFilter(data, queryset=selectors.case_list(), request=request)
    return case_filter


@dataclass(frozen=True)
class Result:
    case: Case
    title_html: SafeString
    snippet_html: SafeString


def _page_size(raw: str | None) -> int:
    try:
        size = int(raw or SEARCH_PAGE_SIZE)
    except ValueError:
        return SEARCH_PAGE_SIZE
    return max(1, min(size, MAX_PAGE_SIZE))


@agent_required
@require_safe
def search(request: HttpRequest) -> HttpResponse:
    case_filter = search_filter(request)
    form = case_filter.form
    for name in ("status", "severity"):
        field = form.fields[name]
        field.widget = forms.CheckboxSelectMultiple(choices=field.choices)
    form.fields["severity"].widget.choices = [(s.value, s.value) for s in Severity]
    for name in ("organisation", "assignee", "team"):
        form.fields[name].empty_label = "Any"
    form.fields["tier"].empty_label = "Any"
    form.fields["tier"].choices = Tier.choices  # the field's choices iterator adds the empty label
    form.fields["q"].widget = forms.TextInput(
        attrs={"type": "search", "maxlength": case_search.MAX_QUERY_CHARS, "autofocus": True}
    )

    raw = request.GET.get("q", "")
    problem = query_problem(raw) if "q" in request.GET else None
    q = case_search.clean_query(raw)
    page = None
    results: list[Result] = []
    if q and problem is None:
        if not form.is_valid():
            messages.warning(
                request, "Some filters were not understood and are ignored; see the marked fields."
            )
        found = case_search.search(case_filter.qs, q, staff=sees_internal_notes(request.user))
        paginator = case_search.SearchPaginator(found, _page_size(request.GET.get("page_size")))
        page = paginator.get_page(request.GET.get("page"))
        results = [
            Result(
                case=case,
                title_html=case_search.title_html(case.title, q),
                snippet_html=case_search.snippet_html(case, q),
            )
            for case in page.object_list
        ]
    elif problem is not None:
        form.is_valid()
        form.add_error("q", problem)
    data = form.data
    return render(
        request,
        "cases/search.html",
        {
            "filter_form": form,
            "q": q,
            "page": page,
            "results": results,
            "mine_checked": data.get("mine") in ("true", "True", "1"),
            "unassigned_checked": data.get("unassigned") in ("true", "True", "1"),
            "limit": case_search.SEARCH_LIMIT,
        },
        # A blank search is a prompt; a search text that cannot be searched is a bad request.
        status=400 if problem and q else 200,
    )
