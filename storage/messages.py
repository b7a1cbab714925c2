"""Repositories of the message store in `db.mail`: messages, archived, threads, tombstones.

Only queries live here; the rules (uids, counters, quota, attachment references) live in
wildpy/services/messages.py. See docs/mail-store.md for the document shapes.

Indexes are chosen for both servers. The embedded one (nx-27017 0.8.1 on SQLite) has three
habits that shape them:

- an equality on a field uses an index only when some index's *name* ends with that field
  (`idx_<collection>_<fields joined by _>`); otherwise it becomes an array-containment test and
  the whole collection is scanned. Hence single-field indexes such as `{mailbox}` next to the
  compound `{mailbox, uid}` that serves the ordering (on MongoDB they are merely redundant);
- `$in` on any field but `_id` always scans, so hot paths use `_id` lists or equalities;
- an array field is indexed as one value: there are no multikey indexes (see threads).
"""

from __future__ import annotations

from collections.abc import Sequence

from pymongo import UpdateOne
from pymongo.errors import BulkWriteError

from .collection import Collection, Index
from .database import Document

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
