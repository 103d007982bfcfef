from __future__ import annotations

import pytest

from cases import services as case_services
from knowledge import services
from knowledge.models import Kind


@pytest.fixture
def make_article(agent, manager, now):
    """An article in the status asked for, written by ``agent`` (published by ``manager``)."""

    def make(
        *,
        title: str = "Reset a user's SSO session",
        body: str = "Sign the user out of every session, then ask them to log in again.",
        kind: str = Kind.ARTICLE,
        status: str = "draft",
        product_area: str = "",
        tags: tuple[str, ...] = (),
        author=None,
        at=None,
    ):
        when = at or now
        article = services.create_draft(
            title=title,
            body_markdown=body,
            kind=kind,
            product_area=product_area,
            tags=tags,
            actor=author or agent,
            now=when,
        )
        if status in ("in_review",):
            article = services.submit_for_review(article, actor=author or agent, now=when)
        if status in ("published", "retired"):
            article = services.publish(article, actor=manager, now=when)
        if status == "retired":
            article = services.retire(article, actor=manager, now=when)
        return article

    return make


@pytest.fixture
def case_for_sso(organisation, contact, agent, now):
    return case_services.create_case(
        title="Users cannot log in with SSO after certificate rotation",
        description="Since this morning every SSO login fails with an invalid signature error.",
        organisation=organisation,
        requester=contact,
        severity="P2",
        product_area="identity",
        actor=agent,
        now=now,
    )
