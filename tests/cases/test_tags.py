"""The tag rule (cases.tags): one answer for the same input on every path that takes tags: the case
and knowledge APIs, the browser forms, bulk changes and macros. Tags stored before the rule stay."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from cases import bulk, macros, services, tags
from cases.forms import CaseCreateForm, MacroForm
from cases.models import Macro, Tag
from supportdesk.core.errors import DomainError

pytestmark = pytest.mark.django_db

FIFTY = "x" * 50

RULE_TABLE = [
    # (typed, stored or None when refused)
    ("billing", "billing"),
    ("Mixed Case", "mixed-case"),
    ("  with space  ", "with-space"),
    ("with \t many   spaces", "with-many-spaces"),
    ("LOGIN-Bug", "login-bug"),
    ("p1_fix", "p1_fix"),
    ("a--b", "a--b"),
    ("7", "7"),
    (FIFTY, FIFTY),
    (FIFTY + "x", None),  # too long
    ("-leading", None),
    ("_leading", None),
    ("trailing-", None),
    ("trailing_", None),
    ("n/a", None),
    ("v2.1", None),
    ("#hash", None),
    ("café", None),  # letters outside a-z: tags are ASCII slugs
    ("Ünïcode", None),
    ("ｗｉｄｅ", None),  # full-width letters lower-case to full-width letters, not a-z
    ("", None),
    ("   ", None),
]


@pytest.mark.parametrize(("typed", "stored"), RULE_TABLE)
def test_the_rule_normalises_or_refuses(typed, stored):
    if stored is None:
        with pytest.raises(tags.InvalidTag) as refused:
            tags.normalise(typed)
        assert refused.value.field == "tags"
        assert "at most 50 characters" in refused.value.message
    else:
        assert tags.normalise(typed) == stored
        assert tags.normalise(stored) == stored  # what is stored passes unchanged


def test_a_list_is_cleaned_deduplicated_and_sorted_blanks_dropped():
    assert tags.normalise_all(["outage", "Billing", " billing ", "", "  ", "Login Bug"]) == [
        "billing",
        "login-bug",
        "outage",
    ]


def test_a_refused_list_names_every_bad_tag_and_the_field():
    with pytest.raises(tags.InvalidTag) as refused:
        tags.normalise_all(["ok", "-a", "b/c"], field="value")
    assert refused.value.bad == ["-a", "b/c"]
    assert refused.value.field == "value"
    assert "“-a”, “b/c”" in refused.value.message


def test_a_tag_the_object_already_carries_is_kept_even_if_the_rule_refuses_it():
    assert tags.normalise_all(["-legacy", "New One"], keep=["-legacy"]) == ["-legacy", "new-one"]
    with pytest.raises(tags.InvalidTag):
        tags.normalise_all(["-legacy", "-other"], keep=["-legacy"])


# --- Every path agrees ------------------------------------------------------------------------------

AGREEMENT = [
    ("Mixed Case", "mixed-case"),
    ("with space", "with-space"),
    ("-leading", None),
    (FIFTY + "x", None),
    ("café", None),
]


@pytest.fixture
def api(agent) -> APIClient:
    client = APIClient()
    client.force_login(agent)
    return client


def _send(client, method, url, payload):
    return client.generic(method, url, data=json.dumps(payload), content_type="application/json")


def _names(obj) -> list[str]:
    return sorted(obj.tags.values_list("name", flat=True))


@pytest.mark.parametrize(("typed", "stored"), AGREEMENT)
def test_case_api_create_and_patch(api, organisation, contact, typed, stored, now):
    payload = {"title": "Tagged", "organisation": organisation.pk, "requester": contact.pk, "tags": [typed]}
    created = _send(api, "POST", "/api/cases/", payload)
    if stored is None:
        assert created.status_code == 400
        assert set(created.json()) >= {"tags"}
    else:
        assert created.status_code == 201, created.json()
        assert created.json()["tags"] == [stored]

    case = services.create_case(
        title="Plain", organisation=organisation, requester=contact, actor=None, now=now
    )
    patched = _send(api, "PATCH", f"/api/cases/{case.key}/", {"tags": ["ok", typed]})
    if stored is None:
        assert patched.status_code == 400
        assert "tags" in patched.json()
        assert _names(case) == []
    else:
        assert patched.status_code == 200, patched.json()
        assert _names(case) == sorted(["ok", stored])


@pytest.mark.parametrize(("typed", "stored"), AGREEMENT)
def test_knowledge_api_article(api, typed, stored):
    payload = {"kind": "article", "title": "Reset SSO", "body_markdown": "Steps.", "tags": [typed]}
    response = _send(api, "POST", "/api/knowledge/articles/", payload)
    if stored is None:
        assert response.status_code == 400
        assert "tags" in response.json()
    else:
        assert response.status_code == 201, response.json()
        assert response.json()["tags"] == [stored]


@pytest.mark.parametrize(("typed", "stored"), AGREEMENT)
def test_case_edit_form(client, agent, new_case, typed, stored):
    client.force_login(agent)
    response = client.post(
        reverse("cases:update", args=[new_case.key]),
        {"title": new_case.title, "severity": new_case.severity, "assignee": "", "team": "",
         "product_area": "", "tags": f"ok, {typed}", "version": new_case.version},
    )  # fmt: skip
    if stored is None:
        assert response.status_code == 400
        assert "tags" in response.context["fields_form"].errors
        assert _names(new_case) == []
    else:
        assert response.status_code == 302
        assert _names(new_case) == sorted(["ok", stored])


@pytest.mark.parametrize(("typed", "stored"), AGREEMENT)
def test_new_case_form(typed, stored):
    form = CaseCreateForm(data={"title": "Tagged", "severity": "P3", "tags": typed})
    form.is_valid()
    if stored is None:
        assert "tags" in form.errors
    else:
        assert "tags" not in form.errors
        assert form.cleaned_data["tags"] == [stored]


@pytest.mark.parametrize(("typed", "stored"), AGREEMENT)
def test_knowledge_form(client, agent, typed, stored):
    client.force_login(agent)
    response = client.post(
        reverse("knowledge:create"),
        {"kind": "article", "title": "Drain a node", "body_markdown": "Steps.", "owner": agent.username,
         "tags": typed, "review_interval_days": "90"},
    )  # fmt: skip
    if stored is None:
        assert response.status_code == 400
        assert "tags" in response.context["form"].errors
    else:
        assert response.status_code == 302


@pytest.mark.parametrize(("typed", "stored"), AGREEMENT)
def test_bulk_add_tags(agent, new_case, typed, stored, now):
    if stored is None:
        with pytest.raises(DomainError) as refused:
            bulk.parse_value("add_tags", [typed], actor=agent)
        assert refused.value.field == "value"
        return
    value = bulk.parse_value("add_tags", typed, actor=agent)  # a comma-separated string
    assert value == [stored]
    bulk.apply(bulk.targets_from_keys([new_case.key]), "add_tags", value, actor=agent, now=now)
    assert _names(new_case) == [stored]


@pytest.mark.parametrize(("typed", "stored"), AGREEMENT)
def test_macro_service_and_form(agent, typed, stored, now):
    form = MacroForm(
        data={"name": "Tagger", "body": "Hello", "add_tags": typed, "set_status": ""}, can_share=False
    )
    assert form.is_valid() is (stored is not None)
    if stored is None:
        assert "add_tags" in form.errors
        with pytest.raises(tags.InvalidTag) as refused:
            macros.save_macro(Macro(), actor=agent, now=now, name="Tagger", body="Hi", shared=False,
                              add_tags=[typed])  # fmt: skip
        assert refused.value.field == "add_tags"
    else:
        assert form.cleaned_data["add_tags"] == [stored]
        macro = macros.save_macro(
            Macro(), actor=agent, now=now, name="Tagger", body="Hi", shared=False, add_tags=[typed]
        )
        assert macro.add_tags == [stored]


# --- Tags stored before the rule ---------------------------------------------------------------------


@pytest.fixture
def legacy_case(new_case):
    """A case carrying a tag the API once stored and the rule now refuses."""
    new_case.tags.add(Tag.objects.create(name="-legacy"))
    return new_case


def test_a_stored_legacy_tag_is_shown_and_survives_form_and_api_edits(client, api, agent, legacy_case):
    client.force_login(agent)
    page = client.get(legacy_case.get_absolute_url())
    assert page.status_code == 200
    assert "-legacy" in page.content.decode()

    response = client.post(
        reverse("cases:update", args=[legacy_case.key]),
        {"title": legacy_case.title, "severity": legacy_case.severity, "assignee": "", "team": "",
         "product_area": "", "tags": "-legacy, Fresh Tag", "version": legacy_case.version},
    )  # fmt: skip
    assert response.status_code == 302
    assert _names(legacy_case) == ["-legacy", "fresh-tag"]

    patched = _send(api, "PATCH", f"/api/cases/{legacy_case.key}/", {"tags": ["-legacy", "api"]})
    assert patched.status_code == 200, patched.json()
    assert _names(legacy_case) == ["-legacy", "api"]

    # A new tag breaking the rule is still refused, on that case as on any other.
    refused = _send(api, "PATCH", f"/api/cases/{legacy_case.key}/", {"tags": ["-legacy", "-other"]})
    assert refused.status_code == 400
    assert "“-other”" in refused.json()["tags"][0]


def test_a_macro_and_bulk_changes_on_a_case_with_a_legacy_tag(agent, legacy_case, now):
    macro = macros.save_macro(
        Macro(), actor=agent, now=now, name="Tagger", body="Hi", shared=False, add_tags=["fixed"]
    )
    macros.apply_macro(legacy_case, macro, actor=agent, now=now)
    assert _names(legacy_case) == ["-legacy", "fixed"]

    value = bulk.parse_value("remove_tags", "-legacy", actor=agent)
    result = bulk.apply(bulk.targets_from_keys([legacy_case.key]), "remove_tags", value, actor=agent, now=now)
    assert [o.key for o in result.changed] == [legacy_case.key]
    assert _names(legacy_case) == ["fixed"]
