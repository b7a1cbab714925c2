"""The process host: doors and workers on one loop, `--only`, and a shutdown that drains.

The drain test runs a real `wildpy serve`, holds 200 requests half-sent, sends SIGTERM, and only
once the server has stopped listening sends the rest of each request: every one must get its full
answer, and the process must exit 0 within 10 seconds of the signal.
"""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import ClientSession
from conftest import ROOT_TOKEN, Api, make_config
from serve_process import WILDPY, free_port, serve_env, wait_serving
from test_cli import http

from wildpy.config import Config
from wildpy.handlers.server import RestDoor
from wildpy.host import REGISTRY, HostError, Service, open_host, select
from wildpy.runtime import Runtime
from wildpy.workers import janitor

IN_FLIGHT = 200


class EchoDoor:
    """A second door for the test: a line echo server that records its loop and its close."""

    def __init__(self, server: asyncio.Server, log: list[str]) -> None:
        self.server = server
        self.loop = asyncio.get_running_loop()
        self._log = log

    @property
    def port(self) -> int:
        return int(self.server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        self.server.close()
        await self.server.wait_closed()
        self._log.append("echo")


class RecordingWorker:
    def __init__(self, log: list[str]) -> None:
        self._log = log

    async def close(self) -> None:
        self._log.append("worker")


def _echo_service(log: list[str]) -> Service:
    async def start(runtime: Runtime, config: Config) -> EchoDoor:
        async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(await reader.readline())
            await writer.drain()
            writer.close()

        return EchoDoor(await asyncio.start_server(echo, "127.0.0.1", 0), log)

    return Service("echo", "door", start, lambda config: True)


def _worker_service(log: list[str]) -> Service:
    async def start(runtime: Runtime, config: Config) -> RecordingWorker:
        return RecordingWorker(log)

    return Service("recorder", "worker", start, lambda config: True)


def test_select_takes_names_from_the_registry(config: Config) -> None:
    assert [service.name for service in select(config, None)] == ["api", "smtp", "lmtp", "janitor"]
    assert [service.name for service in select(config, ["api"])] == ["api"]
    with pytest.raises(HostError, match="unknown service 'imapx'"):
        select(config, ["api", "imapx"])
    no_janitor = config.with_overrides({"janitor": {"enabled": False}})
    assert [service.name for service in select(no_janitor, None)] == ["api", "smtp", "lmtp"]
    with pytest.raises(HostError, match="'janitor' is disabled"):
        select(no_janitor, ["janitor"])


async def test_two_doors_start_on_one_loop_and_stop_before_workers(
    mongo_uri: str, tmp_path: Path
) -> None:
    config = make_config(mongo_uri, tmp_path, api={"port": 0})
    closed: list[str] = []
    api = next(service for service in REGISTRY if service.name == "api")
    services = [api, _echo_service(closed), _worker_service(closed)]
    async with open_host(config, services) as host:
        rest = host.started["api"]
        echo = host.started["echo"]
        assert isinstance(rest, RestDoor) and isinstance(echo, EchoDoor)
        assert echo.loop is asyncio.get_running_loop()
        (address, port) = rest.addresses[0]
        async with (
            ClientSession() as client,
            client.get(
                f"http://{address}:{port}/users", headers={"X-Access-Token": ROOT_TOKEN}
            ) as response,
        ):
            assert response.status == 200
            assert (await response.json())["success"] is True
        # the REST door answers aiohttp's own parser errors in the envelope (http_edge.py)
        raw_reader, raw_writer = await asyncio.open_connection(address, port)
        raw_writer.write(b"GET /users HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 9000 + b"\r\n\r\n")
        head, _, body = (await raw_reader.read()).partition(b"\r\n\r\n")
        assert head.split(b" ")[1] == b"400" and b"application/json" in head
        assert json.loads(body)["code"] == "InputValidationError"
        raw_writer.close()
        reader, writer = await asyncio.open_connection("127.0.0.1", echo.port)
        writer.write(b"hello\n")
        assert await reader.readline() == b"hello\n"
        writer.close()
        await host.runtime.database.drop_all()
    # doors first, then workers
    assert closed == ["echo", "worker"]
    with pytest.raises(OSError):
        socket.create_connection((address, port), timeout=1).close()


def test_serve_only_refuses_an_unknown_service(tmp_path: Path) -> None:
    result = subprocess.run(
        [*WILDPY, "serve", "--only", "api,nosuch"],
        env=serve_env(tmp_path / "data", free_port()),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "unknown service 'nosuch'" in result.stderr


@pytest.fixture
def api_only_server(tmp_path: Path) -> Iterator[tuple[int, subprocess.Popen[str]]]:
    port = free_port()
    env = serve_env(tmp_path / "data", port)
    env["WILDPY_API__ACCESSTOKEN"] = ROOT_TOKEN
    process = subprocess.Popen(
        [*WILDPY, "serve", "--only", "api"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    wait_serving(process, port)
    try:
        yield port, process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=20)


def _request_head(user: str, body: bytes) -> bytes:
    return (
        f"POST /users/{user}/mailboxes HTTP/1.1\r\n"
        f"Host: 127.0.0.1\r\nX-Access-Token: {ROOT_TOKEN}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()


async def _hold_then_finish(
    port: int, user: str, held: asyncio.Event, stopped: asyncio.Event
) -> list[bytes]:
    bodies = [json.dumps({"path": f"Drain/{n:03}"}).encode() for n in range(IN_FLIGHT)]
    streams = [await asyncio.open_connection("127.0.0.1", port) for _ in bodies]
    for (_, writer), body in zip(streams, bodies, strict=True):
        writer.write(_request_head(user, body) + body[:5])  # headers and the start of the body
        await writer.drain()
    # the server answers requests in arrival order on one loop: once a later request on a new
    # connection has its answer, the 200 held ones have reached their handlers
    async with (
        ClientSession() as client,
        client.get(
            f"http://127.0.0.1:{port}/users/{user}", headers={"X-Access-Token": ROOT_TOKEN}
        ) as response,
    ):
        assert response.status == 200
    held.set()
    await stopped.wait()
    for (_, writer), body in zip(streams, bodies, strict=True):
        writer.write(body[5:])
    return [await reader.read() for reader, _ in streams]


def _wait_until_not_listening(port: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        except OSError:
            return
        time.sleep(0.02)
    raise AssertionError("the server kept listening after SIGTERM")


async def test_sigterm_answers_every_request_in_flight(
    api_only_server: tuple[int, subprocess.Popen[str]],
) -> None:
    port, process = api_only_server
    status, created = http(
        port, "POST", "/users", ROOT_TOKEN, {"username": "drain", "password": "drain pass 1234"}
    )
    assert status == 200, created
    user = created["id"]

    held, stopped = asyncio.Event(), asyncio.Event()
    holding = asyncio.create_task(_hold_then_finish(port, user, held, stopped))
    await held.wait()
    process.send_signal(signal.SIGTERM)
    signalled = time.monotonic()
    await asyncio.to_thread(_wait_until_not_listening, port, signalled + 5)
    stopped.set()
    answers = await holding

    assert len(answers) == IN_FLIGHT
    for answer in answers:
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), answer[:200]
        assert json.loads(body)["success"] is True
    exit_code = await asyncio.to_thread(process.wait, 10)
    assert exit_code == 0
    assert time.monotonic() - signalled < 10
    output = process.stdout.read() if process.stdout else ""
    assert "wildpy: stopped" in output


async def test_janitor_runs_a_queued_task_at_once(
    api: Api, runtime: Runtime, config: Config
) -> None:
    """POST /quota/reset is answered at once and done by this process's janitor straight away,
    not at its next round (600 s away here)."""
    status, created = await api.post("/users", {"username": "recounted", "password": "pw pw 12345"})
    assert status == 200, created
    users = runtime.repositories.users
    await users.update_one({"_id": created["id"]}, {"$set": {"storageUsed": 999}})
    worker = await janitor.start(runtime, config)
    try:
        status, body = await api.post("/quota/reset")
        assert status == 200, body
        async with asyncio.timeout(10):
            while await users.storage_used_of(created["id"]) != 0:  # noqa: ASYNC110
                await asyncio.sleep(0.02)
    finally:
        await worker.close()
