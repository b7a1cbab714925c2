"""Repository of background tasks (WildDuck's `tasks`): queued, leased by one worker, finished.

A task is leased with one atomic update, so two processes never run the same one; a worker that
dies leaves its lease to expire, and the task is taken up again from its saved `cursor`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import ASCENDING, ReturnDocument

from .collection import Collection, Index
from .database import Document, new_id


class Tasks(Collection):
    database = "users"
    name = "tasks"
    indexes = [Index([("status", 1), ("leaseUntil", 1)])]

    async def add(self, kind: str, now: datetime, data: dict[str, Any] | None = None) -> str:
        """Queue a task of `kind`; its id."""
        task_id = new_id()
        await self.insert(
            {
                "_id": task_id,
                "task": kind,
                "data": data or {},
                "status": "queued",
                "created": now,
                # always set (never null): a queued task is due at once
                "leaseUntil": now,
                "cursor": "",
                "attempts": 0,
            }
        )
        return task_id

    async def lease(self, now: datetime, until: datetime) -> Document | None:
        """Take the oldest task that is due (queued, or running with an expired lease)."""
        return await self.collection.find_one_and_update(
            {"status": {"$in": ["queued", "running"]}, "leaseUntil": {"$lte": now}},
            {"$set": {"status": "running", "leaseUntil": until}, "$inc": {"attempts": 1}},
            sort=[("_id", ASCENDING)],
            return_document=ReturnDocument.AFTER,
        )

    async def progress(self, task_id: str, cursor: str, until: datetime) -> None:
        """Save how far the task got and extend its lease."""
        await self.update_one({"_id": task_id}, {"$set": {"cursor": cursor, "leaseUntil": until}})

    async def finish(self, task_id: str, now: datetime, result: dict[str, Any]) -> None:
        await self.update_one(
            {"_id": task_id}, {"$set": {"status": "done", "finished": now, "result": result}}
        )
