"""Filters shared by the account listings (users, addresses, aliases): text, forward target, tags.

Query building belongs to storage/: the services name the criteria, this module turns them into
MongoDB filters.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from wildpy.fields import parse_tag_filter

from .database import Document


@dataclass(frozen=True)
class ListingCriteria:
    """What a listing asks for; every given criterion must hold."""

    #: a part of the listed text fields (address, username ...), matched lowercased
    query: str | None = None
    #: a part of a forward target's value
    forward: str | None = None
    #: comma-separated tags, any of which must be set
    tags: str | None = None
    #: comma-separated tags, all of which must be set
    required_tags: str | None = None


def contains(fields: Sequence[str], text: str | None) -> Document | None:
    """Any of `fields` contains `text`, literally and lowercased (the fields are lowercase)."""
    if not text:
        return None
    pattern = {"$regex": re.escape(text.lower())}
    if len(fields) == 1:
        return {fields[0]: pattern}
    return {"$or": [{field: pattern} for field in fields]}


def listing_filter(
    criteria: ListingCriteria, *, text_fields: Sequence[str], owner: Document | None = None
) -> Document:
    """The MongoDB filter of a listing: every given criterion must hold."""
    conditions: list[Document] = [owner] if owner else []
    text = contains(text_fields, criteria.query)
    if text:
        conditions.append(text)
    if criteria.forward:
        # targets is an array of sub-documents: $elemMatch, never a dotted path (storage.md)
        pattern = {"$regex": re.escape(criteria.forward.lower())}
        conditions.append({"targets": {"$elemMatch": {"value": pattern}}})
    if criteria.tags:
        conditions.append({"tagsview": {"$in": parse_tag_filter(criteria.tags)}})
    if criteria.required_tags:
        conditions.append({"tagsview": {"$all": parse_tag_filter(criteria.required_tags)}})
    if not conditions:
        return {}
    return conditions[0] if len(conditions) == 1 else {"$and": conditions}
