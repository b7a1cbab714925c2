"""A message acknowledged with 250 is never lost, also when the server is killed with -9.

A real `wildpy serve` takes a burst of SMTP deliveries from several connections; once a few
hundred have their 250, it gets SIGKILL mid-burst. After a restart on the same data directory,
every acknowledged message is in the INBOX exactly once.
"""

from __future__ import annotations

import json
import os
import signal
import smtplib
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from serve_process import WILDPY, free_port, serve_env, wait_serving
from test_cli import http

ROOT_TOKEN = "durability-root-token-0123456789abcdef"
SENDERS = 4
#: acknowledged messages before the kill
KILL_AFTER = 200


def _start(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[str]:
    # output to a file: a pipe nobody reads would fill up and stall the server
    with log.open("a") as output:
        process = subprocess.Popen(
            [*WILDPY, "serve"], env=env, stdout=output, stderr=subprocess.STDOUT, text=True
        )
    wait_serving(process, port, timeout=60, log=log)
    return process


@pytest.fixture
def server_env(tmp_path: Path) -> Iterator[tuple[dict[str, str], int, int, Path]]:
    api_port, smtp_port = free_port(), free_port()
    env = serve_env(tmp_path / "data", api_port)
    env.update(WILDPY_API__ACCESSTOKEN=ROOT_TOKEN, WILDPY_SMTP__PORT=str(smtp_port))
    yield env, api_port, smtp_port, tmp_path / "serve.log"


def _message(n: int) -> bytes:
    return (
        f"From: burst@remote.example\r\nTo: durable@cli.test\r\nSubject: burst {n:05}\r\n"
        f"Message-ID: <burst-{n}@remote.example>\r\n\r\nmessage number {n}\r\n"
    ).encode()


class Numbers:
    """Message numbers for several sender threads, each handed out once."""

    def __init__(self) -> None:
        self._next = 0
        self._lock = threading.Lock()

    def take(self) -> int:
        with self._lock:
            self._next += 1
            return self._next


def _sender(port: int, numbers: Numbers, acknowledged: list[int], lock: threading.Lock) -> None:
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            while True:
                n = numbers.take()
                client.sendmail("burst@remote.example", ["durable@cli.test"], _message(n))
                with lock:
                    acknowledged.append(n)  # only after the 250
    except (smtplib.SMTPException, OSError):
        pass  # the kill


def _subjects(port: int, user: str) -> list[str]:
    status, boxes = http(port, "GET", f"/users/{user}/mailboxes", ROOT_TOKEN)
    assert status == 200, boxes
    inbox = next(box["id"] for box in boxes["results"] if box["path"] == "INBOX")
    subjects: list[str] = []
    cursor: str | None = None
    while True:
        query = f"?limit=250&next={cursor}" if cursor else "?limit=250"
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/users/{user}/mailboxes/{inbox}/messages{query}",
            headers={"X-Access-Token": ROOT_TOKEN},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            page: dict[str, Any] = json.loads(response.read())
        subjects.extend(message["subject"] for message in page["results"])
        cursor = page.get("nextCursor") or None
        if not cursor:
            return subjects


def test_acknowledged_messages_survive_kill_9(
    server_env: tuple[dict[str, str], int, int, Path],
) -> None:
    env, api_port, smtp_port, log = server_env
    process = _start(env, api_port, log)
    try:
        status, created = http(
            api_port,
            "POST",
            "/users",
            ROOT_TOKEN,
            {
                "username": "durable",
                "password": "durable pass 123",
                "address": "durable@cli.test",
                "receivedMax": 100_000,  # the default 60 a minute would stop the burst
            },
        )
        assert status == 200, created
        user = created["id"]

        acknowledged: list[int] = []
        lock = threading.Lock()
        numbers = Numbers()
        senders = [
            threading.Thread(target=_sender, args=(smtp_port, numbers, acknowledged, lock))
            for _ in range(SENDERS)
        ]
        for thread in senders:
            thread.start()
        deadline = time.monotonic() + 120
        while len(acknowledged) < KILL_AFTER and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        for thread in senders:
            thread.join(timeout=30)
        with lock:
            survivors = sorted(acknowledged)
        assert len(survivors) >= KILL_AFTER

        process = _start(env, api_port, log)  # at once, as a supervisor would
        subjects = _subjects(api_port, user)
        stored = sorted(int(subject.split()[1]) for subject in subjects)
        assert len(stored) == len(set(stored)), "a message is stored twice"
        missing = set(survivors) - set(stored)
        assert not missing, f"{len(missing)} acknowledged messages lost: {sorted(missing)[:10]}"
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
