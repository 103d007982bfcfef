"""An article's Markdown as the plain text that goes into a reply e-mail."""

from __future__ import annotations

import pytest
from django.urls import reverse

from knowledge.plaintext import markdown_to_plain


def test_headings_are_lines_and_emphasis_is_dropped():
    text = "# Reset your *password*\n\nPress **Save** and _wait_ ~~a while~~."
    assert markdown_to_plain(text) == "Reset your password\n\nPress Save and wait a while."


def test_links_become_text_and_url():
    text = (
        "See [the guide](https://docs.example/sso) or <https://status.example> or "
        "[x@acme.example](mailto:x@acme.example)."
    )
    assert markdown_to_plain(text) == (
        "See the guide (https://docs.example/sso) or https://status.example or x@acme.example."
    )


def test_lists_use_dashes_and_numbers_and_keep_nesting():
    text = "1. Open *Settings*\n2. Choose SSO\n   - upload the certificate\n   - save\n\n* a bullet"
    assert markdown_to_plain(text) == (
        "1. Open Settings\n2. Choose SSO\n   - upload the certificate\n   - save\n\n- a bullet"
    )


def test_code_is_kept_as_written():
    text = "Run `kubectl get pods`:\n\n```sh\ncurl -H 'X: <b>' https://api/*path*\n  indented\n```"
    assert (
        markdown_to_plain(text) == "Run kubectl get pods:\n\ncurl -H 'X: <b>' https://api/*path*\n  indented"
    )


def test_no_html_survives_but_its_text_does():
    text = (
        '<div class="note">Press <kbd>Ctrl</kbd>+<kbd>C</kbd> &amp; go<script>alert(1)</script></div>'
        "\n\nA <b>bold</b> word."
    )
    plain = markdown_to_plain(text)
    assert "<" not in plain
    assert "alert" not in plain
    assert plain == "Press Ctrl+C & go\n\nA bold word."


def test_quotes_rules_tables_and_images():
    text = "> quoted **text**\n\n---\n\n| Plan | Limit |\n|---|---|\n| Pro | 10 |\n\n![Diagram](https://img.example/d.png)"
    assert markdown_to_plain(text) == (
        "> quoted text\n\n----\n\nPlan | Limit\nPro | 10\n\nDiagram (https://img.example/d.png)"
    )


def test_empty_and_plain_text_pass_through():
    assert markdown_to_plain("") == ""
    assert markdown_to_plain("Clear your browser cache.") == "Clear your browser cache."


@pytest.mark.django_db
def test_the_case_page_inserts_the_plain_text(client, agent, manager, new_case, now):
    from knowledge import services

    article = services.create_draft(
        title="Checkout fails with 502 after deploy",
        body_markdown="## Fix\n\nClear the **cache**, see [status](https://status.example).",
        kind="article",
        product_area="",
        actor=agent,
        now=now,
    )
    services.publish(article, actor=manager, now=now)
    client.force_login(agent)
    html = client.get(new_case.get_absolute_url()).content.decode()
    assert 'data-insert-text="Fix\n\nClear the cache, see status (https://status.example)."' in html
    text = client.get(reverse("knowledge:customer-text", args=[article.slug])).content.decode()
    assert text == "Fix\n\nClear the cache, see status (https://status.example)."
