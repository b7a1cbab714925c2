"""GET /users/:user/updates: the journal as server-sent events, read by a real SSE client."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from conftest import Api, assert_error

from wildpy.config import Config
from wildpy.handlers import updates
from wildpy.runtime import Runtime, open_runtime
from wildpy.storage.database import new_id

PASSWORD = "correct horse 1"
#: how long an event may take to reach a listener
PROMPT = 1.0
#: listeners poll every 250 ms: another process's event is there well within a second
POLLED = 0.6


class EventStream:
    """Reads a text/event-stream response block by block."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response = response

    async def block(self, within: float = PROMPT) -> list[str]:
        """The lines of the next block (up to the blank line); [] at the end of the stream."""
        lines: list[str] = []
        async with asyncio.timeout(within):
            while True:
                raw = await self.response.content.readline()
                if not raw:
                    return lines
                line = raw.decode("utf-8").rstrip("\n")
                if not line:
                    if lines:
                        return lines
                    continue
                lines.append(line)

    async def event(self, within: float = PROMPT) -> tuple[str, dict[str, Any]]:
        """The next event (comments skipped): its id and its data."""
        async with asyncio.timeout(within):
            while True:
                lines = await self.block(within)
                assert lines, "the stream ended"
                if all(line.startswith(":") for line in lines):
                    continue
                data = "\n".join(line[6:] for line in lines if line.startswith("data: "))
                ids = [line[4:] for line in lines if line.startswith("id: ")]
                assert len(ids) == 1, lines
                return ids[0], json.loads(data)

    async def events(self, count: int) -> list[tuple[str, dict[str, Any]]]:
        return [await self.event() for _ in range(count)]

    async def nothing_for(self, seconds: float) -> None:
        """No event arrives within `seconds` (comments may)."""
        with pytest.raises(TimeoutError):
            await self.event(seconds)

    def close(self) -> None:
        self.response.close()


async def open_stream(
    api: Api, user: str, *, headers: dict[str, str] | None = None, last: str | None = None
) -> EventStream:
    """Open the user's stream (`last`: the Last-Event-ID query parameter) and read its first
    comment, which tells the stream is open."""
    params = {"Last-Event-ID": last} if last is not None else {}
    sent = {"X-Access-Token": api.token or "", **(headers or {})}
    response = await api.client.get(f"/users/{user}/updates", headers=sent, params=params)
    assert response.status == 200, await response.text()
    stream = EventStream(response)
    assert await stream.block() == [f": wildpy [{user}]"]
    return stream


async def new_user(api: Api) -> tuple[str, str]:
    username = "sse" + uuid.uuid4().hex[:10]
    status, body = await api.post("/users", {"username": username, "password": PASSWORD})
    assert status == 200, body
    return str(body["id"]), username


async def create(api: Api, user: str, path: str) -> str:
    status, body = await api.post(f"/users/{user}/mailboxes", {"path": path})
    assert status == 200, body
    return str(body["id"])


async def test_stream_shape_and_mailbox_events(api: Api, runtime: Runtime) -> None:
    user, _ = await new_user(api)
    response = await api.client.get(
        f"/users/{user}/updates", headers={"X-Access-Token": api.token or ""}
    )
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/event-stream; charset=utf-8"
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers["X-Accel-Buffering"] == "no"
    stream = EventStream(response)
    assert await stream.block() == [f": wildpy [{user}]"]
    try:
        parent = await create(api, user, "Parent")
        event_id, data = await stream.event()
        assert data == {"mailbox": parent, "command": "CREATE", "path": "Parent"}
        stored = await runtime.repositories.journal.get(event_id)
        assert stored is not None
        assert (stored["user"], stored["mailbox"]) == (user, parent)

        child = await create(api, user, "Parent/Child")
        assert (await stream.event())[1]["path"] == "Parent/Child"

        status, body = await api.put(f"/users/{user}/mailboxes/{parent}", {"path": "Moved"})
        assert status == 200, body
        renamed = sorted(
            ((data["mailbox"], data["command"], data["path"]) for _, data in await stream.events(2))
        )
        assert renamed == sorted([(parent, "RENAME", "Moved"), (child, "RENAME", "Moved/Child")])

        status, body = await api.delete(f"/users/{user}/mailboxes/{child}")
        assert status == 200, body
        _, data = await stream.event()
        assert data == {"mailbox": child, "command": "DELETE", "path": "Moved/Child"}
        await stream.nothing_for(0.3)
    finally:
        stream.close()


