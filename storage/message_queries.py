"""Read queries of the REST message API over `mail.messages`: listings by date, search, counts.

The message service (wildpy/services/messages.py) owns every write that moves a counter, a uid
or a reference. This repository adds what the REST listing and search need on top: indexes for
ordering by internal date per mailbox and per user, keyset pages by `(idate, _id)` whose total
the caller supplies, exact counts, and the two field updates that touch no counter (`expires`
and `metaData`).

Measured on the embedded server (nx-27017 0.8.1, 20,000 messages), which shaped the choices:

- `count_documents` runs an aggregation costing ~0.5 s whatever it matches; counting the ids a
  `find` returns costs time in proportion to the matches (1 ms for a thread, 50 ms for 2,000
  rows). `count` below does the latter.
- an equality on `user` is only indexed when an index is *named* after it, hence `{user}` next
  to `{user, idate}`;
- a filter comparing a date (`idate < x`) is evaluated outside SQL, loading every document it
  matches; sorting by `idate` is done in SQL. Hence pages found by position (storage/keyset.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection

from .collection import Collection, Index
from .database import Document
from .keyset import keyset_page
from .pagination import Page, PageRequest

#: rows counted per round trip when counting the ids a query returns
COUNT_BATCH = 5000


class MessageQueries(Collection):
    """The `messages` collection as the REST listings and search read it."""

    database = "mail"
    name = "messages"
    indexes = [
        # a mailbox listing, newest or oldest first (WildDuck pages mailboxes by idate)
        Index([("mailbox", 1), ("idate", 1)]),
        # search over all of a user's mailboxes, ordered by date; `{user}` alone makes the
        # equality indexable on the embedded server (module docstring)
        Index([("user", 1), ("idate", 1)]),
        Index([("user", 1)]),
    ]

    async def page_by_date(
        self,
        query: Document,
        paging: PageRequest,
        *,
        ascending: bool,
        projection: Document,
        total: int | Awaitable[int],
    ) -> Page:
        """One page of `query` ordered by (idate, _id); see `keyset_page`."""
        return await keyset_page(
            self.collection,
            query,
            paging,
            field="idate",
            ascending=ascending,
            projection=projection,
            total=total,
        )

    async def count(self, query: Document) -> int:
        """How many messages match `query` (ids counted, see the module docstring)."""
        return await count_ids(self.collection, query)

    async def in_uid_order(
        self, query: Document, projection: Document, *, after_uid: int, limit: int
    ) -> list[Document]:
        """Up to `limit` messages of `query` with a uid above `after_uid`, lowest uid first:
        how bulk actions walk a UID set in bounded batches. The bound joins the query's own
        `uid` condition rather than an `$and` (kept flat for the embedded server)."""
        uid = _uid_above(query.get("uid"), after_uid)
        if uid is None:
            return []
        cursor = self.collection.find(
            {**query, "uid": uid}, projection, sort=[("uid", 1)], limit=limit
        )
        return await cursor.to_list(length=limit)

    async def set_fields(
        self, message: Document, sets: Document, unsets: Sequence[str] = ()
    ) -> bool:
        """Set fields of one message that no counter depends on; False when it is no longer
        where it was read (moved, deleted, claimed by a job)."""
        update: Document = {}
        if sets:
            update["$set"] = dict(sets)
        if unsets:
            update["$unset"] = dict.fromkeys(unsets, "")
        if not update:
            return True
        result = await self.collection.update_one(
            {"_id": message["_id"], "mailbox": message["mailbox"], "uid": message["uid"]},
            update,
        )
        return result.matched_count == 1


async def count_ids(collection: AsyncCollection[Document], query: Document) -> int:
    """Count the documents of `query` by reading their ids in batches (never all in memory)."""
    total = 0
    cursor = collection.find(query, {"_id": 1}, batch_size=COUNT_BATCH)
    async for _ in cursor:
        total += 1
    return total


def _uid_above(condition: Any, after: int) -> Any:
    """`condition` on uid narrowed to uids above `after`; None when nothing can match."""
    if condition is None:
        return {"$gt": after}
    if isinstance(condition, int):
        return condition if condition > after else None
    if "$in" in condition:
        remaining = [uid for uid in condition["$in"] if uid > after]
        return {"$in": remaining} if remaining else None
    return {**condition, "$gt": after}
