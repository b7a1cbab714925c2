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

import re
from collections.abc import Awaitable, Sequence
from datetime import datetime
from typing import Any, Literal

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

    # ------------------------------------------------------------------ one message
    # A change is conditional on the state it was computed from: `read` is the message as read
    # (`_id`, `mailbox`, `uid`, `modseq`), so of concurrent changers exactly one wins.

    async def at_uid(
        self, user_id: str, mailbox_id: str, uid: int, projection: Document | None = None
    ) -> Document | None:
        return await self.find_one({"mailbox": mailbox_id, "uid": uid, "user": user_id}, projection)

    async def of_user_by_id(
        self, user_id: str, message_id: str, projection: Document | None = None
    ) -> Document | None:
        return await self.find_one({"_id": message_id, "user": user_id}, projection)

    async def set_flags(self, read: Document, fields: Document, modseq: int) -> bool:
        """Write the flag fields under a new modseq; False when the message changed meanwhile."""
        return bool(await self.update_one(_as_read(read), {"$set": {**fields, "modseq": modseq}}))

    async def move_to(
        self, read: Document, mailbox_id: str, uid: int, modseq: int, rdate: int | None
    ) -> bool:
        """Re-place the message in another mailbox (expiring at `rdate`, epoch ms, if given);
        False when it changed meanwhile."""
        update: Document = {
            "$set": {"mailbox": mailbox_id, "uid": uid, "modseq": modseq, "exp": rdate is not None}
        }
        if rdate is not None:
            update["$set"]["rdate"] = rdate
        else:
            update["$unset"] = {"rdate": ""}
        return bool(await self.update_one(_as_read(read), update))

    async def remove_as_read(self, read: Document) -> bool:
        """Delete the message if it is still as read."""
        return bool(await self.delete_one(_as_read(read)))

    async def remove(self, message_id: str) -> bool:
        """Delete a message outright (an add undone before anyone saw it)."""
        return bool(await self.delete_one({"_id": message_id}))

    # ------------------------------------------------------------------ batches

    async def page_by_uid(
        self,
        user_id: str,
        mailbox_id: str,
        *,
        unseen: bool | None,
        beyond: int | None,
        ascending: bool,
        limit: int,
        projection: Document,
    ) -> list[Document]:
        """Up to `limit` messages of the mailbox by uid, after (or, descending, before) the uid
        `beyond`; only the unseen (or seen) ones when `unseen` is given."""
        query: Document = {"mailbox": mailbox_id, "user": user_id}
        if unseen is not None:
            query["unseen"] = unseen
        if beyond is not None:
            query["uid"] = {"$gt" if ascending else "$lt": beyond}
        return await self.find(
            query, projection, sort=[("uid", 1 if ascending else -1)], limit=limit
        )

    async def of_mailbox(
        self, user_id: str, mailbox_id: str, projection: Document, limit: int
    ) -> list[Document]:
        """The first `limit` messages of the mailbox by uid."""
        return await self.find(
            {"mailbox": mailbox_id, "user": user_id}, projection, sort=[("uid", 1)], limit=limit
        )

    async def storage_used_by(self, user_id: str) -> int:
        """The sum of the sizes of the user's messages (what its `storageUsed` should be)."""
        pipeline: list[Document] = [
            {"$match": {"user": user_id}},
            {"$group": {"_id": None, "s": {"$sum": "$size"}}},
        ]
        total = 0
        async for row in await self.collection.aggregate(pipeline):
            total = int(row.get("s") or 0)
        return total

    async def in_thread(self, thread: str) -> int:
        """How many messages the thread has (ids counted: see the module docstring)."""
        return await self.count({"thread": thread})

    async def of_user(self, user_id: str, projection: Document, limit: int) -> list[Document]:
        """Up to `limit` of the user's messages, in no particular order."""
        return await self.find({"user": user_id}, projection, limit=limit)

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

    async def set_details(
        self,
        message: Document,
        *,
        expiry: int | Literal[False] | None = None,
        metadata: str | None = None,
    ) -> bool:
        """Set what no counter depends on: the expiry (`rdate`, epoch ms; False for none) and
        the client's metaData (JSON text); None leaves either as it is. False when the message
        is no longer where it was read (moved, deleted, claimed by a job)."""
        sets: Document = {}
        unsets: list[str] = []
        if expiry is False:
            sets["exp"] = False
            unsets.append("rdate")
        elif expiry is not None:
            sets.update(exp=True, rdate=expiry)
        if metadata is not None:
            # a sub-document field, not an array element: a dotted path is safe (storage.md)
            sets["meta.custom"] = metadata
        return await self.set_fields(message, sets, unsets)

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


