"""The tag rule: the one place that says what a tag name is (cases and knowledge articles share tags).

A tag is what a person types, cleaned: surrounding space dropped, lower case, each run of inner
white space made one ``-`` (``"Login Bug"`` -> ``login-bug``). What is left must be 1 to 50 ASCII
letters and digits, with ``-`` or ``_`` allowed only between them: ``sso``, ``login-bug``, ``p1_fix``.
Refused: a leading or trailing ``-``/``_`` (``-leading``), any other character (``.``, ``/``, ``#``),
and letters outside a-z (``café``): the table's name is a slug, used in URLs and filters, and the
product has always stored ASCII slugs. Lists are deduplicated and sorted (tags are a set; events
and pages show them by name).

Tags stored before this rule (the API once took ``-leading``) stay readable and stay on their case or
article: a name the object already carries is kept as it is (``keep=``), only new names must follow
the rule. Pure code: no ORM, forms and serializers translate ``InvalidTag`` to their own errors.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from supportdesk.core.errors import DomainError

MAX_LENGTH = 50  # Tag.name's max_length
MAX_PER_OBJECT = 50  # tags one request may set on a case or an article
RULE = (
    f"a tag is lower-case letters a–z and digits, with “-” or “_” only between them, "
    f"at most {MAX_LENGTH} characters"
)
_VALID = re.compile(r"[a-z0-9](?:[a-z0-9_-]*[a-z0-9])?")
_SPACE = re.compile(r"\s+")


class InvalidTag(DomainError):
    """One or more tag names break the rule; ``bad`` holds them as cleaned (400 on ``field``)."""

    code = "invalid_tag"

    def __init__(self, bad: list[str], *, field: str = "tags") -> None:
        self.bad = bad
        shown = ", ".join(f"“{b}”" for b in bad)
        noun = "Not a valid tag" if len(bad) == 1 else "Not valid tags"
        super().__init__(f"{noun}: {shown} ({RULE}).", field=field)


def clean(name: str) -> str:
    """The name as it would be stored, without checking it: trimmed, lower case, spaces as ``-``."""
    return _SPACE.sub("-", name.strip().lower())


def is_valid(name: str) -> bool:
    """Whether an already cleaned name follows the rule."""
    return len(name) <= MAX_LENGTH and _VALID.fullmatch(name) is not None


def normalise(name: str, *, field: str = "tags") -> str:
    """The stored form of one tag name, or InvalidTag (an empty name is invalid too)."""
    cleaned = clean(name)
    if not is_valid(cleaned):
        raise InvalidTag([cleaned or name], field=field)
    return cleaned


def normalise_all(names: Iterable[str], *, keep: Iterable[str] = (), field: str = "tags") -> list[str]:
    """The stored form of a list of names: blanks dropped, deduplicated, sorted; InvalidTag naming every
    bad one. A name in ``keep`` (the object's current tags) is accepted as it is."""
    kept = set(keep)
    cleaned = {clean(n) for n in names if n and n.strip()}
    bad = sorted(n for n in cleaned if n not in kept and not is_valid(n))
    if bad:
        raise InvalidTag(bad, field=field)
    return sorted(cleaned)


def split(text: str) -> list[str]:
    """Names typed in one box, separated by commas."""
    return text.split(",")
