"""The knowledge services: workflow and who may take each step, revisions and restore, votes,
links to cases, articles drafted from cases, and stale flagging once per review cycle."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.core import mail

from cases import services as case_services
from cases.models import CaseEvent, Status
from knowledge import services, tasks
from knowledge.models import Article, ArticleCaseLink, ArticleRevision, ArticleStatus, ArticleVote, Kind
from knowledge.services import NotAllowed
from supportdesk.core import tasks as core_tasks
from supportdesk.core.errors import Conflict, DomainError
from supportdesk.core.models import Notification
from tests import factories

pytestmark = pytest.mark.django_db

T0 = factories.at(2026, 3, 2, 9, 0)


# --- Workflow and roles ---------------------------------------------------------------------------


def test_an_agent_drafts_and_submits_and_a_manager_publishes(agent, manager, now):
    article = services.create_draft(
        title="Rotate the SAML certificate", body_markdown="1. Upload", actor=agent, now=now
    )
    assert (article.status, article.owner, article.current_revision) == ("draft", agent, 1)

    article = services.submit_for_review(article, actor=agent, now=now)
    assert article.status == ArticleStatus.IN_REVIEW

    article = services.publish(article, actor=manager, now=now)
    assert article.status == ArticleStatus.PUBLISHED
    assert article.published_revision.number == 1
    assert article.published_by == manager
    assert article.review_due_at == now + dt.timedelta(days=180)


def test_agents_cannot_publish_or_retire(agent, other_agent, make_article, now):
    article = make_article(status="in_review")
    with pytest.raises(NotAllowed) as excinfo:
        services.publish(article, actor=other_agent, now=now)
    assert excinfo.value.status_code == 403
    published = make_article(title="Another", status="published")
    with pytest.raises(NotAllowed):
        services.retire(published, actor=agent, now=now)
    article.refresh_from_db()
    published.refresh_from_db()
    assert (article.status, published.status) == ("in_review", "published")


@pytest.mark.parametrize("make_user", [factories.EngineerFactory, factories.UserFactory])
def test_engineers_and_people_without_a_role_cannot_write_knowledge(make_user, make_article, now):
    outsider = make_user()
    with pytest.raises(NotAllowed):
        services.create_draft(title="Nope", actor=outsider, now=now)
    article = make_article()
    with pytest.raises(NotAllowed):
        services.update(article, title="Changed", actor=outsider, now=now)
    with pytest.raises(NotAllowed):
        services.submit_for_review(article, actor=outsider, now=now)


def test_a_manager_may_publish_a_draft_directly(manager, make_article, now):
    article = services.publish(make_article(status="draft"), actor=manager, now=now)
    assert article.status == "published"


def test_illegal_steps_are_refused_with_a_reason(agent, manager, make_article, now):
    published = make_article(status="published")
    with pytest.raises(DomainError, match="Only a draft"):
        services.submit_for_review(published, actor=agent, now=now)
    with pytest.raises(DomainError, match="already published"):
        services.publish(published, actor=manager, now=now)
    retired = make_article(title="Old way", status="retired")
    with pytest.raises(DomainError, match="retired"):
        services.publish(retired, actor=manager, now=now)
    with pytest.raises(DomainError, match="retired"):
        services.update(retired, body_markdown="new", actor=agent, now=now)
    draft = make_article(title="Fresh", status="draft")
    with pytest.raises(DomainError, match="Only an article in review"):
        services.return_to_draft(draft, actor=manager, now=now)


def test_return_to_draft_is_for_a_manager_or_the_owner(agent, other_agent, manager, make_article, now):
    article = make_article(status="in_review")
    with pytest.raises(NotAllowed):
        services.return_to_draft(article, actor=other_agent, now=now)
    assert services.return_to_draft(article, actor=agent, now=now).status == "draft"
    services.submit_for_review(article, actor=agent, now=now)
    assert services.return_to_draft(article, actor=manager, now=now).status == "draft"


def test_slugs_are_unique_and_never_shadow_pages(agent, now):
    first = services.create_draft(title="VPN drops every hour", actor=agent, now=now)
    second = services.create_draft(title="VPN drops every hour", actor=agent, now=now)
    reserved = services.create_draft(title="New", actor=agent, now=now)
    assert (first.slug, second.slug) == ("vpn-drops-every-hour", "vpn-drops-every-hour-2")
    assert reserved.slug == "new-article"
    with pytest.raises(DomainError, match="already used") as excinfo:
        services.create_draft(title="x", slug="vpn-drops-every-hour", actor=agent, now=now)
    assert excinfo.value.field == "slug"
    with pytest.raises(DomainError, match="letters, digits"):
        services.create_draft(title="x", slug="Not A Slug!", actor=agent, now=now)


def test_invalid_input_is_a_domain_error_on_its_field(agent, now):
    for kwargs, field in (
        ({"title": "  "}, "title"),
        ({"title": "x" * 301}, "title"),
        ({"title": "ok", "kind": "faq"}, "kind"),
        ({"title": "ok", "tags": ["no/slashes"]}, "tags"),
    ):
        with pytest.raises(DomainError) as excinfo:
            services.create_draft(actor=agent, now=now, **kwargs)
        assert excinfo.value.field == field
    assert not Article.objects.exists()


# --- Revisions --------------------------------------------------------------------------------------


def test_every_save_is_a_kept_revision_with_author_and_time(agent, other_agent, make_article, now):
    article = make_article(body="Step one.")
    later = now + dt.timedelta(hours=1)
    article = services.update(
        article, body_markdown="Step one.\nStep two.", note="Add step two", actor=other_agent, now=later
    )
    assert article.current_revision == 2
    revisions = list(ArticleRevision.objects.filter(article=article).order_by("number"))
    assert [(r.number, r.author, r.created_at, r.body_markdown) for r in revisions] == [
        (1, agent, now, "Step one."),
        (2, other_agent, later, "Step one.\nStep two."),
    ]
    assert revisions[1].note == "Add step two"


def test_a_save_without_a_change_of_content_makes_no_revision(make_article, agent, now):
    article = make_article(body="Same")
    article = services.update(article, body_markdown="Same", title=article.title, actor=agent, now=now)
    assert article.current_revision == 1
    article = services.update(article, tags=["sso"], actor=agent, now=now)
    assert article.current_revision == 1
    assert list(article.tags.values_list("name", flat=True)) == ["sso"]


def test_a_stale_editor_gets_a_conflict_instead_of_overwriting(make_article, agent, other_agent, now):
    article = make_article(body="v1")
    services.update(article, body_markdown="v2 by bob", expected_revision=1, actor=other_agent, now=now)
    with pytest.raises(Conflict):
        services.update(article, body_markdown="v2 by alice", expected_revision=1, actor=agent, now=now)
    article.refresh_from_db()
    assert (article.body_markdown, article.current_revision) == ("v2 by bob", 2)


def test_restore_creates_a_new_revision_with_the_old_content(make_article, agent, now):
    article = make_article(title="Title one", body="first text")
    services.update(article, title="Title two", body_markdown="second text", actor=agent, now=now)
    article = services.restore_revision(article, 1, actor=agent, now=now)
    assert (article.current_revision, article.title, article.body_markdown) == (3, "Title one", "first text")
    latest = ArticleRevision.objects.get(article=article, number=3)
    assert (latest.restored_from, latest.body_markdown) == (1, "first text")
    assert ArticleRevision.objects.filter(article=article).count() == 3  # nothing was lost
    with pytest.raises(DomainError, match="no revision 9"):
        services.restore_revision(article, 9, actor=agent, now=now)


def test_edits_to_a_published_article_wait_for_a_manager(make_article, agent, manager, now):
    article = make_article(body="Published text", status="published")
    article = services.update(article, body_markdown="Agent's change", actor=agent, now=now)
    assert article.status == "published"
    assert article.has_unpublished_changes
    assert article.published_revision.body_markdown == "Published text"

    article = services.publish(article, actor=manager, now=now)
    assert not article.has_unpublished_changes
    assert article.published_revision.body_markdown == "Agent's change"


def test_a_published_runbook_cannot_turn_customer_facing(make_article, agent, now):
    runbook = make_article(kind=Kind.RUNBOOK, status="published")
    with pytest.raises(DomainError, match="kind of a published"):
        services.update(runbook, kind=Kind.ARTICLE, actor=agent, now=now)
    draft = make_article(title="Draft runbook", kind=Kind.RUNBOOK)
    assert services.update(draft, kind=Kind.ARTICLE, actor=agent, now=now).kind == Kind.ARTICLE


# --- Votes ------------------------------------------------------------------------------------------


def test_one_vote_per_person_and_revision(make_article, agent, other_agent, manager, now):
    article = make_article(status="published")
    services.vote(article, actor=agent, helpful=True, now=now)
    services.vote(article, actor=agent, helpful=True, now=now)
    services.vote(article, actor=agent, helpful=False, now=now)  # changes the vote, adds none
    services.vote(article, actor=other_agent, helpful=True, now=now)
    assert sorted(ArticleVote.objects.values_list("user__username", "helpful")) == [
        ("alice", False),
        ("bob", True),
    ]

    services.update(article, body_markdown="Better text", actor=agent, now=now)
    services.publish(article, actor=manager, now=now)
    services.vote(article, actor=agent, helpful=True, now=now)  # a new revision: a new vote
    assert ArticleVote.objects.filter(user=agent).count() == 2


def test_only_published_articles_can_be_voted_on(make_article, agent, now):
    with pytest.raises(DomainError, match="published"):
        services.vote(make_article(), actor=agent, helpful=True, now=now)


# --- Cases ------------------------------------------------------------------------------------------


def test_linking_to_a_case_is_recorded_on_its_timeline_once(make_article, case_for_sso, agent, now):
    runbook = make_article(kind=Kind.RUNBOOK, status="published")
    link, created = services.link_to_case(runbook, case_for_sso, actor=agent, now=now)
    again, created_again = services.link_to_case(runbook, case_for_sso, actor=agent, now=now)
    assert (created, created_again, again.pk) == (True, False, link.pk)
    events = CaseEvent.objects.filter(case=case_for_sso, kind="article_linked")
    assert events.count() == 1
    event = events.get()
    assert event.actor == agent
    assert event.new_value == {
        "article": runbook.slug,
        "title": runbook.title,
        "kind": "runbook",
        "relation": "used_to_resolve",
    }
    assert not event.is_public


def test_retired_articles_and_closed_cases_cannot_be_linked(make_article, case_for_sso, agent, now):
    with pytest.raises(DomainError, match="retired"):
        services.link_to_case(make_article(status="retired"), case_for_sso, actor=agent, now=now)
    case_services.transition(case_for_sso, Status.RESOLVED, actor=agent, now=now)
    case_services.auto_close_resolved(now=now + dt.timedelta(days=30))
    with pytest.raises(DomainError, match="closed"):
        services.link_to_case(
            make_article(title="Other", status="published"), case_for_sso, actor=agent, now=now
        )
    assert not ArticleCaseLink.objects.exists()


def test_an_article_drafted_from_a_case_is_prefilled_and_linked_back(case_for_sso, agent, now):
    case_services.add_internal_note(case_for_sso, body="Root cause: expired IdP cert", actor=agent, now=now)
    case_services.add_public_reply(
        case_for_sso, body="Upload the new certificate under Settings > SSO.", actor=agent, now=now
    )
    case_services.update_case(case_for_sso, tags=["sso", "certificates"], actor=agent, now=now)

    article = services.create_from_case(case_for_sso, actor=agent, now=now)
    assert article.status == "draft"
    assert article.kind == Kind.ARTICLE
    assert article.title == case_for_sso.title
    assert article.product_area == "identity"
    assert sorted(article.tags.values_list("name", flat=True)) == ["certificates", "sso"]
    assert "every SSO login fails" in article.body_markdown
    assert "Upload the new certificate under Settings > SSO." in article.body_markdown
    # A customer-facing article never carries internal notes.
    assert "Root cause" not in article.body_markdown
    assert article.created_from_case == case_for_sso
    link = ArticleCaseLink.objects.get(article=article)
    assert (link.case, link.relation) == (case_for_sso, "created_from")
    assert CaseEvent.objects.filter(case=case_for_sso, kind="article_linked").count() == 1

    runbook = services.create_from_case(case_for_sso, actor=agent, now=now, kind=Kind.RUNBOOK)
    assert "Root cause: expired IdP cert" in runbook.body_markdown


# --- Stale flagging ---------------------------------------------------------------------------------


def _published_at_t0(make_article, manager, **kwargs):
    with time_machine.travel(T0, tick=False):
        return make_article(status="published", at=T0, **kwargs)


def test_stale_articles_are_flagged_and_their_owners_told_once_per_cycle(
    make_article, agent, manager, django_capture_on_commit_callbacks
):
    article = _published_at_t0(make_article, manager)
    fresh = _published_at_t0(make_article, manager, title="Recently reviewed")
    with time_machine.travel(T0 + dt.timedelta(days=100), tick=False):
        services.mark_reviewed(fresh, actor=agent, now=T0 + dt.timedelta(days=100))

    with time_machine.travel(T0 + dt.timedelta(days=179), tick=False):
        assert tasks.flag_stale() == 0

    with (
        time_machine.travel(T0 + dt.timedelta(days=181), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert tasks.flag_stale() == 1
        assert tasks.flag_stale() == 0  # run it twice: the second run changes nothing
        assert mail.outbox == []  # written to the outbox; the mail worker sends it
        assert core_tasks.send_due() == 1

    article.refresh_from_db()
    assert article.stale_flagged_at == T0 + dt.timedelta(days=181)
    notes = Notification.objects.filter(kind="knowledge_review_due")
    assert [(n.recipient, n.url) for n in notes] == [(agent, f"/knowledge/{article.slug}/")]
    assert [m.to for m in mail.outbox] == [[agent.email]]
    assert article.title in mail.outbox[0].subject

    with time_machine.travel(T0 + dt.timedelta(days=200), tick=False):
        assert tasks.flag_stale() == 0
        assert core_tasks.send_due() == 0
    assert Notification.objects.filter(kind="knowledge_review_due").count() == 1
    assert len(mail.outbox) == 1


def test_a_confirmed_review_starts_a_new_cycle_that_is_flagged_again(make_article, agent, manager):
    article = _published_at_t0(make_article, manager)
    flagged_at = T0 + dt.timedelta(days=181)
    assert services.flag_stale(now=flagged_at) == 1

    reviewed_at = T0 + dt.timedelta(days=185)
    article = services.mark_reviewed(article, actor=agent, now=reviewed_at)
    assert (article.stale_flagged_at, article.review_due_at) == (None, reviewed_at + dt.timedelta(days=180))
    assert services.flag_stale(now=reviewed_at + dt.timedelta(days=179)) == 0
    assert services.flag_stale(now=reviewed_at + dt.timedelta(days=181)) == 1
    assert services.flag_stale(now=reviewed_at + dt.timedelta(days=182)) == 0
    assert Notification.objects.filter(recipient=agent, kind="knowledge_review_due").count() == 2


def test_republishing_starts_a_new_review_cycle(make_article, agent, manager):
    article = _published_at_t0(make_article, manager)
    assert services.flag_stale(now=T0 + dt.timedelta(days=181)) == 1
    later = T0 + dt.timedelta(days=190)
    services.update(article, body_markdown="Updated after review", actor=agent, now=later)
    article = services.publish(article, actor=manager, now=later)
    assert article.stale_flagged_at is None
    assert article.review_due_at == later + dt.timedelta(days=180)
    assert services.flag_stale(now=later + dt.timedelta(days=1)) == 0


def test_a_stale_article_without_an_owner_is_reported_to_the_managers(make_article, agent, manager):
    article = _published_at_t0(make_article, manager)
    services.update(article, owner=None, actor=agent, now=T0)
    assert services.flag_stale(now=T0 + dt.timedelta(days=181)) == 1
    assert list(Notification.objects.values_list("recipient__username", flat=True)) == ["maria"]


def test_drafts_and_retired_articles_are_never_flagged(make_article, manager):
    with time_machine.travel(T0, tick=False):
        make_article(title="A draft", at=T0)
        make_article(title="Retired", status="retired", at=T0)
    assert services.flag_stale(now=T0 + dt.timedelta(days=400)) == 0


def test_a_sweep_that_lost_the_race_tells_nobody(make_article, manager):
    article = _published_at_t0(make_article, manager)
    # Another worker flagged it between this sweep's read and its claim.
    Article.objects.filter(pk=article.pk).update(stale_flagged_at=T0 + dt.timedelta(days=181))
    assert services.flag_stale(now=T0 + dt.timedelta(days=182)) == 0
    assert not Notification.objects.exists()
