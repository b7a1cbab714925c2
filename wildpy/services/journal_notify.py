"""Telling other processes that a user's journal has new events: Redis pub/sub, when configured.

The journal itself is the delivery path across processes (readers poll it, journal.py); this is
only the fast path that wakes them at once. A writer publishes the user id on one channel after
each group write; every process subscribes to that channel and wakes its local readers of that
user. A lost message (Redis down, a reconnect) costs latency, never an event: the readers' poll
still finds it. One channel for every user keeps the subscriber to one connection per process; a
process ignores the users it has no reader for, and its own messages (tagged with its origin).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable, Iterable
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger("wildpy.journal")

CHANNEL = "wildpy:journal"
#: seconds between two attempts to (re)subscribe while Redis is unreachable
RESUBSCRIBE_AFTER = 2.0

Wake = Callable[[str], None]


class JournalNotifier(Protocol):
    """Tells other processes "user X has new events" and calls `wake(user)` for every such note
    received from them."""

    def notify(self, users: Iterable[str]) -> None: ...

    def start(self, wake: Wake) -> None: ...

    async def close(self) -> None: ...


class LocalNotifier:
    """No other process to tell (no Redis): the writer wakes its own readers directly."""

    def notify(self, users: Iterable[str]) -> None:
        return None

    def start(self, wake: Wake) -> None:
        return None

    async def close(self) -> None:
        return None


class RedisNotifier:
    """Pub/sub over one Redis channel; a message is `<origin> <user id>`."""

    def __init__(self, uri: str) -> None:
        self._redis: Redis = Redis.from_url(uri)
        self._origin = secrets.token_hex(6)
        self._listener: asyncio.Task[None] | None = None
        #: publications on their way (kept so that none is garbage-collected or cut at close)
        self._sending: set[asyncio.Task[None]] = set()
        #: set once the subscription is live (tests wait for it; publishing never does)
        self.subscribed = asyncio.Event()

    def notify(self, users: Iterable[str]) -> None:
        """Publish in the background: a writer's acknowledgement never waits for Redis."""
        task = asyncio.create_task(self._publish(list(users)))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _publish(self, users: list[str]) -> None:
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for user in users:
                    pipe.publish(CHANNEL, f"{self._origin} {user}")
                await pipe.execute()
        except (RedisError, OSError) as exc:
            # the events are stored; other processes find them at their next poll
            log.warning("journal notification not published: %s", exc)

    def start(self, wake: Wake) -> None:
        if self._listener is None:
            self._listener = asyncio.create_task(self._listen(wake), name="wildpy-journal-notes")

    async def _listen(self, wake: Wake) -> None:
        while True:
            try:
                async with self._redis.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(CHANNEL)
                    self.subscribed.set()
                    async for message in pubsub.listen():
                        self._deliver(message.get("data"), wake)
            except (RedisError, OSError) as exc:
                self.subscribed.clear()
                log.warning("journal notifications paused (%s); polling meanwhile", exc)
                await asyncio.sleep(RESUBSCRIBE_AFTER)

    def _deliver(self, data: object, wake: Wake) -> None:
        if not isinstance(data, bytes):
            return
        origin, _, user = data.decode("ascii", "replace").partition(" ")
        if origin != self._origin and user:
            wake(user)

    async def close(self) -> None:
        if self._sending:
            await asyncio.wait(self._sending, timeout=1.0)
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        await self._redis.aclose()


def open_notifier(redis_uri: str) -> JournalNotifier:
    return RedisNotifier(redis_uri) if redis_uri else LocalNotifier()
