"""Background tasks: what a route queues and answers at once (WildDuck's `task` id), and the
runner the janitor calls to do them.

Only the quota recount of every user (POST /quota/reset) is a task so far. The runner walks
the users in bounded batches of ids, saving its place after each, so a task taken over after a
lost lease goes on from there instead of starting again.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from wildpy import errors
from wildpy.clock import utcnow
from wildpy.storage.accounts import Users
from wildpy.storage.database import Document
from wildpy.storage.tasks import Tasks

from .users import UserService

log = logging.getLogger("wildpy.tasks")

QUOTA_RESET = "quota"
#: users recounted between two saves of the task's place
BATCH = 100
#: how long a task stays with the worker that took it without news from it
LEASE = timedelta(minutes=5)


class TaskService:
    def __init__(self, tasks: Tasks, users: Users, user_service: UserService) -> None:
        self._tasks = tasks
        self._users = users
        self._user_service = user_service
        #: set when this process queues a task, so that its janitor runs it now rather than at
        #: its next round (a task queued by another process waits for this one's next round)
        self.queued = asyncio.Event()

    async def schedule_quota_reset(self) -> str:
        """Queue a recount of every user's storage; the task's id."""
        task = await self._tasks.add(QUOTA_RESET, utcnow())
        self.queued.set()
        return task

    async def run_pending(self, limit: int = 10) -> int:
        """Run up to `limit` due tasks to their end; how many were run."""
        done = 0
        while done < limit:
            task = await self._tasks.lease(utcnow(), utcnow() + LEASE)
            if task is None:
                break
            await self._run(task)
            done += 1
        return done

    async def _run(self, task: Document) -> None:
        if task["task"] != QUOTA_RESET:
            # a kind this version does not know (a newer node queued it): left for that node
            log.warning("task %s of unknown kind %r skipped", task["_id"], task["task"])
            return
        cursor = str(task.get("cursor") or "")
        recounted = 0
        while True:
            user_ids = await self._users.ids_after(cursor, BATCH)
            if not user_ids:
                break
            for user_id in user_ids:
                try:
                    await self._user_service.recalculate_quota(user_id)
                    recounted += 1
                except errors.UserNotFound:
                    pass  # deleted meanwhile
            cursor = user_ids[-1]
            await self._tasks.progress(task["_id"], cursor, utcnow() + LEASE)
        await self._tasks.finish(task["_id"], utcnow(), {"users": recounted})
