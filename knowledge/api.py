"""The REST API of the knowledge base: articles (search, filters, revisions, workflow, votes) and the
articles linked to a case.

Every write goes through ``knowledge.services``; domain errors become 400/403/409 in the project's
exception handler. Support staff only: engineers get 403, anonymous callers 401.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db.models import QuerySet
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from cases.api import TagListField as CaseTagListField
from cases.models import Case, Tag
from cases.selectors import case_by_key
from supportdesk.core import api as core_api
from supportdesk.core.idempotency import idempotent
from supportdesk.core.roles import Role
from supportdesk.core.schema import FieldErrorsField

from . import selectors, services
from .models import Article, ArticleCaseLink, ArticleRevision, ArticleStatus, Kind, LinkRelation
from .pagination import COUNT_CAP, CappedCountPaginator
from .rendering import diff_lines, render_markdown


class IsSupportStaff(core_api.IsSupportStaff):
    """Knowledge is for support staff, not engineering."""

    message = "Only support staff (agents and managers) can use the knowledge base."


class KnowledgePagination(PageNumberPagination):
    """Page numbers (search results are ordered by rank, not by a key); ``count`` stops at 1,000."""

    django_paginator_class = CappedCountPaginator
    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100

    def get_paginated_response(self, data) -> Response:
        response = super().get_paginated_response(data)
        assert self.page is not None  # paginate_queryset ran
        paginator = self.page.paginator
        assert isinstance(paginator, CappedCountPaginator)
        response.data["count_capped"] = paginator.count_capped
        return response

    def get_paginated_response_schema(self, schema: dict) -> dict:
        described = super().get_paginated_response_schema(schema)
        described["properties"]["count"]["description"] = f"Matches, counted up to {COUNT_CAP:,}."
        described["properties"]["count_capped"] = {
            "type": "boolean",
            "description": f"True when there are more than {COUNT_CAP:,} matches (refine the search).",
        }
        described["required"] = [*described.get("required", []), "count_capped"]
        return described


# --- Fields -----------------------------------------------------------------------------------------


class StrictCharField(serializers.CharField):
    """A string and nothing else (DRF's CharField would turn 12 into "12")."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class NamedChoiceField(serializers.ChoiceField):
    """A choice documented as its own named enum component (``ArticleStatusEnum``), so it never
    collides with other apps' enums of fields with the same name (a case's ``status``)."""

    def __init__(self, *, enum_name: str, **kwargs):
        self.enum_name = enum_name
        super().__init__(**kwargs)


class NamedChoiceFieldExtension(OpenApiSerializerFieldExtension):
    target_class = NamedChoiceField
    match_subclasses = True

    def get_name(self) -> str:
        return self.target.enum_name

    def map_serializer_field(self, auto_schema, direction) -> dict:
        choices = self.target.choices
        return {
            "type": "string",
            "enum": list(choices),
            "description": "\n".join(f"* `{value}` - {label}" for value, label in choices.items()),
        }


def status_field(**kwargs) -> NamedChoiceField:
    return NamedChoiceField(enum_name="ArticleStatusEnum", choices=ArticleStatus.choices, **kwargs)


def kind_field(**kwargs) -> NamedChoiceField:
    return NamedChoiceField(enum_name="ArticleKindEnum", choices=Kind.choices, **kwargs)


class StrictBooleanField(serializers.BooleanField):
    """true or false only (DRF's accepts "yes", 1, "on", ...)."""

    default_error_messages = {"invalid": "Send true or false."}

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


class StrictIntegerField(serializers.IntegerField):
    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class StaffUsernameField(serializers.SlugRelatedField):
    default_error_messages = {
        "does_not_exist": "There is no support agent with the username “{value}”.",
        "invalid": "Give a username.",
    }

    def __init__(self, **kwargs):
        staff = (
            get_user_model()
            .objects.filter(is_active=True, groups__name__in=[Role.AGENT, Role.MANAGER, Role.ADMIN])
            .distinct()
        )
        super().__init__(slug_field="username", queryset=staff, **kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class TagListField(CaseTagListField):
    """The case tag field (the rule: cases.tags), with child errors per item as the schema says."""

    per_item_errors = True


# --- Output -----------------------------------------------------------------------------------------


def _web_path(name: str, *args: Any) -> str | None:
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return None


def _absolute(request, path: str | None) -> str | None:
    if path is None:
        return None
    return request.build_absolute_uri(path) if request is not None else path


class ArticleSummarySerializer(serializers.ModelSerializer):
    """An article in a list or search result (no body)."""

    url = serializers.HyperlinkedIdentityField(
        view_name="knowledge_api:article-detail", lookup_field="slug", lookup_url_kwarg="slug"
    )
    web_url = serializers.SerializerMethodField(help_text="The article's page in the browser.")
    kind = kind_field(read_only=True)
    status = status_field(read_only=True)
    owner: serializers.SlugRelatedField[User] = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )
    tags: serializers.SlugRelatedField[Tag] = serializers.SlugRelatedField(
        slug_field="name", many=True, read_only=True
    )
    published_revision = serializers.IntegerField(
        source="published_revision.number", read_only=True, allow_null=True, default=None
    )
    rank = serializers.FloatField(
        source="search_rank",
        read_only=True,
        default=None,
        allow_null=True,
        help_text="Search relevance (higher is better); null when the list is not a search.",
    )
    title_html = serializers.SerializerMethodField(help_text="The title, escaped, with matches in <mark>.")
    snippet_html = serializers.SerializerMethodField(help_text="An escaped excerpt with matches in <mark>.")

    class Meta:
        model = Article
        fields = [
            "slug",
            "url",
            "web_url",
            "kind",
            "title",
            "status",
            "product_area",
            "tags",
            "owner",
            "current_revision",
            "published_revision",
            "updated_at",
            "published_at",
            "review_due_at",
            "stale_flagged_at",
            "rank",
            "title_html",
            "snippet_html",
        ]
        read_only_fields = fields

    def _snippet(self, article: Article) -> selectors.Snippet:
        cache = self.context.setdefault("_snippets", {})
        if article.pk not in cache:
            cache[article.pk] = selectors.snippet_html(article, self.context.get("q", ""))
        return cache[article.pk]

    def get_web_url(self, article: Article) -> str | None:
        return _absolute(self.context.get("request"), _web_path("knowledge:detail", article.slug))

    def get_title_html(self, article: Article) -> str:
        return str(self._snippet(article).title)

    def get_snippet_html(self, article: Article) -> str:
        return str(self._snippet(article).body)


class VoteCountsSerializer(serializers.Serializer):
    helpful = serializers.IntegerField(help_text="Helpful votes, all revisions.")
    not_helpful = serializers.IntegerField()
    revision_helpful = serializers.IntegerField(help_text="Helpful votes on the published revision.")
    revision_not_helpful = serializers.IntegerField()


class ArticleSerializer(serializers.ModelSerializer):
    """One article: the working copy (latest revision) and what readers see (the published revision)."""

    url = serializers.HyperlinkedIdentityField(
        view_name="knowledge_api:article-detail", lookup_field="slug", lookup_url_kwarg="slug"
    )
    web_url = serializers.SerializerMethodField()
    kind = kind_field(read_only=True)
    status = status_field(read_only=True)
    owner: serializers.SlugRelatedField[User] = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )
    tags: serializers.SlugRelatedField[Tag] = serializers.SlugRelatedField(
        slug_field="name", many=True, read_only=True
    )
    body_html = serializers.SerializerMethodField(help_text="The working copy rendered and sanitised.")
    published_revision = serializers.IntegerField(
        source="published_revision.number", read_only=True, allow_null=True, default=None
    )
    published_body_markdown = serializers.SerializerMethodField(
        help_text="What readers see (null until published)."
    )
    has_unpublished_changes = serializers.BooleanField(read_only=True)
    created_from_case = serializers.SerializerMethodField(
        help_text="The key of the case it was drafted from."
    )
    votes = serializers.SerializerMethodField()

    class Meta:
        model = Article
        fields = [
            "slug",
            "url",
            "web_url",
            "kind",
            "title",
            "status",
            "product_area",
            "tags",
            "owner",
            "body_markdown",
            "body_html",
            "current_revision",
            "published_revision",
            "published_body_markdown",
            "has_unpublished_changes",
            "created_at",
            "updated_at",
            "published_at",
            "retired_at",
            "review_interval_days",
            "review_due_at",
            "stale_flagged_at",
            "created_from_case",
            "votes",
        ]
        read_only_fields = fields

    def get_web_url(self, article: Article) -> str | None:
        return _absolute(self.context.get("request"), _web_path("knowledge:detail", article.slug))

    def get_body_html(self, article: Article) -> str:
        return str(render_markdown(article.body_markdown))

    def get_published_body_markdown(self, article: Article) -> str | None:
        if article.status != ArticleStatus.PUBLISHED or article.published_revision is None:
            return None
        return article.published_revision.body_markdown

    def get_created_from_case(self, article: Article) -> str | None:
        return f"CASE-{article.created_from_case_id}" if article.created_from_case_id else None

    @extend_schema_field(VoteCountsSerializer)
    def get_votes(self, article: Article) -> dict:
        return VoteCountsSerializer(selectors.vote_counts(article)).data


