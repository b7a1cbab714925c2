"""How deep JSON may nest: one limit for request bodies and the JSON documents clients store.

Past ~1,000 levels Python's decoder, pydantic's validators and the indenting encoder of the
responses run out of stack (a 500); WildDuck's bodies and metaData need a handful of levels. A
generous limit far below the stack's keeps every later step safe, whatever the call depth then.
"""

from __future__ import annotations

from collections.abc import Iterable

MAX_JSON_DEPTH = 100


def nesting_exceeds(document: object, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether objects and arrays in `document` nest deeper than `limit` (the top is level 1).

    Iterative, so a deep document cannot exhaust the stack while it is being measured.
    """
    pending: list[tuple[object, int]] = [(document, 1)]
    while pending:
        value, depth = pending.pop()
        children: Iterable[object]
        if isinstance(value, dict):
            children = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > limit:
            return True
        pending.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False
