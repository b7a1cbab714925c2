"""Repositories of the message store in `db.mail`: messages, archived, threads, tombstones.

Only queries live here; the rules (uids, counters, quota, attachment references) live in
wildpy/services/messages.py. See docs/mail-store.md for the document shapes.
"""

from __future__ import annotations

from pymongo import ReturnDocument, UpdateOne
from pymongo.errors import BulkWriteError

from .collection import Collection, Index
from .database import Document

#: prefix of the `mailbox` value of a message claimed by a batch job (see `Messages.claim`)
CLAIM_PREFIX = "~"


class Messages(Collection):
    database = "mail"
    name = "messages"
    indexes = [
        # uid addressing, newest-first listing (the index serves both directions) and the
        # guarantee that a uid is never handed out twice in a mailbox
        Index([("mailbox", 1), ("uid", 1)], unique=True),
        Index([("mailbox", 1), ("modseq", 1)]),
        Index([("user", 1), ("thread", 1)]),
        Index([("user", 1), ("msgid", 1)]),
        Index([("mailbox", 1), ("unseen", 1)]),
        # retention: messages of mailboxes with a retention time carry exp=true and rdate
        Index([("exp", 1), ("rdate", 1)]),
    ]

    async def by_uid(
        self, mailbox: str, uid: int, projection: Document | None = None
    ) -> Document | None:
        return await self.collection.find_one({"mailbox": mailbox, "uid": uid}, projection)

    async def newest(
        self, mailbox: str, limit: int, *, below_uid: int | None = None, projection: Document
    ) -> list[Document]:
        query: Document = {"mailbox": mailbox}
        if below_uid is not None:
            query["uid"] = {"$lt": below_uid}
        cursor = self.collection.find(query, projection, sort=[("uid", -1)], limit=limit)
        return await cursor.to_list(length=limit)

    async def claim(self, rows: list[Document], token: str) -> list[Document]:
        """Take `rows` (each with _id, mailbox, uid as read) out of their mailboxes for a job.

        Each message still in the mailbox and at the uid the job read gets its `mailbox`
        rewritten to `~<token>:<mailbox>`: from then on no delete, move or flag change (they all
        address `{_id, mailbox, uid}`) can touch it, so the job alone releases its counters,
        quota and attachments. The rows actually claimed come back. Keeping the original mailbox
        inside the new value keeps the unique `{mailbox, uid}` index satisfied.
        """
        if not rows:
            return []
        operations = [
            UpdateOne(
                {"_id": row["_id"], "mailbox": row["mailbox"], "uid": row["uid"]},
                {"$set": {"mailbox": claimed_name(token, row["mailbox"])}},
            )
            for row in rows
        ]
        await self.collection.bulk_write(operations, ordered=False)
        names = sorted({claimed_name(token, row["mailbox"]) for row in rows})
        claimed = await self.collection.find(
            {"mailbox": {"$in": names}}, {"_id": 1}, sort=[("_id", 1)]
        ).to_list(length=None)
        ids = {row["_id"] for row in claimed}
        return [row for row in rows if row["_id"] in ids]

    async def delete_claimed(self, token: str, mailboxes: list[str]) -> int:
        names = [claimed_name(token, mailbox) for mailbox in sorted(set(mailboxes))]
        if not names:
            return 0
        result = await self.collection.delete_many({"mailbox": {"$in": names}})
        return result.deleted_count

    async def expired(self, now: int, limit: int, projection: Document) -> list[Document]:
        """Messages whose `rdate` (epoch ms) is at or before `now`, oldest first."""
        cursor = self.collection.find(
            {"exp": True, "rdate": {"$lte": now}}, projection, sort=[("rdate", 1)], limit=limit
        )
        return await cursor.to_list(length=limit)

    async def insert_many(self, documents: list[Document]) -> None:
        if documents:
            await self.collection.insert_many(documents, ordered=False)


def claimed_name(token: str, mailbox: str) -> str:
    return f"{CLAIM_PREFIX}{token}:{mailbox}"


class Archived(Collection):
    """Deleted messages kept for a grace period (restorable); quota was released on delete."""

    database = "mail"
    name = "archived"
    # no `{user, _id}`: the embedded server (nx-27017 0.8.1) refuses every insert into a
    # collection with `_id` inside a compound index ("JSON path error near '_id'")
    indexes = [
        Index([("user", 1), ("archived", 1)]),
        Index([("rdate", 1)]),
    ]

    async def due(self, now: int, limit: int, projection: Document) -> list[Document]:
        """Archived messages whose `rdate` (epoch ms) is at or before `now`."""
        cursor = self.collection.find(
            {"rdate": {"$lte": now}}, projection, sort=[("rdate", 1)], limit=limit
        )
        return await cursor.to_list(length=limit)

    async def insert_many(self, documents: list[Document]) -> None:
        if documents:
            await self.collection.insert_many(documents, ordered=False)


class Threads(Collection):
    """Conversation threads: `{user, subject (normalised), ids[] (hashed Message-IDs), updated}`."""

    database = "mail"
    name = "threads"
    indexes = [
        Index([("user", 1), ("ids", 1)]),
        Index([("user", 1), ("subject", 1), ("updated", -1)]),
        Index([("updated", 1)]),
    ]

    async def touch_latest(self, query: Document, update: Document) -> Document | None:
        """Apply `update` to the most recently updated thread matching `query`; its `_id`."""
        return await self.collection.find_one_and_update(
            query,
            update,
            projection={"_id": 1},
            sort=[("updated", -1)],
            return_document=ReturnDocument.AFTER,
        )


class Tombstones(Collection):
    """What remains of an expired or purged message, so that asking for it answers 410.

    `_id` is the id the message (or the archived copy) had; `{mailbox, uid}` finds it by uid.
    """

    database = "mail"
    name = "tombstones"
    indexes = [
        Index([("mailbox", 1), ("uid", 1)]),
        Index([("expires", 1)]),
    ]

    async def insert_many(self, documents: list[Document]) -> None:
        if documents:
            # ordered=False and duplicates tolerated: a job retried after a crash may meet its
            # own earlier tombstones
            try:
                await self.collection.insert_many(documents, ordered=False)
            except BulkWriteError as exc:
                if any(error.get("code") != 11000 for error in exc.details.get("writeErrors", [])):
                    raise