def _as_read(read: Document) -> Document:
    return {
        "_id": read["_id"],
        "mailbox": read["mailbox"],
        "uid": read["uid"],
        "modseq": read["modseq"],
    }


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

    async def of_user(self, user_id: str, projection: Document, limit: int) -> list[Document]:
        """Up to `limit` of the user's archived messages, in no particular order."""
        return await self.find({"user": user_id}, projection, limit=limit)

    async def of_user_by_id(self, user_id: str, archived_id: str) -> Document | None:
        return await self.find_one({"_id": archived_id, "user": user_id})

    async def remove_copy(self, archived_id: str, archived: datetime | None = None) -> bool:
        """Delete an archived copy (only the one archived at `archived`, when given)."""
        query: Document = {"_id": archived_id}
        if archived is not None:
            query["archived"] = archived
        return bool(await self.delete_one(query))

    async def page_by_archive_time(
        self, user_id: str, paging: PageRequest, *, ascending: bool, projection: Document
    ) -> Page:
        """One page of the user's archived messages by deletion time: `{user, archived}` is
        indexed, `{user, _id}` cannot be (the class docstring)."""
        query: Document = {"user": user_id}
        return await keyset_page(
            self.collection,
            query,
            paging,
            field="archived",
            ascending=ascending,
            projection=projection,
            total=count_ids(self.collection, query),
        )

    async def archived_between(
        self, user_id: str, after: datetime | None, start: datetime, end: datetime, limit: int
    ) -> list[Document]:
        """Up to `limit` of the user's copies archived in [start, end] (after `after` when
        given), oldest first."""
        lower: Document = {"$gt": after} if after is not None else {"$gte": start}
        return await self.find(
            {"user": user_id, "archived": {**lower, "$lte": end}},
            sort=[("archived", 1)],
            limit=limit,
        )

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

    async def keys(self, keys: Sequence[str]) -> dict[str, Document]:
        """The thread keys of `keys` that exist, by key (`_id` lists are indexed everywhere)."""
        rows = await self.find({"_id": {"$in": list(keys)}}, limit=len(keys))
        return {str(row["_id"]): row for row in rows}

    async def remove_keys(self, keys: Sequence[str], thread: str) -> int:
        """Delete those of `keys` that still point at `thread`."""
        return await self.delete_many({"_id": {"$in": list(keys)}, "thread": thread})

    async def drop_of_user(self, user_id: str) -> int:
        """Forget every thread key of the user (keys start with `<user>:`)."""
        return await self.delete_many({"_id": {"$regex": "^" + re.escape(user_id) + ":"}})

    async def drop_older_than(self, cutoff_ms: int) -> int:
        """Forget keys not touched since `cutoff_ms` (epoch ms)."""
        return await self.delete_many({"updated": {"$lt": cutoff_ms}})

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


#: one write of a thread key, batched by the caller (`Threads.write`, `Threads.upsert`)
KeyWrite = UpdateOne


def key_if_missing(key: str, fields: Document) -> KeyWrite:
    """Insert a reference key unless it exists (`$setOnInsert`): a concurrent add's stands."""
    return UpdateOne({"_id": key}, {"$setOnInsert": fields}, upsert=True)


def point_subject_key(key: str, user_id: str, thread: str, updated: int) -> KeyWrite:
    """Point a subject key at `thread` (the latest conversation with that subject wins)."""
    return UpdateOne(
        {"_id": key}, {"$set": {"user": user_id, "thread": thread, "updated": updated}}, upsert=True
    )


def repoint_key(key: str, old_thread: str, thread: str) -> KeyWrite:
    """Move a key written for `old_thread` to `thread`, unless it was moved meanwhile."""
    return UpdateOne({"_id": key, "thread": old_thread}, {"$set": {"thread": thread}})


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

    async def at_uid(self, user_id: str, mailbox_id: str, uid: int) -> bool:
        """Whether the uid of the mailbox expired or was purged (410 rather than 404)."""
        query = {"mailbox": mailbox_id, "uid": uid, "user": user_id}
        return await self.find_one(query, {"_id": 1}) is not None

    async def of_id(self, user_id: str, ident: str) -> bool:
        """Whether the message (or archived copy) with this id expired or was purged."""
        return await self.find_one({"_id": ident, "user": user_id}, {"_id": 1}) is not None

    async def drop_of_mailboxes(self, mailbox_ids: Sequence[str]) -> int:
        """Forget the tombstones of these mailboxes (an account's final purge)."""
        if not mailbox_ids:
            return 0
        return await self.delete_many({"mailbox": {"$in": list(mailbox_ids)}})

    async def drop_expired(self, now: datetime) -> int:
        return await self.delete_many({"expires": {"$lte": now}})

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