class RevisionSerializer(serializers.ModelSerializer):
    author: serializers.SlugRelatedField[User] = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )

    class Meta:
        model = ArticleRevision
        fields = [
            "number",
            "title",
            "product_area",
            "author",
            "author_name",
            "created_at",
            "note",
            "restored_from",
        ]
        read_only_fields = fields


class RevisionDetailSerializer(RevisionSerializer):
    diff = serializers.SerializerMethodField(
        help_text="Unified diff of the body against the previous revision."
    )

    class Meta(RevisionSerializer.Meta):
        fields = [*RevisionSerializer.Meta.fields, "body_markdown", "diff"]
        read_only_fields = fields

    def get_diff(self, revision: ArticleRevision) -> str:
        previous = self.context.get("previous")
        old = previous.body_markdown if previous is not None else ""
        label = f"revision {previous.number}" if previous is not None else "empty"
        return "\n".join(
            line.text for line in diff_lines(old, revision.body_markdown, old_label=label, new_label="")
        )


class CaseLinkSerializer(serializers.ModelSerializer):
    article = ArticleSummarySerializer(read_only=True)
    case = serializers.SerializerMethodField()
    relation = NamedChoiceField(
        enum_name="ArticleLinkRelationEnum", choices=LinkRelation.choices, read_only=True
    )
    created_by: serializers.SlugRelatedField[User] = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )

    class Meta:
        model = ArticleCaseLink
        fields = ["article", "case", "relation", "created_by", "created_at"]
        read_only_fields = fields

    def get_case(self, link: ArticleCaseLink) -> str:
        return f"CASE-{link.case_id}"


