"""Windowed counters (rate limits, daily sending limits): in-process, or Redis when configured.

`limited_increment` is WildDuck's `ttlcounter`: refuse when the counter already reached the
limit, otherwise add and start the window's expiry on the first increment. With Redis the check
and the increment are one Lua script, so concurrent wildpy processes share exact counts; so can a
caller reserve a place before doing the work it limits, and `release` it again afterwards.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol, cast

from redis.asyncio import Redis
from redis.exceptions import RedisError

from wildpy.errors import InternalDatabaseError


@dataclass(frozen=True)
class CounterState:
    allowed: bool
    value: int
    #: seconds until the window resets, or None when the counter is not running
    ttl: int | None


class Counters(Protocol):
    async def limited_increment(
        self, key: str, amount: int, limit: int, window: int
    ) -> CounterState: ...

    async def read(self, keys: list[str]) -> list[CounterState]: ...

    async def release(self, key: str, amount: int) -> None:
        """Give back `amount` taken by `limited_increment`; never below zero, the window kept."""
        ...

    async def delete(self, key: str) -> None: ...

    async def close(self) -> None: ...


class MemoryCounters:
    """Counters for one process (the default when no Redis is configured)."""

    #: expired entries are swept every this many writes: a key written once and never read
    #: again (a failed login for a name that does not exist) must not stay for ever
    SWEEP_EVERY = 1024

    def __init__(self) -> None:
        self._values: dict[str, tuple[int, float]] = {}
        self._writes = 0

    def _sweep(self) -> None:
        now = time.monotonic()
        for key in [key for key, (_, expires) in self._values.items() if expires <= now]:
            del self._values[key]

    def _current(self, key: str) -> tuple[int, float] | None:
        entry = self._values.get(key)
        if entry is not None and entry[1] <= time.monotonic():
            del self._values[key]
            return None
        return entry

    async def limited_increment(
        self, key: str, amount: int, limit: int, window: int
    ) -> CounterState:
        entry = self._current(key)
        value, expires = entry if entry else (0, time.monotonic() + window)
        ttl = max(1, round(expires - time.monotonic()))
        if limit and value >= limit:
            return CounterState(False, value, ttl)
        self._values[key] = (value + amount, expires)
        self._writes += 1
        if self._writes % self.SWEEP_EVERY == 0:
            self._sweep()
        return CounterState(True, value + amount, ttl)

    async def read(self, keys: list[str]) -> list[CounterState]:
        states = []
        for key in keys:
            entry = self._current(key)
            if entry is None:
                states.append(CounterState(True, 0, None))
            else:
                states.append(
                    CounterState(True, entry[0], max(1, round(entry[1] - time.monotonic())))
                )
        return states

    async def release(self, key: str, amount: int) -> None:
        entry = self._current(key)
        if entry is None:
            return
        value, expires = entry
        if value > amount:
            self._values[key] = (value - amount, expires)
        else:
            del self._values[key]

    async def delete(self, key: str) -> None:
        self._values.pop(key, None)

    async def close(self) -> None:
        self._values.clear()


_LIMITED_INCREMENT = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local limit = tonumber(ARGV[2])
if limit > 0 and current >= limit then
  return {0, current, redis.call('TTL', KEYS[1])}
end
local value = redis.call('INCRBY', KEYS[1], ARGV[1])
if value == tonumber(ARGV[1]) then
  redis.call('EXPIRE', KEYS[1], ARGV[3])
end
return {1, value, redis.call('TTL', KEYS[1])}
"""

# a counter given back to zero is removed: a negative one would grant extra places
_RELEASE = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current <= tonumber(ARGV[1]) then
  redis.call('DEL', KEYS[1])
  return 0
end
return redis.call('DECRBY', KEYS[1], ARGV[1])
"""


class RedisCounters:
    """Counters shared by every wildpy process on the same Redis."""

    def __init__(self, uri: str, prefix: str = "wildpy:") -> None:
        self._redis: Redis = Redis.from_url(uri, socket_timeout=2.5, socket_connect_timeout=2.5)
        self._prefix = prefix
        self._script = self._redis.register_script(_LIMITED_INCREMENT)
        self._release = self._redis.register_script(_RELEASE)

    async def limited_increment(
        self, key: str, amount: int, limit: int, window: int
    ) -> CounterState:
        try:
            allowed, value, ttl = cast(
                list[int],
                await self._script(keys=[self._prefix + key], args=[amount, limit, window]),
            )
        except RedisError:
            raise InternalDatabaseError("Redis is unavailable, try again later") from None
        return CounterState(bool(allowed), int(value), int(ttl) if ttl > 0 else None)

    async def read(self, keys: list[str]) -> list[CounterState]:
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.get(self._prefix + key)
                    pipe.ttl(self._prefix + key)
                replies = await pipe.execute()
        except RedisError:
            raise InternalDatabaseError("Redis is unavailable, try again later") from None
        states = []
        for index in range(0, len(replies), 2):
            value, ttl = replies[index], replies[index + 1]
            states.append(CounterState(True, int(value or 0), int(ttl) if ttl > 0 else None))
        return states

    async def release(self, key: str, amount: int) -> None:
        try:
            await self._release(keys=[self._prefix + key], args=[amount])
        except RedisError:
            raise InternalDatabaseError("Redis is unavailable, try again later") from None

    async def delete(self, key: str) -> None:
        try:
            await self._redis.delete(self._prefix + key)
        except RedisError:
            raise InternalDatabaseError("Redis is unavailable, try again later") from None

    async def close(self) -> None:
        await self._redis.aclose()


def open_counters(uri: str) -> Counters:
    return RedisCounters(uri) if uri else MemoryCounters()
