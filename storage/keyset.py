"""Pages of a sorted query whose cursors also remember where in the list they point.

WildDuck pages messages by date. The natural way, "rows with (idate, _id) beyond the cursor's",
is what MongoDB does best with a `{mailbox, idate}` index, but the embedded server evaluates any
filter on a date outside SQL and loads every document it matches: page 2 of a 15,000 message
mailbox cost 240 ms there, against 20-70 ms for the same rows found by position (a sort and a
skip, which SQL does; measured on nx-27017 0.8.1).

So a cursor here carries the sort value and `_id` of its row *and* that row's position in the
list. The next page is read by position, in a window a little wider than the page; the row the
cursor names must be found in it (by `_id` and sort value), so rows added or removed meanwhile
shift the window but never the result. When the row is not there (the list moved by more than
the window's slack, or a cursor without a position) the page falls back to the value comparison,
which is always right and on MongoDB also cheap. Cursors are the position layout of
storage/cursors.py (`[value, id, position | null, inclusive]`), the one codec.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable

from pymongo.asynchronous.collection import AsyncCollection

from .cursors import Cursor, decode_cursor, encode_position
from .database import Document
from .pagination import Page, PageRequest, start_of

#: rows read on either side of where a cursor's row is expected
SLACK = 20


#: a cursor of this module: the position layout of storage/cursors.py
Position = Cursor

__all__ = ["SLACK", "Position", "decode_position", "encode_position", "keyset_page"]


def decode_position(cursor: str, name: str) -> Position:
    return decode_cursor(cursor, name)


class _Reader:
    """Reads rows of `query` in the list's order (by `field`, then `_id`)."""

    def __init__(
        self,
        collection: AsyncCollection[Document],
        query: Document,
        field: str,
        ascending: bool,
        projection: Document,
    ) -> None:
        self.collection = collection
        self.query = query
        self.field = field
        self.ascending = ascending
        # the sort value is needed to write cursors and to recognise a cursor's row
        self.projection = {**projection, field: 1, "_id": 1}

    async def read(
        self, *, skip: int = 0, limit: int, beyond: Position | None = None, reverse: bool = False
    ) -> list[Document]:
        """Up to `limit` rows from position `skip`; or, with `beyond`, the rows after it by
        value (before it with `reverse`, nearest first)."""
        forward = self.ascending != reverse
        direction = 1 if forward else -1
        query = self.query
        if beyond is not None:
            op = "$gt" if forward else "$lt"
            id_op = op + "e" if beyond.inclusive else op
            after = {
                "$or": [
                    {self.field: {op: beyond.value}},
                    {self.field: beyond.value, "_id": {id_op: beyond.ident}},
                ]
            }
            query = {"$and": [query, after]}
        cursor = self.collection.find(
            query,
            self.projection,
            sort=[(self.field, direction), ("_id", direction)],
            skip=skip,
            limit=limit,
        )
        return await cursor.to_list(length=limit)

    def holds(self, row: Document, position: Position) -> bool:
        return bool(row["_id"] == position.ident and row.get(self.field) == position.value)

    async def after(self, position: Position, count: int) -> tuple[list[Document], int | None]:
        """Up to `count` rows after the cursor's row (from it when inclusive), and the index of
        the first of them when known."""
        if position.offset is not None:
            start = max(0, position.offset - SLACK)
            wanted = position.offset - start + SLACK + count + 1
            window = await self.read(skip=start, limit=wanted)
            for index, row in enumerate(window):
                if self.holds(row, position):
                    first = index if position.inclusive else index + 1
                    rows = window[first : first + count]
                    # complete: enough rows, or the window reached the end of the list
                    if len(rows) == count or len(window) < wanted:
                        return rows, start + first
                    break
        return await self.read(limit=count, beyond=position), None

    async def before(self, position: Position, count: int) -> tuple[list[Document], int | None]:
        """Up to `count` rows before the cursor's row (up to it when inclusive), in list order,
        and the index of the first of them when known."""
        if position.offset is not None:
            start = max(0, position.offset - count - SLACK)
            window = await self.read(skip=start, limit=position.offset - start + SLACK + 1)
            for index, row in enumerate(window):
                if self.holds(row, position):
                    end = index + 1 if position.inclusive else index
                    rows = window[max(0, end - count) : end]
                    if len(rows) == count or start == 0:
                        return rows, start + max(0, end - count)
                    break
        rows = await self.read(limit=count, beyond=_flipped(position), reverse=True)
        rows.reverse()
        return rows, None


def _flipped(position: Position) -> Position:
    # walking back from the row: "beyond" it in the reversed order
    return Position(position.value, position.ident, None, position.inclusive)


async def keyset_page(
    collection: AsyncCollection[Document],
    query: Document,
    paging: PageRequest,
    *,
    field: str,
    ascending: bool,
    projection: Document,
    total: int | Awaitable[int],
) -> Page:
    """One page of `query` sorted by (field, _id), started as `pagination.start_of` says.
    `total` is given, as a number (a mailbox's counter) or
    an awaitable run side by side with the page's query; nothing here counts."""
    reader = _Reader(collection, query, field, ascending, projection)
    limit = paging.limit
    try:
        bound, backwards = start_of(paging)
    except BaseException:
        if inspect.iscoroutine(total):
            total.close()  # a bad cursor: the count is never run, and must not warn it was not
        raise

    async def rows_of_page() -> tuple[list[Document], int | None]:
        if bound is None:
            return await reader.read(limit=limit + 1), 0
        if backwards:
            return await reader.before(bound, limit + 1)
        return await reader.after(bound, limit + 1)

    if isinstance(total, int):
        (rows, start), count = await rows_of_page(), total
    else:
        (rows, start), count = await asyncio.gather(rows_of_page(), total)
    more = len(rows) > limit
    if backwards and more:
        rows = rows[1:]  # the extra row is the one before the page
        start = None if start is None else start + 1
    rows = rows[:limit]
    has_next = more or backwards
    has_previous = bound is not None and (not backwards or more)

    def cursor(index: int) -> str:
        row = rows[index]
        offset = None if start is None else start + index
        return encode_position(Position(row.get(field), row["_id"], offset))

    if not rows:
        # past the end (rows removed meanwhile): the cursor given still leads back
        back = (
            encode_position(Position(bound.value, bound.ident, bound.offset, inclusive=True))
            if bound is not None
            else False
        )
        next_cursor, previous_cursor = (back, False) if backwards else (False, back)
        return Page([], int(count), paging.page if bound else 1, next_cursor, previous_cursor)
    return Page(
        results=rows,
        total=int(count),
        page=paging.page if has_previous else 1,
        next_cursor=cursor(len(rows) - 1) if has_next else False,
        previous_cursor=cursor(0) if has_previous else False,
    )