# --- Input ------------------------------------------------------------------------------------------


def _check_slug(value: str) -> str:
    if not services.SLUG_RE.match(value):
        raise ValidationError("Use lower-case letters, digits and hyphens only, e.g. reset-sso-password.")
    if value in services.RESERVED_SLUGS:
        raise ValidationError(f"“{value}” is reserved; choose another slug.")
    return value


_ARTICLE_FIELD_HINTS = {
    "status": "The status changes with the submit, publish and retire actions.",
}


class ArticleCreateSerializer(core_api.RejectUnexpectedFields, serializers.Serializer):
    represented_fields = ArticleSerializer.Meta.fields
    field_hints = _ARTICLE_FIELD_HINTS
    kind = kind_field(default=Kind.ARTICLE)
    title = StrictCharField(max_length=services.MAX_TITLE)
    slug = StrictCharField(
        max_length=200, required=False, help_text="Made from the title when omitted; must be unique."
    )
    body_markdown = StrictCharField(
        required=False, allow_blank=True, default="", max_length=services.MAX_BODY, trim_whitespace=False
    )
    product_area = StrictCharField(required=False, allow_blank=True, default="", max_length=100)
    tags = TagListField(required=False, default=list)
    owner = StaffUsernameField(required=False, allow_null=True, default=None, help_text="Defaults to you.")
    review_interval_days = StrictIntegerField(required=False, min_value=1, max_value=3650)

    def validate_slug(self, value: str) -> str:
        return _check_slug(value)