async def test_only_the_users_own_events(api: Api) -> None:
    user, _ = await new_user(api)
    other, _ = await new_user(api)
    stream = await open_stream(api, user)
    try:
        await create(api, other, "Not for you")
        mine = await create(api, user, "For you")
        _, data = await stream.event()
        assert data["mailbox"] == mine
    finally:
        stream.close()


async def test_resume_with_last_event_id(api: Api, runtime: Runtime) -> None:
    user, _ = await new_user(api)
    made = [await create(api, user, name) for name in ("One", "Two", "Three")]
    ids = [event["_id"] for event in await runtime.journal.since(user, None)]
    assert len(ids) == 3

    # without a Last-Event-ID only what happens from now on
    stream = await open_stream(api, user)
    try:
        await stream.nothing_for(0.3)
    finally:
        stream.close()

    # the header, as EventSource sends it on reconnection
    stream = await open_stream(api, user, headers={"Last-Event-ID": ids[0]})
    try:
        got = await stream.events(2)
        assert [event_id for event_id, _ in got] == ids[1:]
        assert [data["mailbox"] for _, data in got] == made[1:]
        four = await create(api, user, "Four")
        assert (await stream.event())[1]["mailbox"] == four
    finally:
        stream.close()

    # the query parameter (WildDuck's name), which wins over the header
    stream = await open_stream(api, user, headers={"Last-Event-ID": ids[0]}, last=ids[1].upper())
    try:
        assert [data["path"] for _, data in await stream.events(2)] == ["Three", "Four"]
    finally:
        stream.close()

    # an id the journal no longer has still marks a point in time
    forgotten = "000000000000000000000000"
    stream = await open_stream(api, user, last=forgotten)
    try:
        assert [data["path"] for _, data in await stream.events(4)] == [
            "One",
            "Two",
            "Three",
            "Four",
        ]
    finally:
        stream.close()


async def test_event_from_another_process(api: Api, runtime: Runtime, config: Config) -> None:
    """A second runtime on the same database stands for another wildpy process: its events
    reach this one's listeners by polling alone (no in-process wake-up crosses over)."""
    user, _ = await new_user(api)
    stream = await open_stream(api, user)
    try:
        async with open_runtime(config, ensure_indexes=False) as elsewhere:
            assert elsewhere.journal is not runtime.journal
            mailbox = await elsewhere.mailboxes.create(user, "From elsewhere")
            _, data = await stream.event(POLLED)
            assert data == {"mailbox": mailbox, "command": "CREATE", "path": "From elsewhere"}
            await elsewhere.mailboxes.update(user, mailbox, {"path": "Renamed elsewhere"})
            _, data = await stream.event(POLLED)
            assert (data["command"], data["path"]) == ("RENAME", "Renamed elsewhere")
    finally:
        stream.close()


async def test_an_event_that_shows_up_late_is_still_delivered(api: Api, runtime: Runtime) -> None:
    """Another writer's event can become visible after a newer one was delivered (a slow insert,
    a clock a little behind): the listener's look-back still delivers it, once."""
    user, _ = await new_user(api)
    stream = await open_stream(api, user)
    try:
        newer = await create(api, user, "Newer")
        newer_id, _ = await stream.event()
        newer_event = await runtime.repositories.journal.get(newer_id)
        assert newer_event is not None
        late_id = new_id()
        await runtime.repositories.journal.insert(
            {
                "_id": late_id,
                "user": user,
                "mailbox": newer,
                "command": "RENAME",
                "path": "Late",
                "created": newer_event["created"] - timedelta(milliseconds=700),
            }
        )
        event_id, data = await stream.event(POLLED)
        assert (event_id, data["path"]) == (late_id, "Late")
        await stream.nothing_for(0.6)  # and not twice
    finally:
        stream.close()


async def test_counters_follow_message_events(api: Api, runtime: Runtime) -> None:
    user, _ = await new_user(api)
    inbox = (await runtime.mailboxes.inbox(user))["_id"]
    stream = await open_stream(api, user)
    raw = b"From: a@example.com\r\nTo: b@example.com\r\nSubject: counted\r\n\r\nhello\r\n"
    try:
        added = await runtime.messages.add_message(user, inbox, raw)
        exists_id, exists = await stream.event()
        assert exists["command"] == "EXISTS"
        assert (exists["mailbox"], exists["uid"]) == (inbox, added.uid)
        # internal fields stay inside; unseen is only for COUNTERS
        assert not {"user", "created", "_id", "modseq", "unseen"} & set(exists)
        counters_id, counters = await stream.event()
        assert counters_id == exists_id
        assert counters == {"command": "COUNTERS", "mailbox": inbox, "total": 1, "unseen": 1}
    finally:
        stream.close()


