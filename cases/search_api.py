"""``GET /api/cases/search/?q=...``: case search in the REST API, with the queue's filters.

The same search as the page (cases.search): open and closed cases, ranked, with a highlighted
snippet per result; page-number pagination (a ranked list has no stable keyset), at most
``SEARCH_LIMIT`` results ranked.
"""

from __future__ import annotations

from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response

from supportdesk.core.api import IsSupportStaff

from . import search as case_search
from . import selectors
from .api import AUTH_ERRORS, CaseSerializer, _bad_request, _validation_error
from .search_views import CaseSearchFilter, query_problem, sees_internal_notes


class CaseSearchResultSerializer(CaseSerializer):
    """A matching case: what a result row shows, its rank and snippet."""

    rank = serializers.FloatField(source="search_rank", read_only=True, help_text="Higher is a better match.")
    snippet = serializers.SerializerMethodField(help_text="What matched, as plain text.")
    snippet_html = serializers.SerializerMethodField(
        help_text="The snippet as HTML: escaped text, the matched words in <mark> elements."
    )

    class Meta(CaseSerializer.Meta):
        fields = [
            "key",
            "url",
            "web_url",
            "title",
            "status",
            "severity",
            "organisation",
            "requester",
            "assignee",
            "team",
            "product_area",
            "tags",
            "created_at",
            "updated_at",
            "closed_at",
            "rank",
            "snippet",
            "snippet_html",
        ]
        read_only_fields = fields

    def _snippet(self, case) -> str:
        cache = self.context.setdefault("snippets", {})
        if case.pk not in cache:
            cache[case.pk] = case_search.snippet_text(case, self.context["q"])
        return cache[case.pk]

    def get_snippet(self, case) -> str:
        return case_search.markers_to_plain(self._snippet(case))

    def get_snippet_html(self, case) -> str:
        return str(case_search.markers_to_html(self._snippet(case)))


class SearchPagination(PageNumberPagination):
    django_paginator_class = case_search.SearchPaginator
    page_size = 25
    page_size_query_param = "page_size"
    max_page_size = 100

    def paginate_queryset(self, queryset, request, view=None):
        raw = request.query_params.get(self.page_size_query_param)
        if raw not in (None, "") and not (raw.isascii() and raw.isdigit() and int(raw) >= 1):
            raise ValidationError({self.page_size_query_param: ["Give a whole number of at least 1."]})
        try:
            return super().paginate_queryset(queryset, request, view)
        except NotFound as exc:
            raise ValidationError({self.page_query_param: [str(exc.detail)]}) from exc

    def get_paginated_response(self, data) -> Response:
        assert self.page is not None  # paginate_queryset ran
        paginator = self.page.paginator
        assert isinstance(paginator, case_search.SearchPaginator)
        return Response(
            {
                "count": paginator.count,
                "count_capped": paginator.count_capped,
                "next": self.get_next_link(),
                "previous": self.get_previous_link(),
                "results": data,
            }
        )

    def get_paginated_response_schema(self, schema: dict) -> dict:
        page = super().get_paginated_response_schema(schema)
        page["properties"]["count_capped"] = {
            "type": "boolean",
            "description": f"More cases matched than the {case_search.SEARCH_LIMIT} newest matches ranked "
            "here (`count` stops there): add words or filters to reach older ones.",
        }
        page["required"] = [*page.get("required", ["count", "results"]), "count_capped"]
        return page


SearchError = _validation_error("CaseSearch", ["q", "page", "page_size", *CaseSearchFilter.base_filters])
Q_PARAMETER = OpenApiParameter(
    "q",
    OpenApiTypes.STR,
    OpenApiParameter.QUERY,
    required=True,
    description='What to search for (websearch syntax on PostgreSQL: `"exact phrase"`, `or`, `-word`); '
    f"at most {case_search.MAX_QUERY_CHARS} characters. Words of the title, description, customer mails, "
    "public replies and internal notes; keys, organisations, contacts and tags, also in part.",
)


class CaseSearchView(generics.ListAPIView):
    """Search cases; the queue's filters narrow the search (open and closed cases unless ``state``)."""

    permission_classes = [IsSupportStaff]
    serializer_class = CaseSearchResultSerializer
    pagination_class = SearchPagination
    filter_backends = [DjangoFilterBackend]
    filterset_class = CaseSearchFilter

    def get_queryset(self):
        return selectors.case_list()

    @extend_schema(
        summary="Search cases",
        description="Full-text search over open and closed cases, best match first, each with a highlighted "
        "snippet. Combine with any filter of `GET /api/cases/`. Page with `page` and `page_size`.",
        parameters=[Q_PARAMETER],
        responses={200: CaseSearchResultSerializer(many=True), **_bad_request(SearchError), **AUTH_ERRORS},
    )
    def get(self, request, *args, **kwargs):
        return self.list(request, *args, **kwargs)

    def list(self, request, *args, **kwargs):
        problem = query_problem(request.query_params.get("q"))
        if problem is not None:
            raise ValidationError({"q": [problem]})
        q = case_search.clean_query(request.query_params.get("q"))
        queryset = case_search.search(
            self.filter_queryset(self.get_queryset()), q, staff=sees_internal_notes(request.user)
        )
        page = self.paginate_queryset(queryset)
        context = {**self.get_serializer_context(), "q": q}
        return self.get_paginated_response(self.serializer_class(page, many=True, context=context).data)
