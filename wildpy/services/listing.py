"""Filters shared by the account listings (users, addresses): text, forward target and tags."""

from __future__ import annotations

import re
from collections.abc import Sequence

from wildpy.fields import parse_tag_filter
from wildpy.storage.database import Document


def contains(fields: Sequence[str], text: str | None) -> Document | None:
    """Any of `fields` contains `text`, literally and lowercased (the fields are lowercase)."""
    if not text:
        return None
    pattern = {"$regex": re.escape(text.lower())}
    if len(fields) == 1:
        return {fields[0]: pattern}
    return {"$or": [{field: pattern} for field in fields]}


def listing_filter(
    *,
    text_fields: Sequence[str],
    query: str | None = None,
    forward: str | None = None,
    tags: str | None = None,
    required_tags: str | None = None,
    owner: Document | None = None,
) -> Document:
    """The MongoDB filter of a listing: every given criterion must hold."""
    conditions: list[Document] = [owner] if owner else []
    text = contains(text_fields, query)
    if text:
        conditions.append(text)
    if forward:
        # targets is an array of sub-documents: $elemMatch, never a dotted path (storage.md)
        pattern = {"$regex": re.escape(forward.lower())}
        conditions.append({"targets": {"$elemMatch": {"value": pattern}}})
    if tags:
        conditions.append({"tagsview": {"$in": parse_tag_filter(tags)}})
    if required_tags:
        conditions.append({"tagsview": {"$all": parse_tag_filter(required_tags)}})
    if not conditions:
        return {}
    return conditions[0] if len(conditions) == 1 else {"$and": conditions}
