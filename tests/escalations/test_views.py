"""The escalation pages through the Django test client: permissions, the package form and its live
score, the support actions, the board, the engineer's read-only page and the case-page panel."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.template.loader import render_to_string
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from cases import services as case_services
from cases.models import Status
from escalations import services
from escalations.models import Escalation
from escalations.states import EscalationState
from tests import factories
from tests.escalations.conftest import complete_package

S = EscalationState
pytestmark = pytest.mark.django_db


def _messages(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def _form_data(team="payments", **overrides) -> dict:
    fields = complete_package(**overrides)
    data = {k: ("" if v is None else v) for k, v in fields.items()}
    data["first_seen_at"] = "2025-03-03T10:00" if fields.get("first_seen_at") else ""
    data["workaround_available"] = {True: "yes", False: "no", None: ""}[fields.get("workaround_available")]
    data.update({"team": team, "tier": "enterprise", "severity": "P2"})
    return data


def _support_urls(case, escalation) -> list[tuple[str, str]]:
    pk = escalation.pk
    return [
        ("get", reverse("escalations:create", args=[case.key])),
        ("post", reverse("escalations:create", args=[case.key])),
        ("post", reverse("escalations:score")),
        ("get", reverse("escalations:detail", args=[pk])),
        ("get", reverse("escalations:edit", args=[pk])),
        ("post", reverse("escalations:edit", args=[pk])),
        ("post", reverse("escalations:submit", args=[pk])),
        ("post", reverse("escalations:answer", args=[pk])),
        ("post", reverse("escalations:withdraw", args=[pk])),
        ("post", reverse("escalations:upload", args=[pk])),
    ]


# --- Permissions ---------------------------------------------------------------------------------


def test_anonymous_is_sent_to_login_everywhere(client, draft):
    urls = [
        *_support_urls(draft.case, draft),
        ("get", reverse("escalations:board")),
        ("get", reverse("escalations:engineer-view", args=[draft.pk])),
    ]
    for method, url in urls:
        response = getattr(client, method)(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("login")), url


def test_engineers_get_403_from_every_support_page_and_change_nothing(client, escalation_in, engineer):
    escalation = escalation_in(S.NEEDS_INFO)
    client.force_login(engineer)
    for method, url in _support_urls(escalation.case, escalation):
        data = {"answer": "x", "reason": "x", "summary": "x", "team": "payments"}
        response = client.post(url, data) if method == "post" else client.get(url)
        assert response.status_code == 403, url
    escalation.refresh_from_db()
    assert escalation.state == S.NEEDS_INFO


def test_users_without_a_role_get_403_everywhere(client, draft):
    client.force_login(factories.UserFactory(username="nobody"))
    for method, url in [
        *_support_urls(draft.case, draft),
        ("get", reverse("escalations:board")),
        ("get", reverse("escalations:engineer-view", args=[draft.pk])),
    ]:
        assert getattr(client, method)(url).status_code == 403, url


def test_unknown_cases_and_escalations_are_404(client, agent, db):
    client.force_login(agent)
    assert client.get(reverse("escalations:create", args=["CASE-99999"])).status_code == 404
    assert client.get(reverse("escalations:detail", args=[99999])).status_code == 404
    assert client.post(reverse("escalations:submit", args=[99999])).status_code == 404


# --- The package form and its live score ------------------------------------------------------


def test_the_form_is_prefilled_from_the_case_and_shows_a_zero_score(client, agent, triaged_case, payments):
    client.force_login(agent)
    response = client.get(reverse("escalations:create", args=[triaged_case.key]))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'value="Checkout fails with 502"' in html  # the summary starts as the case title
    assert '<option value="enterprise" selected>' in html
    assert '<option value="P2" selected>' in html
    assert '<span id="quality-score">0</span>' in html
    assert "Reproduction: Write the steps to reproduce" in html
    assert 'data-score-url="/escalations/score/"' in html
    assert "supportdesk/escalations.js" in html


def test_saving_a_draft_shows_its_score(client, agent, triaged_case, payments):
    client.force_login(agent)
    response = client.post(reverse("escalations:create", args=[triaged_case.key]), _form_data(tenant=""))
    escalation = Escalation.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("escalations:detail", args=[escalation.pk])
    assert escalation.state == S.DRAFT
    assert escalation.quality_score == 4
    assert escalation.first_seen_at is not None
    assert escalation.workaround_available is False
    page = client.get(response["Location"])
    html = page.content.decode()
    assert '<span id="quality-score">4</span>' in html
    assert "Environment: Add the tenant." in html
    assert "Submit to engineering" in html


def test_a_form_with_errors_keeps_what_was_typed(client, agent, triaged_case, payments):
    client.force_login(agent)
    data = _form_data(users_affected="lots")
    data["team"] = ""
    response = client.post(reverse("escalations:create", args=[triaged_case.key]), data)
    assert response.status_code == 400
    html = response.content.decode()
    assert "This field is required." in html
    assert "Enter a whole number." in html
    assert "1. Log in as any EU user" in html
    assert not Escalation.objects.exists()


def test_a_domain_refusal_becomes_a_field_error(client, agent, triaged_case, payments):
    client.force_login(agent)
    response = client.post(
        reverse("escalations:create", args=[triaged_case.key]), _form_data(component="login")
    )
    assert response.status_code == 400
    assert "is not one of them" in response.content.decode()


def test_the_live_score_endpoint_scores_the_form_as_typed(client, agent, payments, db):
    client.force_login(agent)
    url = reverse("escalations:score")
    response = client.post(url, {"team": "payments", "steps_to_reproduce": "1. a\n2. b"})
    assert response.status_code == 200
    body = response.json()
    assert (body["score"], body["max_score"], body["minimum"], body["meets_minimum"]) == (0, 5, 3, False)
    response = client.post(url, _form_data())
    assert (response.json()["score"], response.json()["missing"], response.json()["meets_minimum"]) == (
        5,
        [],
        True,
    )
    assert client.post(url, {}).json()["minimum"] is None
    assert client.get(url).status_code == 405


def test_editing_a_draft(client, agent, draft):
    client.force_login(agent)
    url = reverse("escalations:edit", args=[draft.pk])
    page = client.get(url)
    assert page.status_code == 200
    assert 'value="eu-west-1"' in page.content.decode()
    assert '<option value="no" selected>' in page.content.decode()
    response = client.post(url, _form_data(region="", tenant=""))
    assert response.status_code == 302
    draft.refresh_from_db()
    assert draft.quality_score == 4
    assert draft.region == ""


def test_a_submitted_package_cannot_be_edited(client, agent, escalation_in):
    escalation = escalation_in(S.SUBMITTED)
    client.force_login(agent)
    response = client.post(reverse("escalations:edit", args=[escalation.pk]), _form_data(region="x"))
    assert response.status_code == 302
    assert "can no longer be edited" in _messages(response)[0]
    escalation.refresh_from_db()
    assert escalation.region == "eu-west-1"


def test_timeline_entries_can_be_shared_with_engineering(client, agent, triaged_case, payments, now):
    note = case_services.add_internal_note(triaged_case, body="Shared note", actor=agent, now=now)
    case_services.add_internal_note(triaged_case, body="Private note", actor=agent, now=now)
    client.force_login(agent)
    data = _form_data()
    data["attached_events"] = [note.pk]
    client.post(reverse("escalations:create", args=[triaged_case.key]), data)
    escalation = Escalation.objects.get()
    assert list(escalation.attached_events.all()) == [note]


# --- Support actions ------------------------------------------------------------------------------


def test_submitting_from_the_page(client, agent, draft):
    client.force_login(agent)
    response = client.post(reverse("escalations:submit", args=[draft.pk]))
    assert response.status_code == 302
    assert _messages(response) == [f"{draft.key} submitted to Payments."]
    draft.refresh_from_db()
    assert draft.state == S.SUBMITTED
    draft.case.refresh_from_db()
    assert draft.case.status == Status.WAITING_ON_ENGINEERING


def test_below_the_minimum_the_page_says_so_and_a_manager_overrides(
    client, agent, manager, triaged_case, payments, now
):
    weak = services.create_draft(case=triaged_case, team=payments, actor=agent, now=now, summary="Broken")
    client.force_login(agent)
    page = client.get(reverse("escalations:detail", args=[weak.pk])).content.decode()
    assert "ask a manager to submit it with an override" in page
    response = client.post(reverse("escalations:submit", args=[weak.pk]), {"override_reason": "please"})
    assert response.status_code == 400
    assert (
        "below Payments&#x27;s minimum" in response.content.decode()
        or "below Payments" in response.content.decode()
    )
    client.force_login(manager)
    page = client.get(reverse("escalations:detail", args=[weak.pk])).content.decode()
    assert "Submit with override" in page
    response = client.post(reverse("escalations:submit", args=[weak.pk]), {"override_reason": ""})
    assert response.status_code == 400
    response = client.post(reverse("escalations:submit", args=[weak.pk]), {"override_reason": "P1 outage"})
    assert response.status_code == 302
    assert "with a manager's override" in _messages(response)[-1]
    weak.refresh_from_db()
    assert (weak.state, weak.override_by, weak.override_reason) == (S.SUBMITTED, manager, "P1 outage")


def test_answering_engineering_is_one_form(client, agent, escalation_in):
    escalation = escalation_in(S.NEEDS_INFO)
    client.force_login(agent)
    page = client.get(reverse("escalations:detail", args=[escalation.pk])).content.decode()
    assert "Which tenant exactly?" in page
    assert 'name="answer"' in page
    url = reverse("escalations:answer", args=[escalation.pk])
    response = client.post(url, {"answer": "  "})
    assert response.status_code == 400
    assert "Write the answer" in response.content.decode()
    response = client.post(url, {"answer": "Tenant acme-prod"})
    assert response.status_code == 302
    escalation.refresh_from_db()
    assert escalation.state == S.SUBMITTED
    assert escalation.info_requests.get().answer == "Tenant acme-prod"


def test_an_action_refused_by_the_lifecycle_is_a_message_and_400(client, agent, escalation_in):
    escalation = escalation_in(S.RESOLVED)
    client.force_login(agent)
    response = client.post(reverse("escalations:answer", args=[escalation.pk]), {"answer": "late"})
    assert response.status_code == 400
    assert "cannot be answered now" in _messages(response)[0]


def test_withdrawing_from_the_page(client, agent, escalation_in):
    escalation = escalation_in(S.ACKNOWLEDGED)
    client.force_login(agent)
    response = client.post(reverse("escalations:withdraw", args=[escalation.pk]), {"reason": "Not needed"})
    assert response.status_code == 302
    escalation.refresh_from_db()
    assert (escalation.state, escalation.withdraw_reason) == (S.WITHDRAWN, "Not needed")
    escalation.case.refresh_from_db()
    assert escalation.case.status == Status.IN_PROGRESS


# --- Board and the engineer's page --------------------------------------------------------------


@pytest.fixture
def open_escalations(organisation, contact, payments, identity, agent, engineer, now):
    made = []
    for i, (team, state) in enumerate(
        [(payments, S.SUBMITTED), (payments, S.NEEDS_INFO), (identity, S.IN_PROGRESS), (identity, S.RESOLVED)]
    ):
        when = now - dt.timedelta(days=4 - i)
        case = case_services.create_case(
            title=f"Case {i}", organisation=organisation, requester=contact, actor=agent, now=when
        )
        case = case_services.transition(
            case, Status.TRIAGED, actor=agent, now=when, severity="P2", assignee=agent
        )
        fields = complete_package(
            summary=f"Escalation {i}", component="checkout-api" if team == payments else ""
        )
        escalation = services.submit(
            services.create_draft(case=case, team=team, actor=agent, now=when, **fields),
            actor=agent,
            now=when,
        )
        if state == S.NEEDS_INFO:
            escalation = services.request_info(escalation, questions="?", actor=engineer, now=when)
        if state in (S.IN_PROGRESS, S.RESOLVED):
            escalation = services.start(
                services.acknowledge(escalation, actor=engineer, now=when), actor=engineer, now=when
            )
        if state == S.RESOLVED:
            escalation = services.resolve(escalation, resolution="done", actor=engineer, now=when)
        made.append(escalation)
    return made


def test_the_board_shows_open_escalations_by_state_and_team_with_age_and_bounces(
    client, manager, open_escalations
):
    client.force_login(manager)
    response = client.get(reverse("escalations:board"))
    assert response.status_code == 200
    html = response.content.decode()
    board = response.context["board"]
    assert board.matrix()[0][0].name == "Identity"
    assert dict(board.matrix()[1][1])["submitted"] == 1
    assert dict(board.matrix()[1][1])["needs_info"] == 1
    assert [e.summary for e, _ in response.context["rows"]] == [
        "Escalation 0",
        "Escalation 1",
        "Escalation 2",
    ]
    assert "Escalation 3" not in html  # resolved: not open
    age_of_oldest = response.context["rows"][0][1]
    assert dt.timedelta(days=3, hours=23) < age_of_oldest < dt.timedelta(days=4, hours=1)
    assert "4 d" in html
    filtered = client.get(reverse("escalations:board"), {"team": "payments", "state": "needs_info"})
    assert [e.summary for e, _ in filtered.context["rows"]] == ["Escalation 1"]
    assert filtered.context["rows"][0][0].bounce_count == 1


def test_the_board_costs_the_same_queries_whatever_its_length(
    client, manager, open_escalations, agent, payments, now, django_assert_num_queries
):
    client.force_login(manager)
    with CaptureQueriesContext(connection) as before:
        client.get(reverse("escalations:board"))
    for i in range(3):
        case = factories.CaseFactory(
            status=Status.IN_PROGRESS, organisation=open_escalations[0].case.organisation
        )
        services.submit(
            services.create_draft(
                case=case, team=payments, actor=agent, now=now, **complete_package(summary=f"more {i}")
            ),
            actor=agent,
            now=now,
        )
    with django_assert_num_queries(len(before.captured_queries)):
        response = client.get(reverse("escalations:board"))
    assert len(response.context["rows"]) == 6


def test_engineers_see_the_board_within_their_scope_and_bad_filters_are_ignored(
    client, engineer, open_escalations, identity, scope_to
):
    scope_to(engineer, identity)
    client.force_login(engineer)
    response = client.get(reverse("escalations:board"), {"state": "bogus", "team": "nope"})
    assert response.status_code == 200
    assert [e.summary for e, _ in response.context["rows"]] == ["Escalation 2"]
    assert reverse("escalations:engineer-view", args=[open_escalations[2].pk]) in response.content.decode()


def test_the_engineer_page_shows_only_shared_entries(client, engineer, triaged_case, payments, agent, now):
    shared = case_services.add_internal_note(triaged_case, body="Shared: DB healthy", actor=agent, now=now)
    case_services.add_internal_note(triaged_case, body="Private: grumpy customer", actor=agent, now=now)
    escalation = services.create_draft(
        case=triaged_case, team=payments, actor=agent, now=now, attached_events=[shared], **complete_package()
    )
    client.force_login(engineer)
    url = reverse("escalations:engineer-view", args=[escalation.pk])
    assert client.get(url).status_code == 404  # still a draft
    services.submit(escalation, actor=agent, now=now)
    services.request_info(escalation, questions="Which region?", actor=engineer, now=now)
    html = client.get(url).content.decode()
    assert "Shared: DB healthy" in html
    assert "grumpy" not in html
    assert "1. Log in as any EU user" in html
    assert "Which region?" in html
    main = html.split("<main", 1)[1]
    # the only forms are engineering's actions (see test_engineer_page.py)
    assert main.count("<form") == main.count(f'action="/escalations/{escalation.pk}/view/')


# --- The case-page panel --------------------------------------------------------------------------


def test_the_case_panel_shows_escalations_questions_and_the_answer_form(rf, agent, escalation_in):
    escalation = escalation_in(S.NEEDS_INFO)
    request = rf.get(escalation.case.get_absolute_url())
    request.user = agent
    html = render_to_string("escalations/_case_panel.html", {"case": escalation.case}, request=request)
    assert escalation.key in html
    assert "Needs info" in html
    assert "Which tenant exactly?" in html
    assert f'action="{reverse("escalations:answer", args=[escalation.pk])}"' in html
    assert 'name="csrfmiddlewaretoken"' in html
    assert f'href="{reverse("escalations:create", args=[escalation.case.key])}"' in html


def test_the_case_panel_of_a_case_without_escalations(rf, agent, new_case):
    request = rf.get("/")
    request.user = agent
    html = render_to_string("escalations/_case_panel.html", {"case": new_case}, request=request)
    assert "Not escalated to engineering." in html
    assert ">Escalate</a>" in html


def test_when_engineering_asks_the_package_can_be_corrected_but_not_moved_to_another_team(
    client, agent, escalation_in, identity
):
    escalation = escalation_in(S.NEEDS_INFO)
    client.force_login(agent)
    data = _form_data(team="identity", region="eu-central-1")
    response = client.post(reverse("escalations:edit", args=[escalation.pk]), data)
    assert response.status_code == 302
    escalation.refresh_from_db()
    assert (escalation.region, escalation.team.slug) == ("eu-central-1", "payments")
    assert escalation.case.events.filter(kind="escalation_updated").count() == 1
