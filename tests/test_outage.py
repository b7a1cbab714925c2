"""The database going away: 503 InternalDatabaseError with Retry-After, then recovery on return."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from conftest import Api, assert_error, make_config

from wildpy.app import create_app
from wildpy.runtime import open_runtime


async def test_database_outage_gives_503_and_recovers(tmp_path: Path, aiohttp_client: Any) -> None:
    # an app with its own embedded server (empty mongo URI), so the test can kill it
    config = make_config("", tmp_path)
    async with open_runtime(config) as runtime:
        embedded = runtime.embedded
        assert embedded is not None and embedded.running
        api = Api(await aiohttp_client(create_app(config, runtime=runtime)))
        status, body = await api.post("/users", {"username": "survivor", "password": "pass word 1"})
        assert status == 200, body
        user_id = body["id"]

        embedded.stop()  # the database goes away under the running app
        response = await api.client.get(f"/users/{user_id}", headers={"X-Access-Token": api.token})
        body = await response.json()
        assert_error(response.status, body, 503, "InternalDatabaseError")
        assert int(response.headers["Retry-After"]) > 0
        assert "mongo" not in body["error"].lower() and "details" not in body
        status, body = await api.get("/health")
        assert_error(status, body, 503, "InternalDatabaseError")

        embedded.start()  # it comes back on the same port; the app recovers by itself
        status, body = await api.get(f"/users/{user_id}")
        assert status == 200, body
        assert body["username"] == "survivor"
        status, _ = await api.get("/health")
        assert status == 200