class ArticleUpdateSerializer(core_api.RejectUnexpectedFields, serializers.Serializer):
    """Only the fields sent change; a change of title, body or product area is a new revision.
    Any other key (read-only, such as ``slug``, or unknown) is a 400 naming it."""

    represented_fields = ArticleSerializer.Meta.fields
    field_hints = _ARTICLE_FIELD_HINTS

    title = StrictCharField(max_length=services.MAX_TITLE)
    body_markdown = StrictCharField(allow_blank=True, max_length=services.MAX_BODY, trim_whitespace=False)
    product_area = StrictCharField(allow_blank=True, max_length=100)
    kind = kind_field()
    tags = TagListField(help_text="The complete new list of tags.")
    owner = StaffUsernameField(allow_null=True)
    review_interval_days = StrictIntegerField(min_value=1, max_value=3650)
    note = StrictCharField(
        allow_blank=True, max_length=300, help_text="What changed, kept with the revision."
    )
    revision = StrictIntegerField(
        min_value=1,
        required=False,
        help_text="The revision you edited; if someone saved a newer one you get 409, not an overwrite.",
    )


class ArticleQuerySerializer(serializers.Serializer):
    q = StrictCharField(required=False, allow_blank=True, max_length=300)
    kind = kind_field(required=False)
    status = status_field(required=False)
    product_area = StrictCharField(required=False, allow_blank=True, max_length=100)
    tag = StrictCharField(required=False, allow_blank=True, max_length=50)


class VoteSerializer(serializers.Serializer):
    helpful = StrictBooleanField(help_text="true: it helped; false: it did not.")


class RestoreSerializer(serializers.Serializer):
    revision = StrictIntegerField(
        min_value=1, help_text="The revision whose content becomes the latest again."
    )


class LinkCreateSerializer(serializers.Serializer):
    article = StrictCharField(max_length=200, help_text="The article's slug.")
    relation = NamedChoiceField(
        enum_name="ArticleLinkRequestRelationEnum",
        choices=[(LinkRelation.USED_TO_RESOLVE.value, LinkRelation.USED_TO_RESOLVE.label)],
        default=LinkRelation.USED_TO_RESOLVE,
        help_text="“created_from” links are made by drafting an article from the case.",
    )


class DraftFromCaseSerializer(serializers.Serializer):
    kind = kind_field(default=Kind.ARTICLE)
    title = StrictCharField(
        required=False, max_length=services.MAX_TITLE, help_text="Defaults to the case title."
    )


# --- Error bodies, for the schema -------------------------------------------------------------------


class KnowledgeErrorSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="What went wrong.")


def _validation_error(name: str, fields: list[str]) -> type[serializers.Serializer]:
    attrs: dict[str, Any] = {
        "detail": serializers.CharField(required=False, help_text="A message about the request as a whole."),
        "code": serializers.CharField(required=False),
        "__doc__": f"Validation errors for {name}: each field lists its messages.",
    }
    for field in fields:
        attrs[field] = FieldErrorsField(required=False)  # a list, or per item/sub-field
    return type(f"Knowledge{name}ValidationErrorSerializer", (serializers.Serializer,), attrs)


