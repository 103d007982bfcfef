"""Markdown to safe HTML: markdown-it-py renders, nh3 (the Rust ammonia sanitiser) cleans.

Authors may write a little raw HTML (``<kbd>``, ``<details>``); whatever they write, only the tags,
attributes and URL schemes allowed below survive: no script, no event handler, no ``javascript:`` or
``data:`` URL, no style. Links get ``rel="noopener noreferrer nofollow"``.
"""

from __future__ import annotations

import difflib
import html
import re
from dataclasses import dataclass

import nh3
from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt

ALLOWED_TAGS = frozenset(
    {
        "a", "abbr", "b", "blockquote", "br", "code", "dd", "del", "details", "dl", "dt", "em",
        "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "kbd", "li", "mark", "ol", "p", "pre",
        "s", "samp", "strong", "sub", "summary", "sup", "table", "tbody", "td", "tfoot", "th",
        "thead", "tr", "ul",
    }
)  # fmt: skip
ALLOWED_ATTRIBUTES: dict[str, set[str]] = {
    "a": {"href", "title"},
    "abbr": {"title"},
    "img": {"src", "alt", "title", "width", "height"},
    "ol": {"start"},
    "td": {"align", "colspan", "rowspan"},
    "th": {"align", "colspan", "rowspan", "scope"},
}
ALLOWED_URL_SCHEMES = frozenset({"http", "https", "mailto"})
LINK_REL = "noopener noreferrer nofollow"

_markdown = MarkdownIt("commonmark", {"html": True, "linkify": False, "typographer": False}).enable(
    ["table", "strikethrough"]
)


def sanitise_html(raw_html: str) -> str:
    """Keep only the allowed tags, attributes and URL schemes; drop script/style with their content."""
    return nh3.clean(
        raw_html,
        tags=set(ALLOWED_TAGS),
        clean_content_tags={"script", "style", "iframe", "object", "embed", "template", "noscript"},
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=set(ALLOWED_URL_SCHEMES),
        link_rel=LINK_REL,
        strip_comments=True,
    )


def render_markdown(text: str) -> SafeString:
    """The article body as HTML that is safe to put in a page."""
    return mark_safe(sanitise_html(_markdown.render(text or "")))  # noqa: S308 - sanitised just above


# --- Search snippets -----------------------------------------------------------------------------

# Highlight markers that cannot occur in stored text (PostgreSQL's ts_headline and the SQLite
# fallback put them around matches); the text is escaped first, then the markers become <mark>.
MARK_START = "\x02"
MARK_STOP = "\x03"
_MARKERS_RE = re.compile(f"[{MARK_START}{MARK_STOP}]")


def highlight_markers_to_html(text: str) -> SafeString:
    """Escape ``text`` and turn the highlight markers into ``<mark>`` elements."""
    escaped = html.escape(text or "", quote=True)
    balanced = []
    open_mark = False
    for part in re.split(f"({MARK_START}|{MARK_STOP})", escaped):
        if part == MARK_START and not open_mark:
            balanced.append("<mark>")
            open_mark = True
        elif part == MARK_STOP and open_mark:
            balanced.append("</mark>")
            open_mark = False
        elif not _MARKERS_RE.fullmatch(part or "x"):
            balanced.append(part)
    if open_mark:
        balanced.append("</mark>")
    return mark_safe("".join(balanced))  # noqa: S308 - everything but our own <mark> is escaped


_MARKDOWN_NOISE = re.compile(r"[`*_#>\[\]()|~]+|<[^>]{0,200}>")
_SPACES = re.compile(r"\s+")


def plain_text(markdown_text: str) -> str:
    """A rough plain-text version of markdown for snippets (markup characters and tags removed)."""
    return _SPACES.sub(" ", _MARKDOWN_NOISE.sub(" ", markdown_text or "")).strip()


# --- Revision diffs ---------------------------------------------------------------------------------


@dataclass
class DiffLine:
    kind: str  # "add", "del", "hunk" or "ctx"
    text: str


def diff_lines(old: str, new: str, *, old_label: str, new_label: str) -> list[DiffLine]:
    """A unified diff of two texts as typed lines (the template escapes them)."""
    lines = []
    diff = difflib.unified_diff(
        old.splitlines(), new.splitlines(), fromfile=old_label, tofile=new_label, lineterm="", n=3
    )
    for index, line in enumerate(diff):
        if index < 2:  # the "--- old" / "+++ new" header; a removed "---" rule later is content
            continue
        if line.startswith("@@"):
            kind = "hunk"
        elif line.startswith("+"):
            kind = "add"
        elif line.startswith("-"):
            kind = "del"
        else:
            kind = "ctx"
        lines.append(DiffLine(kind=kind, text=line))
    return lines
