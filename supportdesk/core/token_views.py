"""The tokens page: a person lists, makes and revokes their own REST API tokens.

A new key is shown once, on the answer to the form that made it (the database keeps only its
hash); that answer is never cached. Admins see and revoke everyone's tokens in the admin.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_http_methods, require_POST

from . import tokens
from .decorators import role_required
from .models import ApiToken
from .roles import roles_of


def _has_a_role(user) -> bool:
    return bool(roles_of(user))


staff_only = role_required(_has_a_role, "API tokens are for people with a role.")


class TokenForm(forms.Form):
    name = forms.CharField(
        max_length=100,
        strip=True,
        help_text="What the token is for, e.g. “CI deploy script”.",
    )
    days = forms.TypedChoiceField(
        label="Expires after",
        choices=[(days, f"{days} days") for days in tokens.EXPIRY_DAYS],
        coerce=int,
        initial=90,
    )


def _page(
    request, *, form: TokenForm, new_key: str | None = None, new_token: ApiToken | None = None, status=200
):
    items = ApiToken.objects.filter(user=request.user).order_by("-created", "-id")
    response = render(
        request,
        "core/tokens.html",
        {"items": items, "form": form, "new_key": new_key, "new_token": new_token, "now": timezone.now()},
        status=status,
    )
    add_never_cache_headers(response)
    return response


@staff_only
@require_http_methods(["GET", "POST"])
def token_list(request):
    if request.method == "GET":
        return _page(request, form=TokenForm())
    form = TokenForm(request.POST)
    if not form.is_valid():
        return _page(request, form=form, status=400)
    token, key = tokens.issue_token(
        user=request.user, name=form.cleaned_data["name"], days=form.cleaned_data["days"]
    )
    return _page(request, form=TokenForm(), new_key=key, new_token=token)


@staff_only
@require_POST
def token_revoke(request, pk: int):
    token = get_object_or_404(ApiToken, pk=pk, user=request.user)  # another's token: 404
    token.delete()
    messages.success(request, f"Revoked the token “{token.name}”: it no longer works.")
    return redirect("core:tokens")