CreateError = _validation_error("ArticleCreate", list(ArticleCreateSerializer().fields))
UpdateError = _validation_error("ArticleUpdate", list(ArticleUpdateSerializer().fields))
QueryError = _validation_error("ArticleQuery", list(ArticleQuerySerializer().fields))
ActionError = _validation_error("ArticleAction", ["revision", "helpful"])
LinkError = _validation_error("CaseLink", ["article", "relation"])
DraftError = _validation_error("DraftFromCase", ["kind", "title"])

AUTH_ERRORS = {
    401: OpenApiResponse(
        KnowledgeErrorSerializer, description="Not authenticated (send a session cookie or a token)."
    ),
    403: OpenApiResponse(
        KnowledgeErrorSerializer,
        description="Not support staff, or your role may not take this step (e.g. publishing).",
    ),
}
NOT_FOUND = {404: OpenApiResponse(KnowledgeErrorSerializer, description="No such article, revision or case.")}
CONFLICT = {
    409: OpenApiResponse(
        KnowledgeErrorSerializer, description="Someone saved a newer revision: reload and retry."
    )
}
SLUG_PARAMETER = OpenApiParameter(
    "slug", OpenApiTypes.STR, OpenApiParameter.PATH, description="The article's slug."
)
KEY_PARAMETER = OpenApiParameter(
    "key", OpenApiTypes.STR, OpenApiParameter.PATH, description="The case key, e.g. CASE-12."
)


def _input(serializer_class, data) -> dict:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _workflow_schema(summary: str, description: str, request=None) -> Any:
    return extend_schema(
        summary=summary,
        description=description,
        parameters=[SLUG_PARAMETER],
        request=request,
        responses={
            200: ArticleSerializer,
            400: OpenApiResponse(ActionError, description="Not allowed in the article's current status."),
            **AUTH_ERRORS,
            **NOT_FOUND,
        },
    )


