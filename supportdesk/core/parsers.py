"""The API's JSON parser: DRF's, with a bound on nesting.

A body nested thousands of levels deep makes the JSON decoder raise ``RecursionError``, which
DRF's parser does not translate (a 500). Here it is a 400, and so is any document nested deeper
than ``MAX_JSON_DEPTH`` levels: no request of this API needs more than a handful.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

MAX_JSON_DEPTH = 32


def depth(document) -> int:
    """The nesting depth of a parsed JSON document (a scalar is 0), without recursion."""
    deepest = 0
    pending = [(document, 0)]
    while pending:
        value, level = pending.pop()
        children: Iterable[Any]
        if isinstance(value, dict):
            children = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        level += 1
        deepest = max(deepest, level)
        pending.extend((child, level) for child in children)
    return deepest


class BoundedJSONParser(JSONParser):
    max_depth = MAX_JSON_DEPTH

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(f"JSON parse error - nested more than {self.max_depth} levels deep.") from None
        if depth(data) > self.max_depth:
            raise ParseError(f"JSON parse error - nested more than {self.max_depth} levels deep.")
        return data
