"""Exact checks of one landing line's JSON structure, shared by both engines.

Two defects no vectorised JSON decoder reports the same way on every engine:

- a line nested deeper than MAX_DEPTH levels: Python's json module raises RecursionError near
  1,000 levels, Spark's Jackson reader gives up at 1,000 and Polars at about 1,024; every engine
  quarantines such a line with the reason TOO_DEEP instead;
- a top-level object that repeats a key: Polars keeps the first value, Python's json module
  and Spark keep the last, so the same line could say "consents" on one path and "does not"
  on another; it is quarantined with the reason `duplicate key 'NAME'` (NAME: the first key met
  a second time, reading left to right). Only the line's own (top-level) keys count: a nested
  object under a known column is rejected anyway ("nested dict"), and one under an unknown key
  is not kept, so a key repeated inside it changes no row.

The engines run cheap vectorised pre-filters (bracket and colon counts) and call these
functions only for the few lines the pre-filters cannot clear. `line_checks()` builds the
functions inside a function so that cloudpickle ships them to Spark executors by value
(executors need no `stedi_assets` install).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

#: Deepest nesting of arrays/objects a landing line may have (a STEDI record has 1 level).
MAX_DEPTH = 100
TOO_DEEP = f"too deeply nested (more than {MAX_DEPTH} levels)"


class LineChecks(NamedTuple):
    #: True when the line opens more than MAX_DEPTH arrays/objects at once (outside strings);
    #: works on any text, valid JSON or not, without recursion.
    too_deep: Callable[[str], bool]
    #: The reason a line that is a valid JSON object (and not too deep) is quarantined for its
    #: structure (`duplicate key 'NAME'`), else None.
    duplicate_key: Callable[[str], str | None]
    #: Why a line a JSON decoder refused is quarantined, in the words of Python's json module
    #: (too deep, invalid JSON, not an object, a repeated key); None if it is a valid object.
    rejected_reason: Callable[[str | None], str | None]


def line_checks() -> LineChecks:
    import json
    import re

    tokens = re.compile(r'"(?:[^"\\]|\\.)*"?|[\[\]{}]')  # a string (maybe unclosed), a bracket
    too_deep_reason = TOO_DEEP
    max_depth = MAX_DEPTH

    def too_deep(text: str) -> bool:
        depth = 0
        for match in tokens.finditer(text):
            char = match.group()[0]
            if char in "[{":
                depth += 1
                if depth > max_depth:
                    return True
            elif char in "]}":
                depth -= 1
        return False

    def loads(text: str) -> tuple[object, str | None]:
        """json.loads, plus the first repeated key of the top-level object."""
        last: list[str | None] = [None]

        def pairs_to_dict(pairs: list[tuple[str, object]]) -> dict:
            # called for every object, innermost first: the last call is the top-level one
            obj: dict = {}
            repeated = None
            for key, value in pairs:
                if key in obj and repeated is None:
                    repeated = key
                obj[key] = value
            last[0] = repeated
            return obj

        value = json.loads(text, object_pairs_hook=pairs_to_dict)
        return value, last[0] if isinstance(value, dict) else None

    def duplicate_key(text: str) -> str | None:
        repeated = loads(text)[1]
        return None if repeated is None else f"duplicate key '{repeated}'"

    def rejected_reason(text: str | None) -> str | None:
        text = text or ""
        if too_deep(text):
            return too_deep_reason
        try:
            obj, repeated = loads(text)
        except json.JSONDecodeError as exc:
            return f"invalid JSON: {exc.msg} (column {exc.colno})"
        if obj is None:
            return "not a JSON object"
        if not isinstance(obj, dict):
            return f"not a JSON object but a {type(obj).__name__}"
        return None if repeated is None else f"duplicate key '{repeated}'"

    return LineChecks(too_deep, duplicate_key, rejected_reason)
