"""Article bodies are rendered from Markdown and sanitised: no script, handler or dangerous URL survives."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from knowledge.rendering import highlight_markers_to_html, render_markdown

XSS_PAYLOADS = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=https://evil.example/x.js></SCRIPT>",
    "<img src=x onerror=alert(1)>",
    "<img src=x oNeRrOr=alert(1)//",
    "[x](javascript:alert(1))",
    "[x](JAVASCRIPT:alert(1))",
    '<a href="JaVaScRiPt:alert(1)">click</a>',
    '<a href=" javascript:alert(1)">leading space</a>',
    '<a href="java\tscript:alert(1)">tab inside</a>',
    '<a href="&#106;avascript:alert(1)">entity</a>',
    '<a href="&#x6A;&#x61;&#x76;&#x61;&#x73;&#x63;&#x72;&#x69;&#x70;&#x74;:alert(1)">hex entities</a>',
    "[entity](&#106;avascript:alert(1))",
    '<a href="vbscript:msgbox(1)">vb</a>',
    "<svg onload=alert(1)>",
    "<svg><script>alert(1)</script></svg>",
    '<iframe src="https://evil.example"></iframe>',
    '<iframe srcdoc="<script>alert(1)</script>"></iframe>',
    '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">data link</a>',
    "[data](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "![img](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)",
    '<p style="background:url(javascript:alert(1))">style url</p>',
    '<div style="width: expression(alert(1))">expression</div>',
    "<style>body{background:url(javascript:alert(1))}</style>",
    "<math><mtext></mtext><mglyph><style><img src=x onerror=alert(1)>",
    '<math><mi xlink:href="javascript:alert(1)">x</mi></math>',
    '<noscript><p title="</noscript><img src=x onerror=alert(1)>">',
    "<details open ontoggle=alert(1)>",
    "<body onload=alert(1)>",
    '<form action="javascript:alert(1)"><button>go</button></form>',
    '<input autofocus onfocus="alert(1)">',
    '<object data="javascript:alert(1)"></object>',
    '<embed src="javascript:alert(1)">',
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    '<base href="javascript:alert(1)//">',
    '<link rel="stylesheet" href="javascript:alert(1)">',
    "<template><script>alert(1)</script></template>",
    '<a href="#" onclick="alert(1)">handler</a>',
    "<!--<img src=x onerror=alert(1)>-->",
    '<img src="x` `<script>alert(1)</script>"` `>',
    "<<script>script>alert(1)<</script>/script>",
    '<table background="javascript:alert(1)"><tr><td>x</td></tr></table>',
]

DANGEROUS_TAGS = {
    "script", "iframe", "svg", "math", "style", "object", "embed", "form", "input", "meta", "base",
    "link", "template", "body", "noscript", "frame", "frameset",
}  # fmt: skip
URL_ATTRIBUTES = {
    "href",
    "src",
    "action",
    "formaction",
    "background",
    "xlink:href",
    "srcdoc",
    "data",
    "poster",
}


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attributes: list[tuple[str, str, str]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for name, value in attrs:
            self.attributes.append((tag, name, value or ""))

    handle_startendtag = handle_starttag


def _parse(html: str) -> _Collector:
    collector = _Collector()
    collector.feed(html)
    collector.close()
    return collector


def _assert_harmless(html: str) -> None:
    parsed = _parse(html)
    lowered = html.lower()
    assert "<script" not in lowered
    assert not (set(parsed.tags) & DANGEROUS_TAGS), parsed.tags
    for tag, name, value in parsed.attributes:
        assert not name.lower().startswith("on"), (tag, name, value)
        assert name.lower() != "style", (tag, name, value)
        if name.lower() in URL_ATTRIBUTES:
            # What a browser would do: drop whitespace/control characters, compare case-insensitively.
            scheme = "".join(ch for ch in value if ch > " ").lower()
            assert not scheme.startswith(("javascript:", "vbscript:", "data:")), (tag, name, value)


@pytest.mark.parametrize("payload", XSS_PAYLOADS)
def test_known_xss_payloads_are_neutralised(payload):
    _assert_harmless(render_markdown(payload))


@pytest.mark.parametrize("payload", XSS_PAYLOADS)
def test_payloads_inside_ordinary_markdown_are_neutralised_too(payload):
    _assert_harmless(
        render_markdown(f"# Fix\n\n- step one {payload}\n\n> {payload}\n\n| a |\n|---|\n| {payload} |\n")
    )


def test_the_checker_itself_catches_unsafe_html():
    # Guards the guard: the assertions above must fail on unsanitised HTML.
    for unsafe in (
        "<script>alert(1)</script>",
        '<img src="x" onerror="alert(1)">',
        '<a href=" JaVaScRiPt:alert(1)">x</a>',
        '<a href="data:text/html,x">x</a>',
        '<p style="color:red">x</p>',
    ):
        with pytest.raises(AssertionError):
            _assert_harmless(unsafe)


def test_ordinary_markdown_is_kept():
    html = render_markdown(
        "# Reset SSO\n\n"
        "Some **bold** and *italic* text with `inline code`.\n\n"
        "1. Open the admin console\n2. Sign the user out\n\n"
        "- a bullet\n- another\n\n"
        "```\nsdctl sessions revoke --user alice\n```\n\n"
        "> A quote\n\n"
        "| Setting | Value |\n|---|---|\n| timeout | 30 |\n\n"
        "See [the guide](https://docs.example.com/sso?x=1&y=2) or <mailto:help@example.com>.\n\n"
        "<kbd>Ctrl</kbd>+<kbd>C</kbd> and <details><summary>More</summary>hidden</details>\n\n"
        "![diagram](https://docs.example.com/d.png)\n"
    )
    parsed = _parse(html)
    for tag in (
        "h1",
        "strong",
        "em",
        "code",
        "ol",
        "ul",
        "li",
        "pre",
        "blockquote",
        "table",
        "th",
        "td",
        "a",
        "kbd",
    ):
        assert tag in parsed.tags, tag
    assert 'href="https://docs.example.com/sso?x=1&amp;y=2"' in html
    assert 'href="mailto:help@example.com"' in html
    assert 'src="https://docs.example.com/d.png"' in html
    assert "sdctl sessions revoke --user alice" in html
    assert "<details><summary>More</summary>" in html


def test_links_get_noopener_noreferrer_nofollow():
    html = render_markdown(
        "[docs](https://docs.example.com/) and <a href='https://x.example' rel='opener'>x</a>"
    )
    rels = [value for tag, name, value in _parse(html).attributes if tag == "a" and name == "rel"]
    assert rels == ["noopener noreferrer nofollow", "noopener noreferrer nofollow"]


def test_code_blocks_show_html_as_text():
    html = render_markdown("```html\n<script>alert(1)</script>\n```")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script" not in html


def test_highlight_markers_escape_everything_but_the_marks():
    html = highlight_markers_to_html("before \x02<b>match</b>\x03 after \x02open")
    assert str(html) == "before <mark>&lt;b&gt;match&lt;/b&gt;</mark> after <mark>open</mark>"


def test_diff_lines_keep_markdown_rules_and_mark_changes():
    from knowledge.rendering import diff_lines

    lines = diff_lines("Intro\n---\nold step", "Intro\nnew step", old_label="r1", new_label="r2")
    assert [(line.kind, line.text) for line in lines] == [
        ("hunk", "@@ -1,3 +1,2 @@"),
        ("ctx", " Intro"),
        ("del", "----"),
        ("del", "-old step"),
        ("add", "+new step"),
    ]
    assert diff_lines("same", "same", old_label="a", new_label="b") == []
