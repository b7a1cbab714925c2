"""The mailboxes collection (db.mail): one document per folder, with its uid/modseq counters.

The unique `{user, path}` index is what makes mailbox creation and renaming race-free: two
concurrent requests for the same path cannot both win, whatever the services checked before.
"""

from __future__ import annotations

from collections.abc import Sequence

from pymongo import UpdateOne
from pymongo.errors import BulkWriteError

from .collection import Collection, Index
from .database import Document

DUPLICATE_KEY = 11000


class Mailboxes(Collection):
    database = "mail"
    name = "mailboxes"
    indexes = [
        Index([("user", 1), ("path", 1)], unique=True),
        Index([("user", 1), ("specialUse", 1)]),
    ]

    async def insert_many(self, documents: Sequence[Document]) -> None:
        """Insert several mailboxes in one round trip (a new account's defaults)."""
        await self.collection.insert_many(list(documents), ordered=True)

    async def move_paths(self, moves: Sequence[tuple[str, str, str]]) -> set[int]:
        """Re-path several mailboxes in one round trip; `moves` are (id, old path, new path).

        Each update matches the old path too, so a mailbox renamed concurrently is left alone
        rather than overwritten. Returns the positions in `moves` that a path created meanwhile
        refused (the unique index); those mailboxes keep their old path.
        """
        if not moves:
            return set()
        try:
            await self.collection.bulk_write(
                [
                    UpdateOne({"_id": ident, "path": old}, {"$set": {"path": new}})
                    for ident, old, new in moves
                ],
                ordered=False,
            )
        except BulkWriteError as exc:
            failures = exc.details.get("writeErrors", [])
            if any(failure.get("code") != DUPLICATE_KEY for failure in failures):
                raise
            return {int(failure["index"]) for failure in failures}
        return set()

    async def belongs_to(self, mailbox_id: str, user_id: str) -> bool:
        """Whether the mailbox exists and is the user's."""
        return await self.find_one({"_id": mailbox_id, "user": user_id}, {"_id": 1}) is not None
