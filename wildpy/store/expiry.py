"""What time takes away: expired messages, archived copies past their grace, tombstones, threads.

One bounded batch per call; `retention.RetentionJob` decides how many batches a run takes.
"""

from __future__ import annotations

from datetime import datetime

from wildpy.clock import epoch_ms, utcnow

from .documents import RELEASE_PROJECTION
from .parts import StorePart, StoreParts
from .releases import Releaser


class Expiry(StorePart):
    def __init__(self, parts: StoreParts, releases: Releaser) -> None:
        super().__init__(parts)
        self._releases = releases

    async def expire_due(self, now: datetime | None = None, batch: int = 500) -> int:
        """Remove one batch of messages whose mailbox retention ran out, leaving tombstones."""
        when = now or utcnow()
        rows = await self._messages.expired(epoch_ms(when), batch, RELEASE_PROJECTION)
        return await self._releases.remove_batch(rows, reason="expired", now=when) if rows else 0

    async def purge_archived(self, now: datetime | None = None, batch: int = 500) -> int:
        """Drop one batch of archived messages past their grace period, leaving tombstones."""
        when = now or utcnow()
        rows = await self._archived.due(epoch_ms(when), batch, RELEASE_PROJECTION)
        return await self._releases.purge(rows, when, tombstones=True)

    async def drop_tombstones(self, now: datetime | None = None) -> int:
        return await self._tombstones.drop_expired(now or utcnow())

    async def drop_stale_threads(self, now: datetime | None = None) -> int:
        """Forget thread keys unused for `settings.thread_time` (WildDuck: 180 days)."""
        cutoff = (now or utcnow()) - self.settings.thread_time
        return await self._threads.drop_older_than(epoch_ms(cutoff))
