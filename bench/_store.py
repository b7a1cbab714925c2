"""Shared set-up of the message-store benchmarks: a throw-away embedded server and runtime."""

from __future__ import annotations

import argparse
import asyncio.base_events
import base64
import collections
import contextlib
import email.message
import functools
import inspect
import json.decoder
import logging
import random
import re
import tempfile
import textwrap
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

from wildpy.config import load_config
from wildpy.runtime import Runtime, open_runtime
from wildpy.services.account_inputs import Limits, NewUser
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
            async with open_runtime(config) as runtime:
                yield runtime
        finally:
            await server.astop()


async def bench_user(runtime: Runtime, quota: int = 100 * 1024**3) -> tuple[str, str]:
    """A user with a large quota, and the id of its INBOX."""
    user = await runtime.users.create(
        NewUser(username="b" + uuid.uuid4().hex[:10], limits=Limits(quota=quota))
    )
    inbox = await runtime.mailboxes.inbox(user)
    return user, str(inbox["_id"])


@functools.cache
def _vocabulary() -> tuple[list[str], list[int]]:
    """English words with their frequencies, from the standard library's own prose: a Zipf-like
    distribution, so that bodies compress like real text (repeated filler would not)."""
    counts: collections.Counter[str] = collections.Counter()
    for module in (argparse, email.message, logging, asyncio.base_events, json.decoder):
        counts.update(re.findall(r"[A-Za-z]{2,}", inspect.getsource(module)))
    words = list(counts)
    return words, [counts[word] for word in words]


def prose(index: int, size: int) -> str:
    """About `size` characters of text, different for every `index`."""
    words, weights = _vocabulary()
    rng = random.Random(index)
    out: list[str] = []
    length = 0
    while length < size:
        sentence = " ".join(rng.choices(words, weights, k=rng.randint(6, 18))).capitalize() + "."
        out.append(sentence)
        length += len(sentence) + 1
    text = " ".join(out)[:size]
    # wrapped at 76 characters, as mail clients do
    return "\r\n".join(textwrap.wrap(text, 76))


def message(index: int, body_size: int = 2000, attachment: bytes | None = None) -> bytes:
    """A typical message: headers, a text/plain and text/html alternative, maybe a file."""
    text = prose(index, body_size)
    head = (
        f"From: Sender {index} <sender{index}@example.com>\r\nTo: bench@bench.test\r\n"
        f"Subject: Benchmark message {index}\r\nMessage-ID: <{uuid.uuid4().hex}@example.com>\r\n"
        "Date: Tue, 01 Oct 2024 10:00:00 +0000\r\nMIME-Version: 1.0\r\n"
    )
    html = "".join(f"<p>{line}</p>\r\n" for line in text.split("\r\n"))
    alternative = (
        "--alt\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        f"{text}\r\n--alt\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        f"<html><body>{html}</body></html>\r\n--alt--\r\n"
    )
    if attachment is None:
        head += 'Content-Type: multipart/alternative; boundary="alt"\r\n\r\n'
        return (head + alternative).encode()
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
