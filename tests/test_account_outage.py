"""The database going away in the middle of an account request: 503, never a 500."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from conftest import Api, assert_error, make_config
from pymongo import monitoring

from wildpy.app import create_app
from wildpy.runtime import open_runtime


async def test_database_lost_during_quota_recount_answers_503(
    tmp_path: Path, aiohttp_client: Any
) -> None:
    # an app with its own embedded server (empty mongo URI), so the test can kill it
    config = make_config("", tmp_path)
    async with open_runtime(config) as runtime:
        embedded = runtime.embedded
        assert embedded is not None and embedded.running
        api = Api(await aiohttp_client(create_app(config, runtime=runtime)))
        status, body = await api.post("/users", {"username": "recount", "password": "pass word 1"})
        assert status == 200, body
        user_id = body["id"]

        # the server goes away just as the recount's sum over the messages is sent: the user was
        # read, the sum is not (a real fault at the one moment that matters, no mock)
        counter = runtime.database.commands
        count_started = counter.started

        def stop_at_sum(event: monitoring.CommandStartedEvent) -> None:
            count_started(event)
            if event.command_name == "aggregate" and event.command["aggregate"] == "messages":
                embedded.stop()

        counter.started = stop_at_sum  # type: ignore[method-assign]
        try:
            status, body = await api.post(f"/users/{user_id}/quota/reset", {})
        finally:
            counter.started = count_started  # type: ignore[method-assign]
        assert_error(status, body, 503, "InternalDatabaseError")