async def test_idle_comments_and_end_of_stream(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(updates, "IDLE_COMMENT_EVERY", 0.2)
    monkeypatch.setattr(updates, "STREAM_LIFETIME", 0.9)
    user, _ = await new_user(api)
    stream = await open_stream(api, user)
    try:
        assert await stream.block() == [": idling 1"]
        assert await stream.block() == [": idling 2"]
        # the stream ends by itself after its lifetime
        async with asyncio.timeout(2.0):
            while await stream.block(2.0):
                pass
    finally:
        stream.close()


async def test_shutdown_ends_open_streams(api: Api) -> None:
    user, _ = await new_user(api)
    stream = await open_stream(api, user)
    try:
        await api.client.app.shutdown()  # the on_shutdown signal, as a stopping server sends
        async with asyncio.timeout(PROMPT):
            while await stream.block(PROMPT):
                pass
    finally:
        stream.close()


async def test_updates_errors_and_access(api: Api) -> None:
    user, username = await new_user(api)
    other, _ = await new_user(api)
    token = {"X-Access-Token": api.token or ""}

    response = await api.client.get(f"/users/{new_id()}/updates", headers=token)
    assert_error(response.status, await response.json(), 404, "UserNotFound")
    response = await api.client.get(
        f"/users/{user}/updates", headers=token, params={"Last-Event-ID": "nope"}
    )
    assert_error(response.status, await response.json(), 400, "InputValidationError")
    response = await api.client.get(
        f"/users/{user}/updates", headers={**token, "Last-Event-ID": "nope"}
    )
    body = await response.json()
    assert_error(response.status, body, 400, "InputValidationError")
    assert "Last-Event-ID" in body["details"]
    response = await api.client.get(f"/users/{user}/updates", params={"other": "1"}, headers=token)
    assert_error(response.status, await response.json(), 400, "InputValidationError")
    response = await api.client.get(f"/users/{user}/updates")
    assert_error(response.status, await response.json(), 401, "InvalidToken")

    status, body = await api.post(
        "/authenticate", {"username": username, "password": PASSWORD, "token": True}
    )
    assert status == 200, body
    as_user = api.as_token(body["token"])
    stream = await open_stream(as_user, user)
    stream.close()
    response = await api.client.get(
        f"/users/{other}/updates", headers={"X-Access-Token": body["token"]}
    )
    assert_error(response.status, await response.json(), 403, "MissingPrivileges")


# ---------------------------------------------------------------------------------- the service


async def test_journal_since_and_wait(runtime: Runtime) -> None:
    journal = runtime.journal
    user = new_id()
    assert await journal.since(user, None) == []
    assert await journal.latest(user) is None
    assert await journal.wait(user, None, 0.3) == []

    first = await journal.record(user, new_id(), "CREATE", path="A", ignored=None)
    events = await journal.since(user, None)
    assert [event["_id"] for event in events] == [first]
    assert "ignored" not in events[0]
    assert await journal.since(user, first) == []

    waiter = asyncio.create_task(journal.wait(user, first, 5.0))
    second = await journal.record(user, new_id(), "DELETE", path="A")
    waited = await waiter
    assert [event["_id"] for event in waited] == [second]
    latest = await journal.latest(user)
    assert latest is not None and latest.id == second


async def test_listener_delivers_concurrent_writes_once_in_order(runtime: Runtime) -> None:
    journal = runtime.journal
    user = new_id()
    await journal.record(user, new_id(), "CREATE", path="before")
    listener = await journal.listen(user)
    written = await asyncio.gather(
        *(journal.record(user, new_id(), "CREATE", path=str(n)) for n in range(40))
    )
    received: list[dict[str, Any]] = []
    async with asyncio.timeout(5):
        while len(received) < len(written):
            received.extend(await listener.next(PROMPT))
    assert sorted(event["_id"] for event in received) == sorted(written)
    order = [(event["created"], event["_id"]) for event in received]
    assert order == sorted(order)
    assert await listener.next(0.3) == []
    assert listener.last_id == received[-1]["_id"]
