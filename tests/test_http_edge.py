"""The HTTP edge over raw sockets: requests aiohttp's parser refuses get the JSON envelope, and no
access token reaches a log line, whatever the request looks like and however the app is served.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp import web
from conftest import ROOT_TOKEN

from wildpy.app import create_app
from wildpy.config import Config
from wildpy.handlers.http_edge import ApiAppRunner, protocol_logger
from wildpy.handlers.middleware import AccessLogger
from wildpy.runtime import Runtime

SECRET = "s3cr3t-" + "7" * 33  # looks like a token, and is easy to find in a log


@asynccontextmanager
async def serving(
    config: Config, runtime: Runtime, runner_class: type[web.AppRunner] = ApiAppRunner, **kw: Any
) -> AsyncIterator[int]:
    """The real app on an ephemeral TCP port; yields the port."""
    runner = runner_class(create_app(config, runtime=runtime), **kw)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield int(runner.addresses[0][1])
    finally:
        await runner.cleanup()


async def exchange(port: int, *parts: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send `parts` (waiting for a `100 Continue` between them) and read the answer to the end."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for index, part in enumerate(parts):
            writer.write(part)
            await writer.drain()
            if index < len(parts) - 1:
                assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 100")
        raw = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, body


def assert_envelope(status: int, headers: dict[str, str], body: bytes, code: str) -> dict[str, Any]:
    assert headers["content-type"].startswith("application/json"), (status, headers, body)
    payload = json.loads(body)
    assert set(payload) == {"success", "error", "code", "requestId"}, payload
    assert payload["success"] is False and payload["code"] == code, payload
    assert payload["requestId"] == headers["x-request-id"]
    return dict(payload)


HOST = b"Host: wildpy\r\n"
MALFORMED = {
    "garbage request line": b"GARBAGE-MARKER\r\n\r\n",
    "bad method": b"G@T-MARKER / HTTP/1.1\r\n" + HOST + b"\r\n",
    "bad version": b"GET /users?MARKER HTTP/9.9\r\n" + HOST + b"\r\n",
    "request line too long": b"GET /users?MARKER" + b"a" * 9000 + b" HTTP/1.1\r\n" + HOST + b"\r\n",
    "header too long": b"GET /users HTTP/1.1\r\n"
    + HOST
    + b"X-Long: MARKER"
    + b"b" * 9000
    + b"\r\n\r\n",
    "too many headers": b"GET /users HTTP/1.1\r\n"
    + HOST
    + b"".join(b"X-H%d: MARKER\r\n" % i for i in range(200))
    + b"\r\n",
    "bad chunk size": b"POST /users HTTP/1.1\r\n"
    + HOST
    + b"Transfer-Encoding: chunked\r\n\r\nMARKER\r\nabc\r\n0\r\n\r\n",
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
async def test_parser_errors_answer_in_the_envelope(
    config: Config, runtime: Runtime, case: str
) -> None:
    async with serving(config, runtime, access_log_class=AccessLogger) as port:
        status, headers, body = await exchange(port, MALFORMED[case])
    assert status == 400
    payload = assert_envelope(status, headers, body, "InputValidationError")
    assert payload["error"].startswith("Malformed HTTP request: ")
    assert b"MARKER" not in body  # the client's bytes are not echoed


async def test_bad_chunking_while_a_handler_reads_the_body(
    config: Config, runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    head = (
        b"POST /users HTTP/1.1\r\n" + HOST + b"X-Access-Token: " + ROOT_TOKEN.encode() + b"\r\n"
        b"Content-Type: application/json\r\nExpect: 100-continue\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    async with serving(config, runtime, access_log_class=AccessLogger) as port:
        status, headers, body = await exchange(port, head, b'5\r\n{"use\r\nzz\r\n')
        # the server goes on
        ok_status, _, _ = await exchange(port, b"GET /health HTTP/1.0\r\n" + HOST + b"\r\n")
    assert status == 400, body
    assert_envelope(status, headers, body, "InputValidationError")
    assert ok_status == 200
    assert "unhandled error" not in caplog.text


@pytest.mark.parametrize("runner_class", [web.AppRunner, ApiAppRunner])
async def test_no_token_reaches_a_log_line(
    config: Config,
    runtime: Runtime,
    caplog: pytest.LogCaptureFixture,
    runner_class: type[web.AppRunner],
) -> None:
    """Served like `wildpy serve` does today (AppRunner, aiohttp's default access log format
    included) or with ApiAppRunner: the token is in no record, formatted or not."""
    caplog.set_level(logging.DEBUG)
    token = SECRET.encode()
    requests = [
        # request line over 8,190 bytes: aiohttp quotes its start, `?accessToken=` included
        b"GET /users?accessToken="
        + token
        + b"&x="
        + b"a" * 9000
        + b" HTTP/1.1\r\n"
        + HOST
        + b"\r\n",
        # a header value over 8,190 bytes: aiohttp quotes the value alone, no name to match
        b"GET /users HTTP/1.1\r\n" + HOST + b"X-Access-Token: " + token + b"c" * 9000 + b"\r\n\r\n",
        b"GET /users?accessToken=" + token + b" HTTP/9.9\r\n" + HOST + b"\r\n",
        # an ordinary refused request: the access log line must not carry the query either
        b"GET /users?accessToken=" + token + b" HTTP/1.1\r\n" + HOST + b"Connection: close\r\n\r\n",
    ]
    async with serving(config, runtime, runner_class) as port:
        answers = [await exchange(port, request) for request in requests]
    assert [status for status, _, _ in answers] == [400, 400, 400, 401]
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    lines = "\n".join(formatter.format(record) for record in caplog.records)
    assert "the request line or a header is too long" in lines, lines  # the errors are logged
    assert SECRET not in lines and SECRET not in caplog.text
    assert "[redacted]" in lines  # the access line of the 401 is there, redacted


async def test_errors_past_the_middlewares_answer_in_the_envelope(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """What escapes every middleware (here: a handler of an app without them) is a clean 500:
    the envelope, no exception text, and a log line without the token of the URL."""

    async def broken(request: web.Request) -> web.Response:
        raise RuntimeError(f"internal detail of {request.url}")

    app = web.Application(handler_args={"logger": protocol_logger()})
    app.router.add_get("/broken", broken)
    runner = ApiAppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = int(runner.addresses[0][1])
        request = b"GET /broken?accessToken=" + SECRET.encode() + b" HTTP/1.0\r\n" + HOST + b"\r\n"
        status, headers, body = await exchange(port, request)
    finally:
        await runner.cleanup()
    assert status == 500
    payload = assert_envelope(status, headers, body, "InternalError")
    assert payload["error"] == "Internal server error"
    assert b"internal detail" not in body
    assert "internal detail" in caplog.text  # the traceback is logged ...
    assert SECRET not in caplog.text  # ... without the token


async def test_a_client_hanging_up_mid_body_is_no_server_fault(
    config: Config, runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    head = (
        b"POST /users HTTP/1.1\r\n" + HOST + b"X-Access-Token: " + ROOT_TOKEN.encode() + b"\r\n"
        b"Content-Type: application/json\r\nContent-Length: 1000\r\nExpect: 100-continue\r\n\r\n"
    )
    async with serving(config, runtime, access_log_class=AccessLogger) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(head)
        await writer.drain()
        # the handler is reading the body when the client goes away
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 100")
        writer.write(b'{"user')
        await writer.drain()
        writer.close()
        await writer.wait_closed()
        # the server goes on, and has logged the request by now (one connection at a time)
        status, _, _ = await exchange(port, b"GET /health HTTP/1.0\r\n" + HOST + b"\r\n")
    assert status == 200
    access = [r.getMessage() for r in caplog.records if r.name == "aiohttp.access"]
    assert any(" POST /users 400 " in line for line in access), access
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


@pytest.mark.parametrize(
    "credential",
    [b"X-Access-Token: \xff\xfe", b"Authorization: Bearer \xff", b"X-Access-Token: \xc3("],
)
async def test_tokens_that_are_not_utf8_are_invalid_tokens(
    config: Config, runtime: Runtime, credential: bytes
) -> None:
    async with serving(config, runtime, access_log_class=AccessLogger) as port:
        request = b"GET /users HTTP/1.0\r\n" + HOST + credential + b"\r\n\r\n"
        status, headers, body = await exchange(port, request)
    assert status == 401, body
    assert_envelope(status, headers, body, "InvalidToken")
