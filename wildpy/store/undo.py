"""Multi-step writes without transactions: undo what was done, and finish what was started.

`Undo` collects compensating steps and runs them in reverse when a later step fails;
`gather_undoable` runs independent steps side by side and registers the undo of each one that
succeeded. `Shield` runs a change to its end even when its caller is cancelled.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, TypeVar

log = logging.getLogger("wildpy.messages")

T = TypeVar("T")

#: one step: what it is, the call, and how to undo it given the call's result
Step = tuple[str, Awaitable[Any], Callable[[Any], Awaitable[Any]] | None]


class Undo:
    """Compensating steps of a multi-step write, run in reverse when a later step fails."""

    def __init__(self) -> None:
        self._steps: list[tuple[str, Callable[[], Awaitable[Any]]]] = []

    def push(self, what: str, step: Callable[[], Awaitable[Any]]) -> None:
        self._steps.append((what, step))

    async def run(self) -> None:
        while self._steps:
            what, step = self._steps.pop()
            try:
                await step()
            except Exception:  # keep undoing the rest; the original error is what matters
                log.error("undo step failed: %s", what, exc_info=True)


async def gather_undoable(
    undo: Undo, steps: Sequence[Step], prefer: tuple[type[BaseException], ...] = ()
) -> list[Any]:
    """Run `steps` side by side and register the undo of each that succeeded; once all have
    finished (none is left running unaccounted for), raise the failure, one of the `prefer`
    kind (a rejection such as over quota) before a fault."""
    results = await asyncio.gather(*(step for _, step, _ in steps), return_exceptions=True)
    failures: list[BaseException] = []
    for (what, _, reverse), result in zip(steps, results, strict=True):
        if isinstance(result, BaseException):
            failures.append(result)
        elif reverse is not None:
            undo.push(what, functools.partial(reverse, result))
    if failures:
        preferred = [failure for failure in failures if isinstance(failure, prefer)]
        raise (preferred or failures)[0]
    return list(results)


class Shield:
    """Runs changes to their end even if their callers are cancelled.

    A caller that goes away (a client disconnecting, a cancelled handler) must not stop a
    change between two of its steps, where neither the rest nor the undo would run and counters
    would drift. The change finishes, or fails and undoes itself, on its own; `settle` waits for
    such stragglers (before shutting down).
    """

    def __init__(self) -> None:
        self._running: set[asyncio.Future[Any]] = set()

    async def run(self, work: Coroutine[Any, Any, T]) -> T:
        task = asyncio.ensure_future(work)
        self._running.add(task)
        task.add_done_callback(self._finished)
        return await asyncio.shield(task)

    def _finished(self, task: asyncio.Future[Any]) -> None:
        self._running.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: the shielded caller may be gone

    async def settle(self) -> None:
        while self._running:
            await asyncio.wait(list(self._running))


async def bounded(calls: Sequence[Awaitable[T]], limit: int = 16) -> list[T]:
    """Await `calls` at most `limit` at a time, results in order."""
    semaphore = asyncio.Semaphore(limit)

    async def one(call: Awaitable[T]) -> T:
        async with semaphore:
            return await call

    return list(await asyncio.gather(*(one(call) for call in calls)))
