"""Error pages: styled like the rest of the app, with the navigation and the server's reason; the
API keeps answering JSON."""

from __future__ import annotations

import pytest
from django.test import RequestFactory

from supportdesk.core import error_views

pytestmark = pytest.mark.django_db


@pytest.fixture
def agent_client(client, agent):
    client.force_login(agent)
    return client


def _styled(html: str) -> None:
    assert "/static/supportdesk/app.css" in html
    assert 'class="topbar"' in html
    assert '<nav aria-label="Main">' in html


def test_a_refused_page_is_styled_and_gives_the_reason(agent_client):
    response = agent_client.get("/metrics/")  # the dashboard is for managers

    assert response.status_code == 403
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    _styled(html)
    assert "Error 403" in html
    assert "The dashboards are for support managers." in html
    assert ">Queue</a>" in html  # the agent's own navigation, to get back to work
    assert "(you are: agent)" in html
    assert 'href="/preferences/"' in html


def test_a_refusal_without_a_message_still_says_why(agent, rf):
    from django.core.exceptions import PermissionDenied

    request = rf.get("/somewhere/")
    request.user = agent
    response = error_views.permission_denied(request, PermissionDenied())
    assert response.status_code == 403
    assert error_views.FORBIDDEN in response.content.decode()


def test_an_unknown_address_is_a_styled_404(agent_client):
    response = agent_client.get("/no/such/page/")

    assert response.status_code == 404
    html = response.content.decode()
    _styled(html)
    assert "Page not found" in html
    assert "There is no page at this address." in html
    assert "<code>/no/such/page/</code>" in html
    assert "Resolver404" not in html
    assert "tried" not in html


def test_a_missing_object_404_shows_the_views_reason(agent_client):
    response = agent_client.get("/cases/CASE-999999/")
    assert response.status_code == 404
    _styled(response.content.decode())


def test_anonymous_visitors_get_the_page_with_a_log_in_link(client):
    response = client.get("/no/such/page/")
    assert response.status_code == 404
    html = response.content.decode()
    assert 'href="/login/?next=/no/such/page/"' in html


def test_the_api_answers_json_for_unknown_addresses_and_refusals(agent_client):
    missing = agent_client.get("/api/no-such-endpoint/")
    assert missing.status_code == 404
    assert missing["Content-Type"] == "application/json"
    assert missing.json() == {"detail": "Not found."}

    refused = agent_client.get("/api/metrics/summary/")  # managers only
    assert refused.status_code == 403
    assert refused["Content-Type"].startswith("application/json")
    assert "detail" in refused.json()


def test_a_json_client_of_a_browser_page_gets_json(agent_client):
    response = agent_client.get("/metrics/", headers={"Accept": "application/json"})
    assert response.status_code == 403
    assert response.json() == {"detail": "The dashboards are for support managers."}


def test_the_500_page_needs_no_database_and_gives_a_reference(django_assert_num_queries):
    request = RequestFactory().get("/cases/")
    request.request_id = "abc123"
    with django_assert_num_queries(0):
        response = error_views.server_error(request)
    assert response.status_code == 500
    html = response.content.decode()
    assert "Something went wrong on our side" in html
    assert "<code>abc123</code>" in html
    assert '<nav aria-label="Main">' in html


def test_the_api_500_is_json():
    request = RequestFactory().get("/api/cases/")
    request.request_id = "abc123"
    response = error_views.server_error(request)
    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"


def test_a_view_that_crashes_gets_the_500_page(client, settings):
    from django.urls import path

    def boom(request):
        raise RuntimeError("kaput")

    class Urls:
        urlpatterns = [path("boom/", boom)]
        handler500 = "supportdesk.core.error_views.server_error"

    settings.ROOT_URLCONF = Urls
    client.raise_request_exception = False
    response = client.get("/boom/")
    assert response.status_code == 500
    html = response.content.decode()
    assert "Something went wrong on our side" in html
    assert "kaput" not in html
    assert f"<code>{response['X-Request-ID']}</code>" in html
