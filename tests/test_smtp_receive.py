"""Receiving mail: the SMTP and LMTP doors with real clients (smtplib, swaks, raw sockets).

The doors run on the test's runtime, beside the REST API of the `api` fixture, so a message
delivered by SMTP is read back through the API.
"""

from __future__ import annotations

import asyncio
import shutil
import smtplib
import socket
import ssl
import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from conftest import Api

from wildpy.config import Config
from wildpy.runtime import Runtime, open_runtime
from wildpy.smtp.door import ReceivingDoor, start_lmtp, start_smtp

PASSWORD = "smtp pass 1234"
MESSAGE = (
    b"From: Sender <sender@remote.example>\r\n"
    b"To: someone@example.com\r\n"
    b"Subject: over SMTP\r\n"
    b"Message-ID: <m1@remote.example>\r\n"
    b"\r\n"
    b"Hello over SMTP.\r\n"
    b"..a line that starts with a dot\r\n"
)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def doors(config: Config, runtime: Runtime) -> AsyncIterator[tuple[int, int]]:
    door_config = config.with_overrides({"smtp": {"port": 0}, "lmtp": {"port": 0}})
    smtp = await start_smtp(runtime, door_config)
    lmtp = await start_lmtp(runtime, door_config)
    try:
        yield _port(smtp), _port(lmtp)
    finally:
        await smtp.close()
        await lmtp.close()


def _port(door: ReceivingDoor) -> int:
    return door.addresses[0][1]


async def new_user(api: Api, **fields: Any) -> tuple[str, str]:
    name = "rcv" + uuid.uuid4().hex[:10]
    status, body = await api.post("/users", {"username": name, "password": PASSWORD, **fields})
    assert status == 200, body
    return str(body["id"]), f"{name}@example.com"


async def inbox_messages(api: Api, user: str) -> tuple[str, list[dict[str, Any]]]:
    status, body = await api.get(f"/users/{user}/mailboxes")
    assert status == 200, body
    inbox = next(box["id"] for box in body["results"] if box["path"] == "INBOX")
    status, body = await api.get(f"/users/{user}/mailboxes/{inbox}/messages")
    assert status == 200, body
    return inbox, body["results"]


async def source_of(api: Api, user: str, inbox: str, message: int) -> bytes:
    response = await api.client.get(
        f"/users/{user}/mailboxes/{inbox}/messages/{message}/message.eml",
        headers={"X-Access-Token": api.token or ""},
    )
    assert response.status == 200
    return await response.read()


def send(port: int, sender: str, recipients: list[str], message: bytes) -> dict[str, Any]:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        return client.sendmail(sender, recipients, message)


async def test_smtplib_delivers_byte_identical_after_trace_headers(
    api: Api, doors: tuple[int, int]
) -> None:
    smtp_port, _ = doors
    user, address = await new_user(api)
    refused = await asyncio.to_thread(send, smtp_port, "sender@remote.example", [address], MESSAGE)
    assert refused == {}

    inbox, messages = await inbox_messages(api, user)
    assert [m["subject"] for m in messages] == ["over SMTP"]
    source = await source_of(api, user, inbox, messages[0]["id"])
    trace, separator, original = source.partition(b"From: Sender")
    assert separator + original == MESSAGE  # smtplib dot-stuffs, the door un-stuffs
    lines = trace.decode().split("\r\n")
    assert lines[0] == "Return-Path: <sender@remote.example>"
    assert lines[1] == f"Delivered-To: {address}"
    assert lines[2].startswith("Received: from ") and "with ESMTP id" in lines[3]
    assert lines[4].startswith(f"\tfor <{address}>; ")


async def test_recipients_refused_with_their_catalogue_replies(
    api: Api, doors: tuple[int, int]
) -> None:
    smtp_port, _ = doors
    _, known = await new_user(api)
    disabled_id, disabled = await new_user(api)
    status, body = await api.put(f"/users/{disabled_id}", {"disabled": True})
    assert status == 200, body
    full_id, full = await new_user(api)
    # one message through the door, then a quota below what it uses
    assert await asyncio.to_thread(send, smtp_port, "a@remote.example", [full], MESSAGE) == {}
    status, body = await api.put(f"/users/{full_id}", {"quota": 100})
    assert status == 200, body

    def talk() -> list[tuple[int, bytes]]:
        with smtplib.SMTP("127.0.0.1", smtp_port, timeout=10) as client:
            client.ehlo("client.example")
            client.mail("a@remote.example")
            return [
                client.rcpt(rcpt)
                for rcpt in (f"nobody-{uuid.uuid4().hex[:6]}@example.com", disabled, full, known)
            ]

    unknown_reply, disabled_reply, full_reply, known_reply = await asyncio.to_thread(talk)
    assert unknown_reply[0] == 550 and unknown_reply[1].startswith(b"5.1.1 AddressNotFound")
    assert disabled_reply[0] == 550 and disabled_reply[1].startswith(b"5.2.1 UserDisabled")
    assert full_reply[0] == 452 and full_reply[1].startswith(b"4.2.2 OverQuotaError")
    assert known_reply[0] == 250


