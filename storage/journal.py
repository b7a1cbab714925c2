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

    async def purge_before(self, when: datetime) -> int:
        return await self.delete_many({"created": {"$lt": when}})
