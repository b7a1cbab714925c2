"""Shared set-up of the message-store benchmarks: a throw-away embedded server and runtime."""

from __future__ import annotations

import contextlib
import tempfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

from wildpy.config import load_config
from wildpy.runtime import Runtime, open_runtime
from wildpy.storage.embedded import EmbeddedMongo


@contextlib.asynccontextmanager
async def bench_runtime() -> AsyncIterator[Runtime]:
    """A runtime on its own embedded server in a temporary directory, removed afterwards."""
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedMongo(Path(tmp) / "db")
        uri = await server.astart()
        config = load_config(environ={}).with_overrides(
            {
                "api": {"accessToken": "bench-root-token"},
                "dbs": {"mongo": uri, "database": "bench"},
                "storage": {"dataDir": tmp},
                "emailDomain": "bench.test",
            }
        )
        try:
            async with open_runtime(config, janitor=False) as runtime:
                yield runtime
        finally:
            await server.astop()


async def bench_user(runtime: Runtime, quota: int = 100 * 1024**3) -> tuple[str, str]:
    """A user with a large quota, and the id of its INBOX."""
    user = await runtime.users.create({"username": "b" + uuid.uuid4().hex[:10], "quota": quota})
    inbox = await runtime.mailboxes.inbox(user)
    return user, str(inbox["_id"])


def message(index: int, body_size: int = 2000, attachment: bytes | None = None) -> bytes:
    """A typical message: headers, a text/plain and text/html alternative, maybe a file."""
    text = (f"Line {index} of a fairly ordinary message body. " * (body_size // 48 + 1))[:body_size]
    head = (
        f"From: Sender {index} <sender{index}@example.com>\r\nTo: bench@bench.test\r\n"
        f"Subject: Benchmark message {index}\r\nMessage-ID: <{uuid.uuid4().hex}@example.com>\r\n"
        "Date: Tue, 01 Oct 2024 10:00:00 +0000\r\nMIME-Version: 1.0\r\n"
    )
    alternative = (
        "--alt\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        f"{text}\r\n--alt\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        f"<p>{text}</p>\r\n--alt--\r\n"
    )
    if attachment is None:
        return (head + 'Content-Type: multipart/alternative; boundary="alt"\r\n\r\n').encode() + (
            alternative.encode()
        )
    import base64

    encoded = base64.encodebytes(attachment).replace(b"\n", b"\r\n")
    return (
        (head + 'Content-Type: multipart/mixed; boundary="mix"\r\n\r\n--mix\r\n').encode()
        + b'Content-Type: multipart/alternative; boundary="alt"\r\n\r\n'
        + alternative.encode()
        + b'--mix\r\nContent-Type: application/pdf; name="report.pdf"\r\n'
        + b"Content-Transfer-Encoding: base64\r\n\r\n"
        + encoded
        + b"--mix--\r\n"
    )