# --- Articles ---------------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(
        summary="List or search articles",
        description=(
            'Without `q`: recently updated first. With `q` (web-search syntax: words, "quoted phrases", '
            "`or`, `-excluded`): ranked by relevance, title matches above body matches, with highlighted "
            "`title_html`/`snippet_html`. Retired articles are left out unless `status=retired`."
        ),
        parameters=[
            OpenApiParameter("q", OpenApiTypes.STR, description="Search words."),
            OpenApiParameter("kind", OpenApiTypes.STR, enum=Kind.values),
            OpenApiParameter("status", OpenApiTypes.STR, enum=ArticleStatus.values),
            OpenApiParameter("product_area", OpenApiTypes.STR),
            OpenApiParameter("tag", OpenApiTypes.STR),
        ],
        responses={200: ArticleSummarySerializer(many=True), 400: QueryError, **AUTH_ERRORS},
    ),
    create=extend_schema(
        summary="Draft an article",
        request=ArticleCreateSerializer,
        responses={201: ArticleSerializer, 400: CreateError, **AUTH_ERRORS},
    ),
    retrieve=extend_schema(
        summary="Read an article",
        parameters=[SLUG_PARAMETER],
        responses={200: ArticleSerializer, **AUTH_ERRORS, **NOT_FOUND},
    ),
    partial_update=extend_schema(
        summary="Change an article",
        description=(
            "Only the fields sent change. A change of content is kept as a new revision; on a published "
            "article readers keep seeing the published revision until a manager publishes the changes."
        ),
        parameters=[SLUG_PARAMETER],
        request=ArticleUpdateSerializer,
        responses={200: ArticleSerializer, 400: UpdateError, **AUTH_ERRORS, **NOT_FOUND, **CONFLICT},
    ),
)
class ArticleViewSet(viewsets.GenericViewSet):
    """Knowledge articles and runbooks, addressed by slug. No DELETE: retire instead."""

    permission_classes = [IsSupportStaff]
    pagination_class = KnowledgePagination
    filter_backends: list = []
    serializer_class = ArticleSerializer
    lookup_field = "slug"
    lookup_value_regex = r"[-a-zA-Z0-9_]+"

    def get_queryset(self) -> QuerySet[Article]:
        return selectors.article_list()

    def get_object(self) -> Article:
        article = selectors.article_by_slug(self.kwargs["slug"])
        if article is None:
            raise NotFound("No such article.")
        return article

    def _article_response(self, article: Article, *, status_code: int = status.HTTP_200_OK) -> Response:
        fresh = selectors.article_by_slug(article.slug)
        return Response(
            ArticleSerializer(fresh, context=self.get_serializer_context()).data, status=status_code
        )

    def list(self, request):
        params = _input(ArticleQuerySerializer, request.query_params.dict())
        q = params.pop("q", "")
        articles = selectors.search_articles(q, **{k: v for k, v in params.items() if v})
        page = self.paginate_queryset(articles)
        context = {**self.get_serializer_context(), "q": q}
        data = ArticleSummarySerializer(page, many=True, context=context).data
        return self.get_paginated_response(data)

    @idempotent
    def create(self, request):
        data = _input(ArticleCreateSerializer, request.data)
        article = services.create_draft(actor=request.user, now=timezone.now(), **data)
        return self._article_response(article, status_code=status.HTTP_201_CREATED)

    def retrieve(self, request, slug: str | None = None):
        return Response(ArticleSerializer(self.get_object(), context=self.get_serializer_context()).data)

    def partial_update(self, request, slug: str | None = None):
        article = self.get_object()
        current_tags = [t.name for t in article.tags.all()]
        serializer = ArticleUpdateSerializer(
            data=request.data, partial=True, context={"current_tags": current_tags}
        )
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        expected = data.pop("revision", None)
        note = data.pop("note", "")
        article = services.update(
            article, actor=request.user, now=timezone.now(), expected_revision=expected, note=note, **data
        )
        return self._article_response(article)

    def _step(self, service) -> Response:
        article = service(self.get_object(), actor=self.request.user, now=timezone.now())
        return self._article_response(article)

    @_workflow_schema("Submit for review", "draft → in_review.")
    @action(detail=True, methods=["post"])
    def submit(self, request, slug: str | None = None):
        return self._step(services.submit_for_review)

    @_workflow_schema("Send back to draft", "in_review → draft (a manager, or the owner withdrawing it).")
    @action(detail=True, methods=["post"], url_path="return-to-draft")
    def return_to_draft(self, request, slug: str | None = None):
        return self._step(services.return_to_draft)

    @_workflow_schema(
        "Publish",
        "Managers only (agents get 403): a draft, an article in review, or a published article's pending "
        "changes. Starts a new review cycle.",
    )
    @action(detail=True, methods=["post"])
    def publish(self, request, slug: str | None = None):
        return self._step(services.publish)

    @_workflow_schema("Retire", "Managers only: the article is no longer suggested or found by default.")
    @action(detail=True, methods=["post"])
    def retire(self, request, slug: str | None = None):
        return self._step(services.retire)

    @_workflow_schema(
        "Confirm the review",
        "The owner or a manager confirms a published article is current: a new review cycle.",
    )
    @action(detail=True, methods=["post"], url_path="mark-reviewed")
    def mark_reviewed(self, request, slug: str | None = None):
        return self._step(services.mark_reviewed)

    @_workflow_schema(
        "Restore a revision",
        "The revision's content becomes the latest, as a new revision.",
        RestoreSerializer,
    )
    @action(detail=True, methods=["post"])
    def restore(self, request, slug: str | None = None):
        number = _input(RestoreSerializer, request.data)["revision"]
        article = services.restore_revision(self.get_object(), number, actor=request.user, now=timezone.now())
        return self._article_response(article)

    @_workflow_schema(
        "Vote",
        "Whether the published revision helped; one vote per person and revision (voting again replaces it).",
        VoteSerializer,
    )
    @action(detail=True, methods=["post"])
    def vote(self, request, slug: str | None = None):
        helpful = _input(VoteSerializer, request.data)["helpful"]
        article = self.get_object()
        services.vote(article, actor=request.user, helpful=helpful, now=timezone.now())
        return self._article_response(article)

    @extend_schema(
        summary="List revisions",
        parameters=[SLUG_PARAMETER],
        responses={200: RevisionSerializer(many=True), **AUTH_ERRORS, **NOT_FOUND},
    )
    @action(detail=True, methods=["get"])
    def revisions(self, request, slug: str | None = None):
        article = self.get_object()
        page = self.paginate_queryset(selectors.revision_list(article))
        return self.get_paginated_response(RevisionSerializer(page, many=True).data)

    @extend_schema(
        summary="Read a revision",
        description="The revision's content and a unified diff against the previous revision.",
        parameters=[
            SLUG_PARAMETER,
            OpenApiParameter(
                "number", OpenApiTypes.INT, OpenApiParameter.PATH, description="Revision number."
            ),
        ],
        responses={200: RevisionDetailSerializer, **AUTH_ERRORS, **NOT_FOUND},
    )
    @action(detail=True, methods=["get"], url_path=r"revisions/(?P<number>\d{1,9})")
    def revision(self, request, slug: str | None = None, number: str = ""):
        article = self.get_object()
        rev = selectors.revision(article, int(number))
        if rev is None:
            raise NotFound("No such revision.")
        previous = selectors.revision(article, rev.number - 1) if rev.number > 1 else None
        return Response(RevisionDetailSerializer(rev, context={"previous": previous}).data)


