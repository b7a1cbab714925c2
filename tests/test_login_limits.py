"""Login rate limits that hold: parallel guesses, every spelling of an account, per client IP and
a global ceiling, in process and on a real Redis."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT_TOKEN, Api, assert_error, make_config
from redis_server import redis_server

from wildpy.app import create_app
from wildpy.config import load_config
from wildpy.counters import Counters, MemoryCounters, RedisCounters
from wildpy.services.login_limits import client_key

PASSWORD = "correct horse battery 42"


@asynccontextmanager
async def api_with(
    mongo_uri: str, tmp_path: Path, aiohttp_client: Any, **sections: dict[str, Any]
) -> AsyncIterator[Api]:
    from wildpy.runtime import open_runtime

    config = make_config(mongo_uri, tmp_path, **sections)
    async with open_runtime(config) as runtime:
        try:
            yield Api(await aiohttp_client(create_app(config, runtime=runtime)))
        finally:
            await runtime.database.drop_all()


@asynccontextmanager
async def backend_api(
    backend: str, mongo_uri: str, tmp_path: Path, aiohttp_client: Any, **sections: dict[str, Any]
) -> AsyncIterator[Api]:
    """The app counting in process, or on a real redis-server."""
    if backend == "memory":
        async with api_with(mongo_uri, tmp_path, aiohttp_client, **sections) as api:
            yield api
        return
    with redis_server(tmp_path) as uri:
        async with api_with(
            mongo_uri, tmp_path, aiohttp_client, dbs={"redis": uri}, **sections
        ) as api:
            yield api


async def new_user(api: Api, **fields: Any) -> tuple[str, str]:
    username = "lim" + uuid.uuid4().hex[:10]
    status, body = await api.post("/users", {"username": username, "password": PASSWORD, **fields})
    assert status == 200, body
    return str(body["id"]), username


async def attempt(api: Api, username: str, password: str, **extra: Any) -> tuple[int, Any]:
    response = await api.client.post(
        "/authenticate",
        json={"username": username, "password": password, **extra},
        headers={"X-Access-Token": ROOT_TOKEN},
    )
    return response.status, await response.json()


@pytest.mark.parametrize("backend", ["memory", "redis"])
async def test_parallel_wrong_attempts_are_checked_twelve_times(
    backend: str, mongo_uri: str, tmp_path: Path, aiohttp_client: Any
) -> None:
    async with backend_api(backend, mongo_uri, tmp_path, aiohttp_client) as api:
        _, username = await new_user(api)
        results = await asyncio.gather(*(attempt(api, username, f"wrong {n}") for n in range(60)))
        statuses = Counter(status for status, _ in results)
        assert statuses == {401: 12, 429: 48}, statuses
        for status, body in results:
            if status == 429:
                assert body["code"] == "RateLimitedError" and body["details"]["limit"] == 12


async def test_the_right_password_in_a_burst_does_not_widen_it(
    mongo_uri: str, tmp_path: Path, aiohttp_client: Any
) -> None:
    """59 wrong and 1 right at once: at most 12 passwords are checked in all."""
    async with api_with(mongo_uri, tmp_path, aiohttp_client) as api:
        _, username = await new_user(api)
        guesses = [f"wrong {n}" for n in range(59)] + [PASSWORD]
        results = await asyncio.gather(*(attempt(api, username, guess) for guess in guesses))
        statuses = Counter(status for status, _ in results)
        assert statuses[401] + statuses[200] <= 12, statuses
        assert statuses[429] >= 48, statuses


async def test_every_spelling_of_an_account_shares_one_counter(
    mongo_uri: str, tmp_path: Path, aiohttp_client: Any
) -> None:
    async with api_with(mongo_uri, tmp_path, aiohttp_client) as api:
        main = f"first.{uuid.uuid4().hex[:8]}@example.com"
        user_id, username = await new_user(api, address=main)
        second = f"second{uuid.uuid4().hex[:8]}@example.org"
        status, body = await api.post(f"/users/{user_id}/addresses", {"address": second})
        assert status == 200, body
        local, domain = main.split("@")
        spellings = [
            username,
            username.upper(),
            main,
            second,
            f"{local}+tag@{domain}",
            second.upper(),
        ]
        for n in range(12):
            status, body = await attempt(api, spellings[n % len(spellings)], "wrong")
            assert_error(status, body, 401, "AuthFailed")
        for spelling in spellings:
            status, body = await attempt(api, spelling, PASSWORD)
            assert_error(status, body, 429, "RateLimitedError")
        # an unknown name is limited on its own counter, like an account
        for _ in range(12):
            assert (await attempt(api, "nobody." + username, "wrong"))[0] == 401
        assert (await attempt(api, "nobody." + username, "wrong"))[0] == 429


@pytest.mark.parametrize("backend", ["memory", "redis"])
async def test_per_client_limit_over_many_names(
    backend: str, mongo_uri: str, tmp_path: Path, aiohttp_client: Any
) -> None:
    limits = {"authIpFailures": 5, "authIpWindow": 300}
    async with backend_api(backend, mongo_uri, tmp_path, aiohttp_client, limits=limits) as api:
        _, username = await new_user(api)
        for n in range(5):
            status, _ = await attempt(api, f"spray{n}", "Winter2026", ip="203.0.113.7")
            assert status == 401
        status, body = await attempt(api, username, PASSWORD, ip="203.0.113.7")
        assert_error(status, body, 429, "RateLimitedError")
        assert (body["details"]["limit"], body["details"]["window"]) == (5, 300)
        assert 0 < body["details"]["retry_after"] <= 300
        # another client is not affected, and the refusal cost the account nothing
        status, body = await attempt(api, username, PASSWORD, ip="198.51.100.1")
        assert status == 200, body
        # an IPv6 client is one /64 network
        for n in range(5):
            assert (await attempt(api, f"six{n}", "x", ip=f"2001:db8::{n + 1}"))[0] == 401
        assert (await attempt(api, "six", "x", ip="2001:db8::ffff"))[0] == 429
        assert (await attempt(api, "six", "x", ip="2001:db8:0:1::1"))[0] == 401
        # without `ip`, or with one that is no address, the connecting address is the client
        for n in range(5):
            assert (await attempt(api, f"direct{n}", "x"))[0] == 401
        assert (await attempt(api, "direct", "x"))[0] == 429
        assert (await attempt(api, "direct", "x", ip="not-an-address"))[0] == 429


async def test_successful_logins_give_their_place_back(
    mongo_uri: str, tmp_path: Path, aiohttp_client: Any
) -> None:
    limits = {"authIpFailures": 3, "authGlobalFailures": 3}
    async with api_with(mongo_uri, tmp_path, aiohttp_client, limits=limits) as api:
        _, username = await new_user(api)
        for _ in range(2):
            assert (await attempt(api, "someone", "wrong"))[0] == 401
        for _ in range(5):  # logging in to one's own account buys no guesses elsewhere
            assert (await attempt(api, username, PASSWORD))[0] == 200
        assert (await attempt(api, "someone", "wrong"))[0] == 401
        assert (await attempt(api, "someone", "wrong"))[0] == 429


async def test_global_ceiling_over_all_clients(
    mongo_uri: str, tmp_path: Path, aiohttp_client: Any
) -> None:
    limits = {"authGlobalFailures": 4, "authGlobalWindow": 60}
    async with api_with(mongo_uri, tmp_path, aiohttp_client, limits=limits) as api:
        _, username = await new_user(api)
        for n in range(4):
            status, _ = await attempt(api, f"name{n}", "guess", ip=f"192.0.2.{n + 1}")
            assert status == 401
        status, body = await attempt(api, username, PASSWORD, ip="192.0.2.200")
        assert_error(status, body, 429, "RateLimitedError")
        assert (body["details"]["limit"], body["details"]["window"]) == (4, 60)


def test_limits_are_configured_and_env_overridable() -> None:
    defaults = load_config(environ={}).limits
    assert (defaults.auth_ip_failures, defaults.auth_global_failures) == (100, 1000)
    config = load_config(environ={"WILDPY_LIMITS__AUTHIPFAILURES": "7"})
    assert config.limits.auth_ip_failures == 7


def test_client_keys() -> None:
    assert client_key("203.0.113.7") == "203.0.113.7"
    assert client_key("::ffff:203.0.113.7") == "203.0.113.7"
    assert client_key("2001:db8::1") == client_key("2001:db8::abcd") == "2001:db8::/64"
    assert client_key("not an address") is None and client_key(None) is None


async def _exercise_release(counters: Counters) -> None:
    for _ in range(3):
        await counters.limited_increment("r", 1, 3, 60)
    assert not (await counters.limited_increment("r", 1, 3, 60)).allowed
    await counters.release("r", 1)
    [state] = await counters.read(["r"])
    assert state.value == 2 and state.ttl is not None  # the window goes on
    assert (await counters.limited_increment("r", 1, 3, 60)).allowed
    await counters.release("r", 10)  # never below zero
    await counters.release("absent", 1)
    [state, absent] = await counters.read(["r", "absent"])
    assert (state.value, absent.value) == (0, 0)
    for _ in range(3):
        assert (await counters.limited_increment("r", 1, 3, 60)).allowed


async def test_release_in_process_and_on_redis(tmp_path: Path) -> None:
    await _exercise_release(MemoryCounters())
    with redis_server(tmp_path) as uri:
        counters = RedisCounters(uri)
        try:
            await _exercise_release(counters)
        finally:
            await counters.close()
