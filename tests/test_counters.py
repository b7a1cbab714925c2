"""Windowed counters, in-process and on a real Redis shared by two "processes"."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from conftest import Api, assert_error, make_config
from redis_server import redis_server

from wildpy.app import create_app
from wildpy.counters import Counters, MemoryCounters, RedisCounters
from wildpy.errors import InternalDatabaseError
from wildpy.runtime import open_runtime


async def _exercise(counters: Counters) -> None:
    first = await counters.limited_increment("k", 2, 5, 60)
    assert (first.allowed, first.value) == (True, 2)
    assert first.ttl is not None and 0 < first.ttl <= 60
    await counters.limited_increment("k", 2, 5, 60)
    await counters.limited_increment("k", 2, 5, 60)  # 6: over, but it was allowed at 4
    blocked = await counters.limited_increment("k", 1, 5, 60)
    assert (blocked.allowed, blocked.value) == (False, 6)
    [state, absent] = await counters.read(["k", "other"])
    assert state.value == 6 and absent.value == 0 and absent.ttl is None
    await counters.delete("k")
    [state] = await counters.read(["k"])
    assert state.value == 0
    unlimited = await counters.limited_increment("u", 1000, 0, 60)
    assert unlimited.allowed


async def test_memory_counters() -> None:
    await _exercise(MemoryCounters())


async def test_redis_counters_are_exact_under_concurrency(tmp_path: Path) -> None:
    with redis_server(tmp_path) as uri:
        one, two = RedisCounters(uri), RedisCounters(uri)
        try:
            await _exercise(one)
            results = await asyncio.gather(
                *(c.limited_increment("shared", 1, 50, 60) for _ in range(60) for c in (one, two))
            )
            assert sum(r.allowed for r in results) == 50
        finally:
            await one.close()
            await two.close()


async def test_redis_down_is_503() -> None:
    counters = RedisCounters("redis://127.0.0.1:1/0")
    try:
        with pytest.raises(InternalDatabaseError):
            await counters.limited_increment("k", 1, 1, 1)
    finally:
        await counters.close()


async def test_auth_rate_limit_is_shared_between_processes(
    mongo_uri: str, tmp_path: Path, aiohttp_client: Any
) -> None:
    """Two wildpy runtimes on one database and one Redis count failed logins together."""
    with redis_server(tmp_path) as redis_uri:
        config = make_config(mongo_uri, tmp_path, dbs={"redis": redis_uri})
        async with (
            open_runtime(config) as first,
            open_runtime(config) as second,
        ):
            api_one = Api(await aiohttp_client(create_app(config, runtime=first)))
            api_two = Api(await aiohttp_client(create_app(config, runtime=second)))
            status, _ = await api_one.post(
                "/users", {"username": "ratey", "password": "good pass 1"}
            )
            assert status == 200
            for index in range(12):
                api = api_one if index % 2 else api_two
                status, body = await api.post(
                    "/authenticate", {"username": "ratey", "password": "wrong"}
                )
                assert_error(status, body, 401, "AuthFailed")
            status, body = await api_one.post(
                "/authenticate", {"username": "ratey", "password": "good pass 1"}
            )
            assert_error(status, body, 429, "RateLimitedError")
            assert body["details"]["retry_after"] > 0
            await first.database.drop_all()


async def test_memory_counters_forget_keys_nobody_reads_again() -> None:
    counters = MemoryCounters()
    counters.SWEEP_EVERY = 10
    for index in range(100):
        await counters.limited_increment(f"once-{index}", 1, 0, 0)  # a window already over
    assert len(counters._values) < 10
