"""The journal collection (db.mail): the change log that /updates and IMAP IDLE read.

Listeners read it in `(created, _id)` order rather than by `_id` alone: an ObjectId only carries
whole seconds, and its remaining bytes order ids from different processes arbitrarily within a
second, while `created` (milliseconds) orders events from every process by time.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from .collection import Collection, Index
from .database import Document

#: the order every reader follows (module docstring)
_ORDER = [("created", 1), ("_id", 1)]

#: how long events are kept (WildDuck's journal TTL is 3 hours too)
JOURNAL_TTL_SECONDS = 3 * 3600


class Journal(Collection):
    database = "mail"
    name = "journal"
    indexes = [
        # not {user, created, _id}: a compound index that names _id makes every insert fail on
        # the embedded server ("JSON path error near '_id'"); ties within a millisecond are few
        Index([("user", 1), ("created", 1)]),
        Index([("mailbox", 1), ("modseq", 1)]),
        # MongoDB expires old events by itself; the janitor's purge does it on the embedded server
        Index([("created", 1)], options={"expireAfterSeconds": JOURNAL_TTL_SECONDS}),
    ]

    async def insert_many(self, documents: Sequence[Document]) -> None:
        await self.collection.insert_many(list(documents), ordered=True)

    async def newest(self, user: str) -> Document | None:
        """The user's newest event (its `created` only), or None."""
        rows = await self.find(
            {"user": user}, {"created": 1}, sort=[("created", -1), ("_id", -1)], limit=1
        )
        return rows[0] if rows else None

    async def created_of(self, user: str, event_id: str) -> Document | None:
        """One of the user's events by id (its `created` only), or None when it is gone."""
        return await self.find_one({"_id": event_id, "user": user}, {"created": 1})

    async def after(
        self, user: str, created: datetime | None, event_id: str | None, limit: int
    ) -> list[Document]:
        """The user's events strictly after the position `(created, event_id)` (all when None),
        oldest first."""
        query: Document = {"user": user}
        if created is not None:
            query["$or"] = [
                {"created": {"$gt": created}},
                {"created": created, "_id": {"$gt": event_id}},
            ]
        return await self.find(query, sort=_ORDER, limit=limit)

    async def written_since(self, user: str, since: datetime, limit: int) -> list[Document]:
        """The user's events written at `since` or later, oldest first."""
        return await self.find({"user": user, "created": {"$gte": since}}, sort=_ORDER, limit=limit)

    async def last_up_to_modseq(self, user: str, mailbox: str, modseq: int) -> Document | None:
        """The newest event of a mailbox whose modseq is at most `modseq` (its `created`)."""
        rows = await self.find(
            {"user": user, "mailbox": mailbox, "modseq": {"$lte": modseq}},
            {"created": 1},
            sort=[("created", -1), ("_id", -1)],
            limit=1,
        )
        return rows[0] if rows else None

    async def drop_of_user(self, user: str) -> int:
        return await self.delete_many({"user": user})

    async def purge_before(self, when: datetime) -> int:
        return await self.delete_many({"created": {"$lt": when}})