# --- A case's articles ------------------------------------------------------------------------------


def _case_or_404(key: str) -> Case:
    case = case_by_key(key)
    if case is None:
        raise NotFound(f"No case {key}.")
    return case


class CaseArticlesView(APIView):
    """The articles linked to a case; POST links one as "used to resolve"."""

    permission_classes = [IsSupportStaff]

    @extend_schema(
        summary="A case's linked articles",
        parameters=[KEY_PARAMETER],
        responses={200: CaseLinkSerializer(many=True), **AUTH_ERRORS, **NOT_FOUND},
    )
    def get(self, request, key: str):
        case = _case_or_404(key)
        links = selectors.case_links(case).prefetch_related("article__tags").select_related("article__owner")
        return Response(CaseLinkSerializer(links[:200], many=True, context={"request": request}).data)

    @extend_schema(
        summary="Link an article to a case",
        description="Records “used to resolve” on the case timeline. Linking twice: 200, no change.",
        parameters=[KEY_PARAMETER],
        request=LinkCreateSerializer,
        responses={
            201: CaseLinkSerializer,
            200: CaseLinkSerializer,
            400: LinkError,
            **AUTH_ERRORS,
            **NOT_FOUND,
        },
    )
    def post(self, request, key: str):
        case = _case_or_404(key)
        data = _input(LinkCreateSerializer, request.data)
        article = selectors.article_by_slug(data["article"])
        if article is None:
            raise ValidationError({"article": [f"There is no article “{data['article']}”."]})
        link, created = services.link_to_case(
            article, case, actor=request.user, now=timezone.now(), relation=data["relation"]
        )
        body = CaseLinkSerializer(link, context={"request": request}).data
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class CaseArticleDraftView(APIView):
    """Draft an article from a case's resolution, linked back as "created from"."""

    permission_classes = [IsSupportStaff]

    @extend_schema(
        summary="Draft an article from a case",
        parameters=[KEY_PARAMETER],
        request=DraftFromCaseSerializer,
        responses={201: ArticleSerializer, 400: DraftError, **AUTH_ERRORS, **NOT_FOUND},
    )
    def post(self, request, key: str):
        case = _case_or_404(key)
        data = _input(DraftFromCaseSerializer, request.data)
        article = services.create_from_case(case, actor=request.user, now=timezone.now(), **data)
        fresh = selectors.article_by_slug(article.slug)
        return Response(
            ArticleSerializer(fresh, context={"request": request}).data, status=status.HTTP_201_CREATED
        )