async def test_lmtp_answers_per_recipient(api: Api, doors: tuple[int, int]) -> None:
    _, lmtp_port = doors
    first_id, first = await new_user(api)
    second_id, second = await new_user(api)
    # room at RCPT time, none for this message: refused by that recipient alone, after DATA
    small_id, small = await new_user(api, quota=1024)
    big = MESSAGE + (b"x" * 900 + b"\r\n") * 3

    # smtplib's LMTP gives no per-recipient answers after DATA: speak it raw
    replies = await asyncio.to_thread(_lmtp_raw, lmtp_port, [first, small, second], big)
    assert [code for code, _ in replies["rcpt"]] == [250, 250, 250]
    assert [code for code, _ in replies["data"]] == [250, 452, 250]
    assert b"OverQuotaError" in replies["data"][1][1]
    for user in (first_id, second_id):
        _, messages = await inbox_messages(api, user)
        assert len(messages) == 1
    _, messages = await inbox_messages(api, small_id)
    assert messages == []


def _lmtp_raw(
    port: int, recipients: list[str], message: bytes
) -> dict[str, list[tuple[int, bytes]]]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        stream = sock.makefile("rwb")

        def reply() -> list[tuple[int, bytes]]:
            lines = []
            while True:
                line = stream.readline().rstrip(b"\r\n")
                lines.append((int(line[:3]), line[4:]))
                if line[3:4] != b"-":
                    return lines

        def command(text: bytes) -> list[tuple[int, bytes]]:
            stream.write(text + b"\r\n")
            stream.flush()
            return reply()

        assert reply()[0][0] == 220
        assert command(b"LHLO mta.example")[-1][0] == 250
        assert command(b"MAIL FROM:<a@remote.example>")[0][0] == 250
        rcpt = [command(f"RCPT TO:<{r}>".encode())[0] for r in recipients]
        assert command(b"DATA")[0][0] == 354
        stream.write(message + b".\r\n")
        stream.flush()
        data = [reply()[0] for r in rcpt if r[0] == 250]
        command(b"QUIT")
        return {"rcpt": rcpt, "data": data}


