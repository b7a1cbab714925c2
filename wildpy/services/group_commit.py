"""Group commit: concurrent callers' writes of one kind go to the database together.

Every command to the database costs a round trip and, on the embedded server, a fixed slice of
CPU on both sides (about 0.2-0.3 ms each, whatever the command does). When many messages arrive
at once, the writes they share a shape for (their inserts, their journal events, the counters
of one mailbox) are cheaper as one command each for the whole group.

`GroupCommit` does that without a timer: the first item submitted while nothing is being
written goes out at once; items submitted while a write is in flight wait for it and then go
out together in the next one. A lone caller therefore pays no delay, and under load the groups
grow by themselves. Each caller gets its own item's outcome: a result, or the exception for its item
(or for the whole group when the write failed as a whole).

Writes with the same key are strictly sequential (one in flight at a time, in submission
order); different keys proceed side by side.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Generic, TypeVar

log = logging.getLogger("wildpy.messages")

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")
R = TypeVar("R")

#: given a key and its group of items, the outcome of each item in order: its result, or the
#: exception that item failed with
Flush = Callable[[K, list[T]], Awaitable[Sequence["R | BaseException"]]]


class GroupCommit(Generic[K, T, R]):
    """Collects items per key and hands them to `flush` in groups of at most `max_items`."""

    def __init__(
        self,
        flush: Flush[K, T, R],
        *,
        max_items: int = 100,
        max_weight: int = 0,
        weigh: Callable[[T], int] | None = None,
        parallel: int = 1,
    ) -> None:
        self._flush = flush
        self.max_items = max_items
        #: writes of one key in flight at once (1: strictly one after the other, in order)
        self.parallel = parallel
        #: with `weigh`: a group stops growing at this total weight (bytes), but holds one item
        self.max_weight = max_weight
        self._weigh = weigh
        self._queues: dict[K, list[tuple[T, asyncio.Future[R]]]] = {}
        #: the flusher tasks of each key with items queued or in flight
        self._flushers: dict[K, set[asyncio.Task[None]]] = {}

    def submit(self, key: K, item: T) -> asyncio.Future[R]:
        """Queue `item`; the future resolves once the write that carries it has finished.

        Synchronous on purpose: a caller that must order its items against other callers'
        (the journal's events in uid order) enqueues without giving up the event loop.
        """
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queues.setdefault(key, []).append((item, future))
        flushers = self._flushers.setdefault(key, set())
        if len(flushers) < self.parallel:
            flushers.add(asyncio.create_task(self._drain(key)))
        return future

    async def _drain(self, key: K) -> None:
        # no waiting for company first: the write starts in this task's first step, so a
        # caller that submits and then works on the CPU has its command on the wire meanwhile
        try:
            while queue := self._queues.get(key):
                count = self._group_size(queue)
                group, self._queues[key] = queue[:count], queue[count:]
                await self._write(key, group)
        except BaseException:
            # only when the task itself is stopped (the loop shutting down): callers still
            # queued must not wait for ever
            for _, future in self._queues.pop(key, []):
                if not future.done():
                    future.set_exception(RuntimeError("group commit stopped"))
            raise
        finally:
            flushers, task = self._flushers.get(key), asyncio.current_task()
            if flushers is not None and task is not None:
                flushers.discard(task)
                if not flushers:
                    del self._flushers[key]
                    self._queues.pop(key, None)

    def _group_size(self, queue: list[tuple[T, asyncio.Future[R]]]) -> int:
        if self._weigh is None:
            return min(len(queue), self.max_items)
        count, weight = 0, 0
        for item, _ in queue[: self.max_items]:
            weight += self._weigh(item)
            if count and weight > self.max_weight:
                break
            count += 1
        return count

    async def _write(self, key: K, group: list[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            outcomes = await self._flush(key, [item for item, _ in group])
        except BaseException as exc:  # the group failed as a whole: every caller hears of it
            for _, future in group:
                if not future.done():
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        if len(outcomes) != len(group):  # a flush that lost track of its items: fail them all
            error = RuntimeError(f"group commit: {len(outcomes)} outcomes for {len(group)} items")
            outcomes = [error] * len(group)
        for (_, future), outcome in zip(group, outcomes, strict=True):
            if future.done():  # its caller went away; the item was written all the same
                continue
            if isinstance(outcome, BaseException):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)

    async def idle(self) -> None:
        """Wait until nothing is queued or in flight (tests, shutdown)."""
        while self._flushers:
            running = [task for tasks in self._flushers.values() for task in tasks]
            await asyncio.gather(*running, return_exceptions=True)


class InOrder:
    """Lets the holders of numbered turns under one key (uids of a mailbox) go in number order.

    `hold` a number when it is handed out, `turn` waits until every lower number held under the
    same key has been `release`d (done with, or given up), `release` it when done. Numbers held
    are expected to come in ascending order per key (one allocation in flight per mailbox).
    Turns only order; they never protect data: a turn not given within `patience` seconds (a
    holder lost to a bug) is taken anyway, with a warning, rather than stalling the key.
    """

    def __init__(self, patience: float = 10.0) -> None:
        self.patience = patience
        self._held: dict[Hashable, list[int]] = {}
        self._waiting: dict[tuple[Hashable, int], asyncio.Future[None]] = {}

    def hold(self, key: Hashable, number: int) -> None:
        held = self._held.setdefault(key, [])
        bisect.insort(held, number)

    async def turn(self, key: Hashable, number: int) -> None:
        held = self._held.get(key)
        if not held or held[0] >= number or number not in held:
            return
        waiting = asyncio.get_running_loop().create_future()
        self._waiting[(key, number)] = waiting
        try:
            await asyncio.wait_for(waiting, self.patience)
        except TimeoutError:
            log.warning(
                "turn %s of %s not given in %.0f s; going ahead", number, key, self.patience
            )
        finally:
            self._waiting.pop((key, number), None)

    def release(self, key: Hashable, number: int) -> None:
        """Done with `number` (or never going to use it); idempotent."""
        held = self._held.get(key)
        if held is None or number not in held:
            return
        held.remove(number)
        if not held:
            del self._held[key]
            return
        waiting = self._waiting.get((key, held[0]))
        if waiting is not None and not waiting.done():
            waiting.set_result(None)
