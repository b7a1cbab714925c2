"""Repositories of the message store in `db.mail`: messages, archived, threads, tombstones.

Only queries live here; the rules (uids, counters, quota, attachment references) live in the
message store (wildpy/store/). One repository per collection: `Messages` serves the store's
writes and the REST listings and search alike. See docs/mail-store.md for the document shapes.

Indexes are chosen for both servers. The embedded one (nx-27017 0.8.1 on SQLite) has three
habits that shape them:

- an equality on a field uses an index only when some index's *name* ends with that field
  (`idx_<collection>_<fields joined by _>`); otherwise it becomes an array-containment test and
  the whole collection is scanned. Hence single-field indexes such as `{mailbox}` next to the
  compound `{mailbox, uid}` that serves the ordering (on MongoDB they are merely redundant);
- `$in` on any field but `_id` always scans, so hot paths use `_id` lists or equalities;
- an array field is indexed as one value: there are no multikey indexes (see threads).

Listings and search were measured on the embedded server (nx-27017 0.8.1, 20,000 messages),
which shaped the choices:

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

from pymongo import UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError

from .collection import Collection, Index
from .database import Document
from .keyset import keyset_page
from .pagination import Page, PageRequest

#: rows counted per round trip when counting the ids a query returns
COUNT_BATCH = 5000

#: prefix of the `mailbox` value of a message claimed by a batch job (see `Messages.claim`)
CLAIM_PREFIX = "~"


def _ignore_duplicates(exc: BulkWriteError) -> None:
    """Re-raise a bulk write error unless every failure is a duplicate key."""
    if any(error.get("code") != 11000 for error in exc.details.get("writeErrors", [])):
        raise exc
    if exc.details.get("writeConcernErrors"):
        raise exc


class Messages(Collection):
    database = "mail"
    name = "messages"
    indexes = [
        # uid addressing and newest-first listing (one index serves both directions), and the
        # guarantee that a uid is never handed out twice in a mailbox
        Index([("mailbox", 1), ("uid", 1)], unique=True),
        # makes `mailbox` equalities indexable on the embedded server (module docstring)
        Index([("mailbox", 1)]),
        Index([("mailbox", 1), ("modseq", 1)]),
        # a user's messages across mailboxes (search, account deletion)
        Index([("user", 1)]),
        Index([("thread", 1)]),
        Index([("msgid", 1)]),
        # retention: only messages of mailboxes with a retention time have `rdate` (epoch ms)
        Index([("rdate", 1)], sparse=True),
        # a mailbox listing, newest or oldest first (WildDuck pages mailboxes by idate)
        Index([("mailbox", 1), ("idate", 1)]),
        # search over all of a user's mailboxes, ordered by date; `{user}` above makes the
        # equality indexable on the embedded server (module docstring)
        Index([("user", 1), ("idate", 1)]),
    ]

    async def claim(self, rows: Sequence[Document], token: str) -> list[Document]:
        """Take `rows` (each with _id, mailbox, uid, modseq as read) out of their mailboxes.

        Each message still in the state the job read gets its `mailbox` rewritten to
        `~<token>:<mailbox>`: from then on no delete, move or flag change (they all address
        `{_id, mailbox, uid, modseq}`) can touch it, so the job alone releases its counters,
        quota and attachments. The rows actually claimed come back. Keeping the original mailbox
        inside the new value keeps the unique `{mailbox, uid}` index satisfied.
        """
        if not rows:
            return []
        operations = [
            UpdateOne(
                {
                    "_id": row["_id"],
                    "mailbox": row["mailbox"],
                    "uid": row["uid"],
                    "modseq": row["modseq"],
                },
                {"$set": {"mailbox": claimed_name(token, row["mailbox"])}},
            )
            for row in rows
        ]
        await self.collection.bulk_write(operations, ordered=False)
        claimed: set[str] = set()
        for mailbox in sorted({row["mailbox"] for row in rows}):
            # one equality per mailbox: `$in` would scan the collection on the embedded server
            found = await self.collection.find(
                {"mailbox": claimed_name(token, mailbox)}, {"_id": 1}
            ).to_list(length=None)
            claimed.update(doc["_id"] for doc in found)
        return [row for row in rows if row["_id"] in claimed]

    async def delete_claimed(self, token: str, mailboxes: Sequence[str]) -> int:
        deleted = 0
        for mailbox in sorted(set(mailboxes)):
            result = await self.collection.delete_many({"mailbox": claimed_name(token, mailbox)})
            deleted += result.deleted_count
        return deleted

    async def changed_since(
        self, mailbox: str, modseq: int, *, after_uid: int, limit: int
    ) -> list[Document]:
        """Up to `limit` messages of the mailbox with a modseq above `modseq` and a uid above
        `after_uid`, lowest uid first: `_id`, `uid`, `modseq`, `flags`."""
        cursor = self.collection.find(
            {"mailbox": mailbox, "modseq": {"$gt": modseq}, "uid": {"$gt": after_uid}},
            {"_id": 1, "uid": 1, "modseq": 1, "flags": 1},
            sort=[("uid", 1)],
            limit=limit,
        )
        return await cursor.to_list(length=limit)

    async def expired(self, now: int, limit: int, projection: Document) -> list[Document]:
        """Messages whose `rdate` (epoch ms) is at or before `now`, oldest first."""
        cursor = self.collection.find(
            {"rdate": {"$lte": now}}, projection, sort=[("rdate", 1)], limit=limit
        )
        return await cursor.to_list(length=limit)

    # ------------------------------------------------------------------ listings and search

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


def claimed_name(token: str, mailbox: str) -> str:
    return f"{CLAIM_PREFIX}{token}:{mailbox}"


class Archived(Collection):
    """Deleted messages kept for a grace period (restorable); quota was released on delete.

    No `{user, _id}` index: the embedded server refuses every insert into a collection with
    `_id` inside a compound index ("JSON path error near '_id'").
    """

    database = "mail"
    name = "archived"
    indexes = [
        Index([("user", 1), ("archived", 1)]),
        Index([("user", 1)]),
        Index([("rdate", 1)]),
    ]

    async def due(self, now: int, limit: int, projection: Document) -> list[Document]:
        """Archived messages whose `rdate` (epoch ms) is at or before `now`."""
        cursor = self.collection.find(
            {"rdate": {"$lte": now}}, projection, sort=[("rdate", 1)], limit=limit
        )
        return await cursor.to_list(length=limit)


class Threads(Collection):
    """Thread keys (wildpy/store/threads.py): `_id` = `<user>:r:<ref>` or `<user>:s:<subject>`,
    with `thread`, `subject`, `updated` (epoch ms)."""

    database = "mail"
    name = "threads"
    indexes = [Index([("updated", 1)])]

    async def write(self, operations: Sequence[UpdateOne]) -> None:
        """Apply key upserts in one round trip; a key that a concurrent add inserted first is
        fine (it points at a thread of that conversation too)."""
        if not operations:
            return
        try:
            await self.collection.bulk_write(list(operations), ordered=False)
        except BulkWriteError as exc:
            _ignore_duplicates(exc)

    async def upsert(self, operations: Sequence[UpdateOne]) -> set[int]:
        """Apply upserts in one round trip; the positions that inserted a document. One that
        lost a race with a concurrent insert of the same key counts as not inserted."""
        if not operations:
            return set()
        try:
            result = await self.collection.bulk_write(list(operations), ordered=False)
        except BulkWriteError as exc:
            _ignore_duplicates(exc)
            return {int(row["index"]) for row in exc.details.get("upserted", [])}
        return set(result.upserted_ids or {})


class Tombstones(Collection):
    """What remains of an expired or purged message, so that asking for it answers 410.

    `_id` is the id the message (or the archived copy) had; `{mailbox, uid}` finds an expired
    one by uid (purged archive copies have no mailbox/uid: that uid was deleted by its user).
    """

    database = "mail"
    name = "tombstones"
    indexes = [
        Index([("mailbox", 1), ("uid", 1)]),
        Index([("mailbox", 1)]),
        Index([("expires", 1)]),
    ]

    async def insert_many(self, documents: Sequence[Document]) -> None:
        if not documents:
            return
        # a job retried after a crash may meet its own earlier tombstones
        try:
            await self.collection.insert_many(list(documents), ordered=False)
        except BulkWriteError as exc:
            _ignore_duplicates(exc)


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
