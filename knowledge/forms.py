"""Forms of the knowledge pages. They validate input only; every change goes through knowledge.services."""

from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model
from django.db.models import QuerySet

from cases.forms import TagsField as CaseTagsField
from supportdesk.core.roles import Role

from .models import Article, ArticleStatus, Kind
from .services import MAX_BODY, MAX_TITLE


def _staff() -> QuerySet:
    return (
        get_user_model()
        .objects.filter(is_active=True, groups__name__in=[Role.AGENT, Role.MANAGER, Role.ADMIN])
        .distinct()
        .order_by("first_name", "last_name", "username")
    )


class OwnerField(forms.ModelChoiceField):
    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        super().__init__(queryset=_staff(), to_field_name="username", **kwargs)

    def label_from_instance(self, obj) -> str:
        return obj.get_full_name() or obj.get_username()


class TagsField(CaseTagsField):
    """Comma-separated tags, held to the same rule as a case's (cases.tags)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("help_text", "Comma-separated, e.g. billing, sso")
        super().__init__(**kwargs)


class ArticleForm(forms.Form):
    kind = forms.ChoiceField(choices=Kind.choices, initial=Kind.ARTICLE)
    title = forms.CharField(max_length=MAX_TITLE)
    product_area = forms.CharField(max_length=100, required=False)
    tags = TagsField()
    body_markdown = forms.CharField(
        label="Body (Markdown)",
        required=False,
        max_length=MAX_BODY,
        widget=forms.Textarea(attrs={"rows": 18, "class": "mono"}),
        help_text="Markdown: # headings, - lists, `code`, [links](https://…). Unsafe HTML is removed.",
    )
    owner = OwnerField(help_text="Keeps the article current and is told when its review is due.")
    review_interval_days = forms.IntegerField(
        label="Review every (days)", min_value=1, max_value=3650, initial=180, required=False
    )
    note = forms.CharField(
        label="What changed", max_length=300, required=False, help_text="Kept with the revision."
    )
    base_revision = forms.IntegerField(widget=forms.HiddenInput, required=False, min_value=0)

    def __init__(self, *args, article: Article | None = None, **kwargs):
        if article is not None and "initial" not in kwargs:
            kwargs["initial"] = {
                "kind": article.kind,
                "title": article.title,
                "product_area": article.product_area,
                "tags": ", ".join(t.name for t in article.tags.all()),
                "body_markdown": article.body_markdown,
                "owner": article.owner.get_username() if article.owner else None,
                "review_interval_days": article.review_interval_days,
                "base_revision": article.current_revision,
            }
        super().__init__(*args, **kwargs)
        self.article = article
        if article is not None:
            tags_field = self.fields["tags"]
            assert isinstance(tags_field, TagsField)
            tags_field.keep = [t.name for t in article.tags.all()]
        self.fields["title"].error_messages["required"] = "An article needs a title."
        if article is not None and article.published_revision_id is not None:
            # A published runbook must never turn customer-facing by an edit.
            self.fields["kind"].disabled = True
            self.fields["kind"].help_text = "The kind of a published article cannot change."

    def service_kwargs(self) -> dict:
        data = self.cleaned_data
        kwargs = {
            "title": data["title"],
            "body_markdown": data["body_markdown"],
            "product_area": data["product_area"],
            "tags": data["tags"],
            "owner": data["owner"],
        }
        if data.get("review_interval_days"):
            kwargs["review_interval_days"] = data["review_interval_days"]
        if self.article is None or self.article.published_revision_id is None:
            kwargs["kind"] = data["kind"]
        return kwargs


class SearchForm(forms.Form):
    q = forms.CharField(label="Search", required=False, max_length=300)
    kind = forms.ChoiceField(choices=[("", "Any kind"), *Kind.choices], required=False)
    status = forms.ChoiceField(
        choices=[("", "Any but retired"), *ArticleStatus.choices], required=False, label="Status"
    )
    product_area = forms.CharField(required=False, max_length=100, label="Product area")
    tag = forms.CharField(required=False, max_length=50, label="Tag")


class CreateFromCaseForm(forms.Form):
    kind = forms.ChoiceField(choices=Kind.choices, initial=Kind.ARTICLE)


class LinkForm(forms.Form):
    article = forms.SlugField(max_length=200)


class VoteForm(forms.Form):
    helpful = forms.TypedChoiceField(
        choices=[("yes", "Helpful"), ("no", "Not helpful")], coerce=lambda v: v == "yes"
    )