async def test_size_limits(api: Api, doors: tuple[int, int], config: Config) -> None:
    smtp_port, _ = doors
    _, address = await new_user(api)
    limit = config.smtp.max_size

    def talk() -> tuple[tuple[int, bytes], tuple[int, bytes], tuple[int, bytes]]:
        with smtplib.SMTP("127.0.0.1", smtp_port, timeout=30) as client:
            code, features = client.ehlo("client.example")
            assert code == 250
            assert f"SIZE {limit}".encode() in features
            for extension in (b"PIPELINING", b"8BITMIME", b"SMTPUTF8", b"ENHANCEDSTATUSCODES"):
                assert extension in features
            announced = client.docmd("MAIL", f"FROM:<a@remote.example> SIZE={limit + 1}")
            client.rset()
            client.mail("a@remote.example")
            client.rcpt(address)
            client.putcmd("DATA")
            assert client.getreply()[0] == 354
            client.send(b"Subject: big\r\n\r\n" + b"x" * 998 + b"\r\n")
            chunk = (b"y" * 998 + b"\r\n") * 1024
            for _ in range(limit // len(chunk) + 1):
                client.send(chunk)
            client.send(b".\r\n")
            too_big = client.getreply()
            # the connection survives
            still = client.noop()
            return announced, too_big, still

    announced, too_big, still = await asyncio.to_thread(talk)
    assert announced[0] == 552 and announced[1].startswith(b"5.3.4")
    assert too_big[0] == 552 and too_big[1].startswith(b"5.3.4")
    assert still[0] == 250


@pytest.mark.skipif(shutil.which("swaks") is None, reason="swaks is not installed (.ci/run does)")
async def test_swaks_delivers(api: Api, doors: tuple[int, int]) -> None:
    smtp_port, _ = doors
    user, address = await new_user(api)
    result = await asyncio.to_thread(
        subprocess.run,
        [
            "swaks",
            "--server",
            "127.0.0.1",
            "--port",
            str(smtp_port),
            "--from",
            "swaks@remote.example",
            "--to",
            address,
            "--header",
            "Subject: from swaks",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    _, messages = await inbox_messages(api, user)
    assert [m["subject"] for m in messages] == ["from swaks"]


async def test_shutdown_lets_a_message_in_data_finish(
    api: Api, runtime: Runtime, config: Config
) -> None:
    """Closing the door: an idle session gets 421 at once; one in the middle of DATA still gets
    its message stored and its 250, then the door is gone."""
    door = await start_smtp(runtime, config.with_overrides({"smtp": {"port": 0}}))
    port = _port(door)
    user, address = await new_user(api)
    idle_reader, idle_writer = await asyncio.open_connection("127.0.0.1", port)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for stream in (idle_reader, reader):
        assert (await stream.readline()).startswith(b"220 ")

    async def command(line: bytes) -> bytes:
        writer.write(line + b"\r\n")
        await writer.drain()
        return await reader.readline()

    assert (await command(b"HELO client.example")).startswith(b"250")
    assert (await command(b"MAIL FROM:<a@remote.example>")).startswith(b"250")
    assert (await command(f"RCPT TO:<{address}>".encode())).startswith(b"250")
    assert (await command(b"DATA")).startswith(b"354")
    writer.write(MESSAGE[:40])  # half a message
    await writer.drain()

    closing = asyncio.create_task(door.close())
    assert await idle_reader.readline() == b"421 4.3.2 Service shutting down, try again later\r\n"
    writer.write(MESSAGE[40:] + b".\r\n")
    await writer.drain()
    assert (await reader.readline()).startswith(b"250 2.0.0 OK")
    await closing
    _, messages = await inbox_messages(api, user)
    assert [m["subject"] for m in messages] == ["over SMTP"]
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)
    for stream_writer in (idle_writer, writer):
        stream_writer.close()


async def test_garbage_gets_errors_then_421(doors: tuple[int, int]) -> None:
    smtp_port, _ = doors
    reader, writer = await asyncio.open_connection("127.0.0.1", smtp_port)
    assert (await reader.readline()).startswith(b"220 ")
    replies = []
    for line in [b"HELLO?", b"\x00\xff garbage", b"MAIL nonsense", b"RCPT TO:<x>"] * 3:
        writer.write(line + b"\r\n")
        await writer.drain()
        reply = await reader.readline()
        replies.append(reply)
        if reply.startswith(b"421"):
            break
    codes = [reply[:3] for reply in replies]
    assert codes[:10] == [b"500", b"500", b"503", b"503"] * 2 + [b"500", b"500"]
    assert all(reply[4:5] == b"5" for reply in replies[:10])  # enhanced codes on every error
    assert replies[10] == b"421 4.7.0 Too many errors, closing the connection\r\n"
    assert await reader.read() == b""  # closed
    writer.close()


def _self_signed(directory: Path) -> tuple[Path, Path]:
    certificate, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(certificate),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )  # fmt: skip
    return certificate, key


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
async def test_starttls_with_the_configured_certificate(
    api: Api, config: Config, mongo_uri: str, tmp_path: Path
) -> None:
    certificate, key = _self_signed(tmp_path)
    tls_config = config.with_overrides(
        {"tls": {"certificate": str(certificate), "key": str(key)}, "smtp": {"port": 0}}
    )
    async with open_runtime(tls_config, ensure_indexes=False) as runtime:
        door = await start_smtp(runtime, tls_config)
        try:
            user, address = await new_user(api)

            def talk() -> bytes:
                context = ssl.create_default_context()
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
                with smtplib.SMTP("127.0.0.1", _port(door), timeout=10) as client:
                    client.ehlo("client.example")
                    assert client.has_extn("starttls")
                    client.starttls(context=context)
                    client.ehlo("client.example")
                    client.sendmail("a@remote.example", [address], MESSAGE)
                    return client.sock.version().encode() if client.sock else b""

            version = await asyncio.to_thread(talk)
            assert version.startswith(b"TLSv1.")
        finally:
            await door.close()
    inbox, messages = await inbox_messages(api, user)
    source = await source_of(api, user, inbox, messages[0]["id"])
    assert b"with ESMTPS id" in source
