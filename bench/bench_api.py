"""Benchmark: GET /users/:id through wildpy against a bare aiohttp handler doing one find_one.

Both servers run in this process on the same embedded database and are driven by the same
client loop, so the printed ratio compares like with like. Also prints database round trips per
user creation and per authenticated request (root token and user token), counted with the
driver's command monitoring. Run: .venv/bin/python bench/bench_api.py [requests]
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from aiohttp import ClientSession, TCPConnector, web

from wildpy.app import create_app
from wildpy.config import load_config
from wildpy.runtime import Runtime, open_runtime
from wildpy.services.account_inputs import NewUser
from wildpy.storage.embedded import EmbeddedMongo

ROOT_TOKEN = "bench-root-token"
CONCURRENCY = 16


async def serve(app: web.Application) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, port


def bare_app(runtime: Runtime) -> web.Application:
    users = runtime.database.users["users"]

    async def get_user(request: web.Request) -> web.Response:
        document = await users.find_one({"_id": request.match_info["user"]})
        if document is None:
            raise web.HTTPNotFound()
        return web.json_response({"success": True, "id": document["_id"]}, dumps=_dumps)

    app = web.Application()
    app.router.add_get("/users/{user}", get_user)
    return app


def _dumps(value: Any) -> str:
    import json

    return json.dumps(value, default=str)


async def drive(port: int, paths: list[str], token: str) -> float:
    """Requests per second for `paths`, CONCURRENCY at a time."""
    queue = list(paths)
    async with ClientSession(connector=TCPConnector(limit=CONCURRENCY)) as session:

        async def worker() -> None:
            while queue:
                path = queue.pop()
                async with session.get(
                    f"http://127.0.0.1:{port}{path}", headers={"X-Access-Token": token}
                ) as response:
                    await response.read()
                    if response.status != 200:
                        raise RuntimeError(f"{path}: {response.status}")

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        return len(paths) / (time.perf_counter() - started)


async def main(requests: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedMongo(Path(tmp) / "db")
        uri = await server.astart()
        config = load_config(environ={}).with_overrides(
            {
                "api": {"accessToken": ROOT_TOKEN},
                "dbs": {"mongo": uri, "database": "bench"},
                "storage": {"dataDir": tmp},
                "emailDomain": "bench.test",
            }
        )
        try:
            async with open_runtime(config) as runtime:
                await run(runtime, config, requests)
        finally:
            await server.astop()


async def run(runtime: Runtime, config: Any, requests: int) -> None:
    commands = runtime.database.commands
    ids = []
    commands.reset()
    for index in range(50):
        ids.append(await runtime.users.create(NewUser(username=f"u{index}", password="pw pw pw 1")))
    print(f"round trips per user creation: {commands.count / 50:.1f} {dict(commands.by_name)}")

    wildpy_runner, wildpy_port = await serve(create_app(config, runtime=runtime))
    bare_runner, bare_port = await serve(bare_app(runtime))
    try:
        user_token = await runtime.tokens.create_user_token(ids[0], 1)
        for label, token, path in (
            ("root token", ROOT_TOKEN, f"/users/{ids[0]}"),
            ("user token", user_token, f"/users/{ids[0]}"),
        ):
            await drive(wildpy_port, [path] * 5, token)  # warm up (and slide the token once)
            commands.reset()
            await drive(wildpy_port, [path] * 100, token)
            print(f"round trips per GET /users/:id with a {label}: {commands.count / 100:.2f}")

        paths = [f"/users/{ids[i % len(ids)]}" for i in range(requests)]
        await drive(bare_port, paths[:200], ROOT_TOKEN)
        await drive(wildpy_port, paths[:200], ROOT_TOKEN)
        # alternate the two a few times so drift in the machine's load affects both alike
        bare_rates, wildpy_rates = [], []
        for _ in range(3):
            bare_rates.append(await drive(bare_port, paths, ROOT_TOKEN))
            wildpy_rates.append(await drive(wildpy_port, paths, ROOT_TOKEN))
        bare, wild = max(bare_rates), max(wildpy_rates)
        print(f"bare aiohttp + find_one: {bare:8.0f} req/s")
        print(f"wildpy GET /users/:id:   {wild:8.0f} req/s")
        print(f"ratio wildpy/bare: {wild / bare:.2f}  (target >= 0.50)")
    finally:
        await wildpy_runner.cleanup()
        await bare_runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000))
