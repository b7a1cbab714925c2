"""The mailboxes collection (db.mail): one document per folder, with its uid/modseq counters.

The unique `{user, path}` index is what makes mailbox creation and renaming race-free: two
concurrent requests for the same path cannot both win, whatever the services checked before.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from pymongo import UpdateOne
from pymongo.errors import BulkWriteError

from wildpy.mailbox_paths import SEPARATOR

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

    async def counts(self, user: str, mailbox_ids: Iterable[str]) -> list[Document]:
        """`{mailbox, total, unseen}` of each of the user's mailboxes named (one query)."""
        wanted = sorted(set(mailbox_ids))
        if not wanted:
            return []
        rows = await self.find({"_id": {"$in": wanted}, "user": user}, {"total": 1, "unseen": 1})
        return [
            {
                "mailbox": row["_id"],
                "total": int(row.get("total", 0)),
                "unseen": int(row.get("unseen", 0)),
            }
            for row in rows
        ]

    # ------------------------------------------------------------------ finding and listing

    async def of_user_by_id(self, user_id: str, mailbox_id: str) -> Document | None:
        return await self.find_one({"_id": mailbox_id, "user": user_id})

    async def at_path(self, user_id: str, path: str) -> Document | None:
        """The user's mailbox at `path` (already normalised)."""
        return await self.find_one({"user": user_id, "path": path})

    async def with_special_use(self, user_id: str, use: str) -> Document | None:
        return await self.find_one({"user": user_id, "specialUse": use})

    async def all_of_user(self, user_id: str, limit: int) -> list[Document]:
        """The user's mailboxes, whole documents, in no particular order."""
        return await self.find({"user": user_id}, limit=limit)

    async def count_of_user(self, user_id: str) -> int:
        return await self.count({"user": user_id})

    async def any_at(self, user_id: str, paths: Sequence[str]) -> bool:
        """Whether the user has a mailbox at any of `paths`."""
        query = {"user": user_id, "path": {"$in": list(paths)}}
        return await self.find_one(query, {"_id": 1}) is not None

    async def below(self, user_id: str, path: str, limit: int) -> list[Document]:
        """`path` of the user's mailboxes that sort just below `path` + "/": every path below it
        sorts between "path/" and "path0" ("0" follows "/"), a range on the {user, path} index,
        no regular expression needed. The caller filters exact descendants."""
        return await self.find(
            {"user": user_id, "path": {"$gte": path + SEPARATOR, "$lt": path + "0"}},
            {"path": 1},
            limit=limit,
        )

    # ------------------------------------------------------------------ changing

    async def set_fields(self, mailbox_id: str, user_id: str, fields: Document) -> bool:
        """Set mailbox settings (retention, subscribed ...); False when it is not the user's."""
        return bool(await self.update_one({"_id": mailbox_id, "user": user_id}, {"$set": fields}))

    async def rename(self, mailbox_id: str, old_path: str, new_path: str, fields: Document) -> bool:
        """Move the mailbox from `old_path` to `new_path` (and set `fields`); False when it is
        not at `old_path` any more. AlreadyExists when the path is taken (the unique index)."""
        return bool(
            await self.update_one(
                {"_id": mailbox_id, "path": old_path}, {"$set": {**fields, "path": new_path}}
            )
        )

    async def remove(self, mailbox_id: str, user_id: str) -> bool:
        return bool(await self.delete_one({"_id": mailbox_id, "user": user_id}))

    async def remove_of_user(self, user_id: str) -> int:
        return await self.delete_many({"user": user_id})

    # ------------------------------------------------------------------ the message counters
    # Every counter moves with `$inc` only (wildpy/services/messages.py): these are the moves.

    async def allocate_uids(
        self, mailbox_id: str, user_id: str, *, count: int = 1, unseen: int = 0, size: int = 0
    ) -> Document | None:
        """Hand out `count` uids and modseqs and count the messages in, in one round trip.

        The document as it was *before* (`uidNext`, `modifyIndex`, `retention`): the uids are
        `uidNext ...`, the modseqs `modifyIndex + 1 ...`. None when the mailbox is not the user's.
        """
        return await self.find_one_and_update(
            {"_id": mailbox_id, "user": user_id},
            {
                "$inc": {
                    "uidNext": count,
                    "modifyIndex": count,
                    "total": count,
                    "unseen": unseen,
                    "size": size,
                }
            },
            projection={"uidNext": 1, "modifyIndex": 1, "retention": 1},
            return_new=False,
        )

    async def count_out(
        self, mailbox_id: str, *, total: int = 1, unseen: int = 0, size: int = 0
    ) -> None:
        """Take messages out of the counters again (an add or move undone); uids stay used."""
        await self.update_one(
            {"_id": mailbox_id}, {"$inc": {"total": -total, "unseen": -unseen, "size": -size}}
        )

    async def remove_messages(
        self, mailbox_id: str, *, total: int = 1, unseen: int = 0, size: int = 0
    ) -> int | None:
        """Count messages out under a new modseq (expunged or moved away): the new modseq, None
        when the mailbox is gone."""
        doc = await self.find_one_and_update(
            {"_id": mailbox_id},
            {"$inc": {"total": -total, "unseen": -unseen, "size": -size, "modifyIndex": 1}},
            projection={"modifyIndex": 1},
        )
        return int(doc["modifyIndex"]) if doc is not None else None

    async def next_modseq(self, mailbox_id: str, user_id: str, *, unseen: int = 0) -> int | None:
        """A new modseq for a change in the mailbox (flags), with the unseen counter moved by
        `unseen`; None when the mailbox is not the user's."""
        doc = await self.find_one_and_update(
            {"_id": mailbox_id, "user": user_id},
            {"$inc": {"modifyIndex": 1, "unseen": unseen}},
            projection={"modifyIndex": 1},
        )
        return int(doc["modifyIndex"]) if doc is not None else None

    async def add_unseen(self, mailbox_id: str, delta: int) -> None:
        await self.update_one({"_id": mailbox_id}, {"$inc": {"unseen": delta}})

    async def counters(self, mailbox_id: str, user_id: str) -> Document | None:
        """`total`, `unseen` and `specialUse` of the user's mailbox (a listing's total)."""
        return await self.find_one(
            {"_id": mailbox_id, "user": user_id}, {"total": 1, "unseen": 1, "specialUse": 1}
        )

    async def of_user(self, user_id: str, limit: int = 10_000) -> list[Document]:
        """`_id`, `path` and `specialUse` of the user's mailboxes."""
        return await self.find(
            {"user": user_id}, {"_id": 1, "path": 1, "specialUse": 1}, limit=limit
        )

    async def belongs_to(self, mailbox_id: str, user_id: str) -> bool:
        """Whether the mailbox exists and is the user's."""
        return await self.find_one({"_id": mailbox_id, "user": user_id}, {"_id": 1}) is not None
