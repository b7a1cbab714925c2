"""Typed change events through `JournalService.subscribe`, as IMAP IDLE, POP3 and webhooks will
read them: each kind of change, a start from an event id or from a mailbox's modseq, and the
Redis fast path between two processes."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from conftest import make_config
from redis_server import redis_server

from wildpy.runtime import Runtime, open_runtime
from wildpy.services.account_inputs import NewUser
from wildpy.services.events import (
    ChangeEvent,
    CountersChanged,
    FlagsChanged,
    MailboxCreated,
    MailboxDeleted,
    MailboxRenamed,
    MessageAdded,
    MessageExpunged,
    MessageMoved,
)
from wildpy.services.journal_notify import RedisNotifier

RAW = b"From: a@example.com\r\nTo: b@example.com\r\nSubject: typed\r\n\r\nhello\r\n"
#: long enough for any event of this process (they wake readers at once)
PROMPT = 5.0


async def new_user(runtime: Runtime) -> tuple[str, str]:
    user = await runtime.users.create(
        NewUser(username="ev" + uuid.uuid4().hex[:10], password="typed pass 123")
    )
    inbox = (await runtime.mailboxes.inbox(user))["_id"]
    return user, inbox


def kinds(events: list[ChangeEvent]) -> list[str]:
    return [type(event).__name__ for event in events]


async def test_every_kind_of_change_arrives_typed(runtime: Runtime) -> None:
    user, inbox = await new_user(runtime)
    changes = await runtime.journal.subscribe(user, counters=True)

    folder = await runtime.mailboxes.create(user, "Typed")
    (created,) = await changes.next(PROMPT)
    assert isinstance(created, MailboxCreated)
    assert (created.user, created.mailbox, created.path) == (user, folder, "Typed")

    added = await runtime.messages.add_message(user, inbox, RAW)
    exists, counters = await changes.next(PROMPT)
    assert isinstance(exists, MessageAdded) and isinstance(counters, CountersChanged)
    assert (exists.mailbox, exists.uid, exists.message) == (inbox, added.uid, added.id)
    assert (exists.modseq, exists.unseen, exists.flags) == (added.modseq, True, ())
    assert (counters.mailbox, counters.total, counters.unseen, counters.id) == (
        inbox,
        1,
        1,
        exists.id,
    )

    await runtime.messages.update_flags(user, inbox, added.uid, add=["\\Seen"])
    flagged, counters = await changes.next(PROMPT)
    assert isinstance(flagged, FlagsChanged)
    assert (flagged.uid, flagged.flags, flagged.unseen) == (added.uid, ("\\Seen",), False)
    assert flagged.modseq is not None and flagged.modseq > added.modseq
    assert isinstance(counters, CountersChanged) and counters.unseen == 0

    moved = await runtime.messages.move(user, inbox, added.uid, folder)
    events = await changes.next(PROMPT)
    assert kinds(events) == ["MessageMoved", "MessageAdded", "CountersChanged", "CountersChanged"]
    left, arrived = events[0], events[1]
    # a move is an expunge to whoever watches the source, and says where the message went
    assert isinstance(left, MessageMoved) and isinstance(left, MessageExpunged)
    assert isinstance(arrived, MessageAdded)
    assert (left.mailbox, left.uid) == (inbox, added.uid)
    assert (left.target, left.target_uid) == (folder, moved.uid)
    assert (arrived.mailbox, arrived.uid, arrived.flags) == (folder, moved.uid, ("\\Seen",))
    assert {event.mailbox for event in events[2:]} == {inbox, folder}

    await runtime.messages.delete(user, folder, moved.uid)
    gone, counters = await changes.next(PROMPT)
    assert isinstance(gone, MessageExpunged) and (gone.mailbox, gone.uid) == (folder, moved.uid)
    assert isinstance(counters, CountersChanged) and counters.total == 0

    await runtime.mailboxes.update(user, folder, {"path": "Typed2"})
    (renamed,) = await changes.next(PROMPT)
    assert isinstance(renamed, MailboxRenamed) and renamed.path == "Typed2"
    await runtime.mailboxes.delete(user, folder)
    (deleted,) = await changes.next(PROMPT)
    assert isinstance(deleted, MailboxDeleted) and deleted.mailbox == folder
    assert await changes.next(0.2) == []


async def test_subscribe_from_an_event_id_or_a_modseq(runtime: Runtime) -> None:
    user, inbox = await new_user(runtime)
    other = await runtime.mailboxes.create(user, "Elsewhere")
    first = await runtime.messages.add_message(user, inbox, RAW)
    await runtime.messages.add_message(user, other, RAW)
    second = await runtime.messages.add_message(user, inbox, RAW)
    third = await runtime.messages.add_message(user, inbox, RAW)

    # an IMAP client that saw HIGHESTMODSEQ of the first message gets the two after it
    resumed = await runtime.journal.subscribe(user, mailbox=inbox, modseq=first.modseq)
    events = await resumed.next(PROMPT)
    assert [(type(event), getattr(event, "uid", None)) for event in events] == [
        (MessageAdded, second.uid),
        (MessageAdded, third.uid),
    ]

    # from an event id: everything after it, every mailbox
    everything = await runtime.journal.since(user, None)
    after_first = next(str(row["_id"]) for row in everything if row.get("uid") == first.uid)
    later = await runtime.journal.subscribe(user, after=after_first)
    assert [event.mailbox for event in await later.next(PROMPT)] == [other, inbox, inbox]

    # from now: only what comes next
    fresh = await runtime.journal.subscribe(user, mailbox=inbox)
    assert await fresh.next(0.2) == []
    fourth = await runtime.messages.add_message(user, inbox, RAW)
    (event,) = await fresh.next(PROMPT)
    assert isinstance(event, MessageAdded) and event.uid == fourth.uid


async def test_redis_wakes_readers_of_another_process(mongo_uri: str, tmp_path: Path) -> None:
    """Two runtimes stand for two processes. The reader polls the journal only every 60 s, so
    the event can only arrive within the wait through Redis pub/sub."""
    with redis_server(tmp_path) as redis_uri:
        config = make_config(
            mongo_uri,
            tmp_path,
            dbs={"redis": redis_uri},
            journal={"pollIntervalWithRedis": 60},
        )
        async with open_runtime(config) as reader, open_runtime(config) as writer:
            for side in (reader, writer):
                assert isinstance(side.journal.notifier, RedisNotifier)
                await side.journal.notifier.subscribed.wait()
            user, _ = await new_user(reader)
            changes = await reader.journal.subscribe(user)
            # the reader would wait up to 4 x PROMPT, the test only PROMPT: only a wake-up fits
            waiting = asyncio.create_task(changes.next(PROMPT * 4))
            # polled once and now asleep (no event marks that moment, hence the short poll)
            while not reader.journal.readers_waiting(user):  # noqa: ASYNC110
                await asyncio.sleep(0.01)
            mailbox = await writer.mailboxes.create(user, "Across")
            async with asyncio.timeout(PROMPT):
                (event,) = await waiting
            assert isinstance(event, MailboxCreated) and event.mailbox == mailbox
            await reader.database.drop_all()


async def test_events_are_stored_when_redis_is_down(mongo_uri: str, tmp_path: Path) -> None:
    """Redis is the fast path only: a writer whose Redis is gone still stores its events, and a
    reader finds them by polling."""
    config = make_config(
        mongo_uri,
        tmp_path,
        dbs={"redis": "redis://127.0.0.1:1/0"},
        journal={"pollIntervalWithRedis": 0.2},
    )
    async with open_runtime(config) as runtime:
        user, _ = await new_user(runtime)
        changes = await runtime.journal.subscribe(user)
        async with open_runtime(config, ensure_indexes=False) as elsewhere:
            mailbox = await elsewhere.mailboxes.create(user, "No redis")
        (event,) = await changes.next(PROMPT)
        assert isinstance(event, MailboxCreated) and event.mailbox == mailbox
        await runtime.database.drop_all()
