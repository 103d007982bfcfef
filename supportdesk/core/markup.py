"""Markup written in Python for the hottest parts of pages (the queue's rows, its filter options)."""

from __future__ import annotations

import html
import re

_SPECIAL = re.compile(r"[&<>\"']").search


def escape_text(value: object) -> str:
    """The same text as ``django.utils.html.escape`` (``&<>"'`` escaped), as a plain ``str``.

    Django's ``escape`` first checks its argument for lazy text; called thousands of times a page,
    that check costs more than the escaping itself. Pass lazy text through ``str`` first, as here.
    Most values (names, keys, labels) hold none of the five characters: one scan tells, and they
    are returned as they are.
    """
    text = str(value)
    return html.escape(text) if _SPECIAL(text) else text
