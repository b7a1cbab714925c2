"""How deep JSON may nest: one limit for request bodies and the JSON documents clients store.

Past ~1,000 levels Python's decoder, pydantic's validators and the indenting encoder of the
responses run out of stack (a 500); WildDuck's bodies and metaData need a handful of levels. A
generous limit far below the stack's keeps every later step safe, whatever the call depth then.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

MAX_JSON_DEPTH = 100


def nesting_exceeds(document: object, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether objects and arrays in `document` nest deeper than `limit` (the top is level 1).

    Level by level and without recursion, so a deep document cannot exhaust the stack while it
    is measured; each level is gathered by a comprehension, which keeps a wide document (200,000
    objects in a list) to a fraction of the time json.loads took to build it.
    """
    level: list[dict[Any, Any] | list[Any]] = (
        [document] if isinstance(document, dict | list) else []
    )
    depth = 1
    while level:
        if depth > limit:
            return True
        below: list[dict[Any, Any] | list[Any]] = []
        for value in level:
            children: Iterable[Any] = value.values() if isinstance(value, dict) else value
            below.extend([child for child in children if isinstance(child, dict | list)])
        level = below
        depth += 1
    return False
