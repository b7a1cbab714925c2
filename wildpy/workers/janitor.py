"""The janitor: periodic clean-up that TTL indexes would do on MongoDB (storage.md: on the embedded
server they do not, so wildpy never relies on them).

Each round purges expired tokens, users whose deletion is due, old change-journal events, and
messages past their mailbox's retention, then runs the queued background tasks (POST
/quota/reset). A failed round is logged and retried at the next interval; closing waits for a
round in progress to end, so no purge is cut half-way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from wildpy.config import Config
from wildpy.runtime import Runtime

log = logging.getLogger("wildpy.janitor")


async def run_round(runtime: Runtime) -> None:
    await runtime.tokens.purge_expired()
    await runtime.purge.purge_due()
    await runtime.journal.purge_expired()
    await runtime.retention.run_once()
    await runtime.tasks.run_pending()


class Janitor:
    """A running janitor: one round every `interval` seconds until closed."""

    def __init__(self, runtime: Runtime, interval: float) -> None:
        self._runtime = runtime
        self._interval = interval
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(self._loop(), name="wildpy-janitor")

    async def _loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self._interval)
            if self._stop.is_set():
                return
            try:
                await run_round(self._runtime)
            except Exception:  # a failed round is retried at the next interval
                log.exception("janitor round failed")

    async def close(self) -> None:
        self._stop.set()
        await self._task


async def start(runtime: Runtime, config: Config) -> Janitor:
    return Janitor(runtime, config.janitor.interval)
