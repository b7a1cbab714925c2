"""Cursor pagination over (field, _id), as WildDuck's lists page.

Cursors are the value layout of storage/cursors.py (`[value, id]`), the one codec.
Each page costs two round trips: one count, one bounded find.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection

from .cursors import Cursor, decode_cursor, encode_cursor

Document = dict[str, Any]

__all__ = [
    "Bound",
    "Page",
    "PageRequest",
    "decode_cursor",
    "encode_cursor",
    "paginate",
    "start_of",
]


@dataclass(frozen=True)
class PageRequest:
    """What a client asked for: page size, a cursor either way, and the page number it shows."""

    limit: int = 20
    next: str | None = None
    previous: str | None = None
    page: int = 1


@dataclass
class Page:
    results: list[Document]
    total: int
    page: int
    next_cursor: str | bool
    previous_cursor: str | bool


#: where a page of `paginate` starts (the codec's cursor)
Bound = Cursor


def start_of(paging: PageRequest) -> tuple[Cursor | None, bool]:
    """Where the asked page starts, and whether it is read backwards from there, for every
    paged list: `next` beats `previous`. A `previous` cursor counts whatever `page` says:
    WildDuck drops it on page 1 (its default), so a client that does not send page numbers
    stepped back from page 3 to page 1; `page` is informational only."""
    if paging.next:
        return decode_cursor(paging.next, "next"), False
    if paging.previous:
        return decode_cursor(paging.previous, "previous"), True
    return None, False


async def paginate(
    collection: AsyncCollection[Document],
    query: Document,
    *,
    field: str = "_id",
    ascending: bool = True,
    paging: PageRequest = PageRequest(),
    projection: Document | None = None,
) -> Page:
    """One page of `query`, sorted by (field, _id), started as `start_of` says."""
    bound, backwards = start_of(paging)
    limit, page = paging.limit, paging.page

    # walking backwards is walking forwards in the opposite order, then flipping the page
    forward = ascending != backwards
    direction = 1 if forward else -1
    filters = [query]
    if bound is not None:
        op = "$gt" if forward else "$lt"
        id_op = op + "e" if bound.inclusive else op
        if field == "_id":
            filters.append({"_id": {id_op: bound.ident}})
        else:
            filters.append(
                {
                    "$or": [
                        {field: {op: bound.value}},
                        {field: bound.value, "_id": {id_op: bound.ident}},
                    ]
                }
            )
    combined = filters[0] if len(filters) == 1 else {"$and": filters}

    total = await collection.count_documents(query)
    sort = [("_id", direction)] if field == "_id" else [(field, direction), ("_id", direction)]
    cursor = collection.find(combined, projection, sort=sort, limit=limit + 1)
    rows = await cursor.to_list(length=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    if backwards:
        rows.reverse()

    def cursor_of(row: Document) -> str:
        return encode_cursor(row.get(field) if field != "_id" else row["_id"], row["_id"])

    has_next = more or backwards
    has_previous = bool(rows) and (bound is not None) and (not backwards or more)
    if not rows:
        # past the end (rows deleted meanwhile): the cursor given still leads back the other way
        # the row at the cursor belongs to the page back, so the way back includes it
        given = encode_cursor(bound.value, bound.ident, inclusive=True) if bound else False
        return Page([], total, page, given if backwards else False, False if backwards else given)
    return Page(
        results=rows,
        total=total,
        page=page if has_previous else 1,
        next_cursor=cursor_of(rows[-1]) if has_next else False,
        previous_cursor=cursor_of(rows[0]) if has_previous else False,
    )
