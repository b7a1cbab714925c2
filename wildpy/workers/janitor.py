"""The janitor: periodic clean-up that TTL indexes would do on MongoDB (storage.md: on the embedded
server they do not, so wildpy never relies on them).

Each round purges expired tokens, users whose deletion is due, old change-journal events, and
messages past their mailbox's retention, then runs the queued background tasks (POST
/quota/reset). A failed round is logged and retried at the next interval; closing waits for a
round in progress to end, so no purge is cut half-way.
"""

from __future__ import annotations

import asyncio
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
        loop = asyncio.get_running_loop()
        next_round = loop.time() + self._interval
        queued = self._runtime.tasks.queued
        while True:
            stop = asyncio.ensure_future(self._stop.wait())
            task = asyncio.ensure_future(queued.wait())
            await asyncio.wait(
                [stop, task],
                timeout=max(0.0, next_round - loop.time()),
                return_when=asyncio.FIRST_COMPLETED,
            )
            stop.cancel()
            task.cancel()
            if self._stop.is_set():
                return
            try:
                if loop.time() >= next_round:
                    next_round = loop.time() + self._interval
                    await run_round(self._runtime)
                elif queued.is_set():
                    # a task queued here (POST /quota/reset) runs now, not at the next round
                    queued.clear()
                    await self._runtime.tasks.run_pending()
            except Exception:  # a failed round is retried at the next interval
                log.exception("janitor round failed")

    async def close(self) -> None:
        self._stop.set()
        await self._task


async def start(runtime: Runtime, config: Config) -> Janitor:
    return Janitor(runtime, config.janitor.interval)
