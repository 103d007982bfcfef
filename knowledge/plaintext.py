"""An article's Markdown as clean plain text, for a reply e-mail (the case page's "Insert into reply").

Parsed by the same Markdown parser the article pages use (markdown-it-py, ``rendering._markdown``),
then written out from the syntax tree: headings on lines of their own, list items as ``- `` (or
``1. ``), links as ``text (url)``, code kept as written, emphasis dropped, and no HTML (tags that an
author wrote are removed, their text kept; scripts and styles go with their content).
"""

from __future__ import annotations

import html

import nh3
from markdown_it.tree import SyntaxTreeNode

from .rendering import _markdown

_DROP_WITH_CONTENT = {"script", "style", "iframe", "object", "embed", "template", "noscript"}


def _strip_html(raw: str) -> str:
    """Text of an HTML fragment: every tag removed (and script/style with what they hold)."""
    return html.unescape(nh3.clean(raw, tags=set(), clean_content_tags=_DROP_WITH_CONTENT))


def _inline(node: SyntaxTreeNode) -> str:
    parts: list[str] = []
    for child in node.children:
        kind = child.type
        if kind == "text":
            parts.append(child.content)
        elif kind in ("softbreak", "hardbreak"):
            parts.append("\n")
        elif kind == "code_inline":
            parts.append(child.content)
        elif kind == "link":
            text = _inline(child)
            href = str(child.attrs.get("href", ""))
            same = href in (text, f"mailto:{text}")
            parts.append(text if not href or same else f"{text} ({href})")
        elif kind == "image":
            alt = _inline(child)
            src = str(child.attrs.get("src", ""))
            parts.append(f"{alt} ({src})" if alt and src else alt or src)
        elif kind == "html_inline":
            continue  # a tag such as <kbd>: the text around it is in the neighbouring text nodes
        else:  # em, strong, s (and anything else holding inline content): the words only
            parts.append(_inline(child))
    return "".join(parts)


def _indent(text: str, first: str, rest: str) -> str:
    lines = text.split("\n")
    out = [first + lines[0]]
    out += [(rest + line) if line else "" for line in lines[1:]]
    return "\n".join(out)


def _is_tight(list_node: SyntaxTreeNode) -> bool:
    for item in list_node.children:
        for child in item.children:
            if child.type == "paragraph":
                return bool(child.hidden)
    return True


def _list(node: SyntaxTreeNode) -> str:
    tight = _is_tight(node)
    ordered = node.type == "ordered_list"
    number = int(node.attrs.get("start", 1) or 1)
    items = []
    for item in node.children:
        marker = f"{number}. " if ordered else "- "
        number += 1
        body = ("\n" if tight else "\n\n").join(b for b in (_block(c) for c in item.children) if b)
        items.append(_indent(body, marker, " " * len(marker)))
    return ("\n" if tight else "\n\n").join(items)


def _table(node: SyntaxTreeNode) -> str:
    rows = []
    for section in node.children:  # thead, tbody
        for row in section.children:
            rows.append(
                " | ".join(_inline(cell.children[0]) if cell.children else "" for cell in row.children)
            )
    return "\n".join(rows)


def _block(node: SyntaxTreeNode) -> str:
    kind = node.type
    if kind in ("paragraph", "heading"):
        return _inline(node.children[0]) if node.children else ""
    if kind == "inline":
        return _inline(node)
    if kind in ("fence", "code_block"):
        return node.content.rstrip("\n")
    if kind in ("bullet_list", "ordered_list"):
        return _list(node)
    if kind == "blockquote":
        inner = "\n\n".join(b for b in (_block(c) for c in node.children) if b)
        return "\n".join(f"> {line}" if line else ">" for line in inner.split("\n"))
    if kind == "hr":
        return "----"
    if kind == "html_block":
        return _strip_html(node.content).strip()
    if kind == "table":
        return _table(node)
    return "\n\n".join(b for b in (_block(c) for c in node.children) if b)


def markdown_to_plain(text: str) -> str:
    """``text`` (Markdown) as plain text for an e-mail: structure kept, markup and HTML gone."""
    tree = SyntaxTreeNode(_markdown.parse(text or ""))
    blocks = [b for b in (_block(child) for child in tree.children) if b.strip()]
    joined = "\n\n".join(blocks)
    return "\n".join(line.rstrip() for line in joined.split("\n")).strip("\n")
