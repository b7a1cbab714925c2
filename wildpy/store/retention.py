"""The periodic clean-up of the message store (reference section 6.5: WildDuck's GC).

Each run removes, in bounded batches: messages of mailboxes with a retention time whose time has
come, archived (deleted) messages past their grace period, and tombstones past theirs. Every
removal releases what the message held (quota for expired messages, attachment references and
body files for both), so nothing leaks. TTL indexes are not relied on (storage.md).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from wildpy.clock import utcnow
from wildpy.services.messages import MessageService

log = logging.getLogger("wildpy.retention")


_Batch = Callable[[], Awaitable[int]]


@dataclass(frozen=True)
class RetentionReport:
    expired: int
    purged: int
    tombstones: int


class RetentionJob:
    def __init__(
        self, messages: MessageService, *, batch: int | None = None, max_rounds: int | None = None
    ) -> None:
        self._messages = messages
        # documents per batch, and batches per kind and run (a run stays bounded even with a
        # large backlog; the next run goes on): `[store]` retentionBatch and retentionRounds
        self.batch = batch or messages.settings.retention_batch
        self.max_rounds = max_rounds or messages.settings.retention_rounds

    async def run_once(self, now: datetime | None = None) -> RetentionReport:
        """One run: at most `max_rounds` batches of each kind, everything due at `now`."""
        when = now or utcnow()
        expired = await self._rounds(lambda: self._messages.expire_due(when, self.batch))
        purged = await self._rounds(lambda: self._messages.purge_archived(when, self.batch))
        tombstones = await self._messages.drop_tombstones(when)
        await self._messages.drop_stale_threads(when)
        if expired or purged or tombstones:
            log.info(
                "retention: %d expired, %d purged, %d tombstones dropped",
                expired,
                purged,
                tombstones,
            )
        return RetentionReport(expired, purged, tombstones)

    async def _rounds(self, one_batch: _Batch) -> int:
        total = 0
        for _ in range(self.max_rounds):
            done = await one_batch()
            total += done
            # a short batch means the backlog is gone (or the rest was taken by another process)
            if done < self.batch:
                break
        return total
