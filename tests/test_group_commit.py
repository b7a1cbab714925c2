"""Group commit (wildpy/services/group_commit.py) and what the message store builds on it.

The mechanism alone first (groups form while a write is in flight, each caller hears of its own
item, turns go in number order), then on the real database: concurrent adds share their
inserts, journal writes, mailbox counters and quota, and each still behaves as if alone.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence

import pytest
from test_message_store import (
    BROKEN,
    FORWARDED,
    HTML,
    SAMPLES,
    assert_consistent,
    inbox,
    mailbox_doc,
    new_user,
    plain,
    service_with,
    storage_used,
)

from wildpy import errors
from wildpy.mime import ThreadHeaders, parse_message, thread_headers
from wildpy.runtime import Runtime
from wildpy.services.group_commit import GroupCommit, InOrder
from wildpy.services.messages import AddedMessage
from wildpy.storage.database import Document
from wildpy.storage.messages import Messages

# ------------------------------------------------------------------------------ the mechanism


async def test_items_submitted_during_a_write_go_together_in_the_next() -> None:
    groups: list[list[int]] = []
    release = asyncio.Event()

    async def flush(key: str, items: list[int]) -> list[int | BaseException]:
        groups.append(items)
        if len(groups) == 1:
            await release.wait()  # the first write stays in flight while the others queue
        return [item * 10 for item in items]

    commit: GroupCommit[str, int, int] = GroupCommit(flush)
    first = commit.submit("k", 1)
    await asyncio.sleep(0)  # the first write is under way, alone: a lone caller never waits
    assert groups == [[1]]
    rest = [commit.submit("k", n) for n in range(2, 7)]
    await asyncio.sleep(0.01)
    assert groups == [[1]]  # queued behind the write in flight
    release.set()
    assert await first == 10
    assert await asyncio.gather(*rest) == [20, 30, 40, 50, 60]
    assert groups == [[1], [2, 3, 4, 5, 6]]
    await commit.idle()


async def test_each_caller_gets_its_own_outcome() -> None:
    async def flush(key: str, items: list[int]) -> list[int | BaseException]:
        return [ValueError(item) if item % 2 else item for item in items]

    commit: GroupCommit[str, int, int] = GroupCommit(flush)
    results = await asyncio.gather(
        *(commit.submit("k", n) for n in range(6)), return_exceptions=True
    )
    assert [r if isinstance(r, int) else "error" for r in results] == [
        0,
        "error",
        2,
        "error",
        4,
        "error",
    ]


async def test_a_failed_write_fails_its_whole_group_only() -> None:
    calls = 0

    async def flush(key: str, items: list[int]) -> list[int | BaseException]:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        if calls == 2:
            raise ConnectionError("lost")
        return items

    commit: GroupCommit[str, int, int] = GroupCommit(flush)
    first = commit.submit("k", 0)
    await asyncio.sleep(0)
    second = [commit.submit("k", n) for n in (1, 2)]
    await asyncio.sleep(0.015)  # the second group is in flight now
    third = commit.submit("k", 3)
    assert await first == 0
    for future in second:
        with pytest.raises(ConnectionError):
            await future
    assert await third == 3


async def test_groups_respect_count_and_weight_limits() -> None:
    groups: list[list[int]] = []

    async def flush(key: None, items: list[int]) -> list[BaseException | None]:
        groups.append(items)
        await asyncio.sleep(0.001)
        return [None] * len(items)

    commit: GroupCommit[None, int, None] = GroupCommit(
        flush, max_items=3, max_weight=10, weigh=lambda item: item
    )
    await asyncio.gather(*(commit.submit(None, n) for n in (1, 1, 1, 1, 4, 4, 4, 20, 1)))
    # all submitted at once; an item heavier than the limit still goes, alone
    assert groups == [[1, 1, 1], [1, 4, 4], [4], [20], [1]]


async def test_keys_are_written_side_by_side() -> None:
    running: set[str] = set()
    overlapped = False

    async def flush(key: str, items: list[int]) -> list[BaseException | None]:
        nonlocal overlapped
        running.add(key)
        overlapped = overlapped or len(running) > 1
        await asyncio.sleep(0.01)
        running.discard(key)
        return [None] * len(items)

    commit: GroupCommit[str, int, None] = GroupCommit(flush)
    await asyncio.gather(commit.submit("a", 1), commit.submit("b", 2))
    assert overlapped


async def test_turns_go_in_number_order() -> None:
    order = InOrder()
    for uid in (5, 6, 7, 8):
        order.hold("box", uid)
    went: list[int] = []

    async def take(uid: int, delay: float) -> None:
        await asyncio.sleep(delay)
        await order.turn("box", uid)
        went.append(uid)
        order.release("box", uid)

    # 8 and 6 are ready first; 7 is given up (a failed add) without taking its turn
    async def give_up() -> None:
        await asyncio.sleep(0.02)
        order.release("box", 7)

    await asyncio.gather(take(8, 0), take(6, 0), take(5, 0.01), give_up())
    assert went == [5, 6, 8]
    await order.turn("other", 1)  # nothing held: no waiting


async def test_a_lost_turn_is_taken_after_patience() -> None:
    order = InOrder(patience=0.05)
    order.hold("box", 1)
    order.hold("box", 2)
    await asyncio.wait_for(order.turn("box", 2), 1)  # 1 is never released


# ------------------------------------------------------------------------------ the store


@pytest.mark.parametrize(
    "raw",
    [
        *SAMPLES.values(),
        HTML,
        FORWARDED,
        BROKEN,
        plain(subject="=?utf-8?B?UmU6IGNhZsOp?=", References="<a@x> <b@x>", In_Reply_To="<b@x>"),
        b"Thread-Index: AdQxyz\r\nSubject: only\r\n  folded\r\n",
        b"no header at all, no blank line",
        b"\r\n\r\nSubject: in the body\r\n",
    ],
)
def test_thread_headers_match_the_full_parse(raw: bytes) -> None:
    """The thread step starts from the top header block alone: it must see what the full
    parse sees, or a message would be threaded differently than its stored fields say."""
    assert thread_headers(raw) == ThreadHeaders.of(parse_message(raw))


async def test_concurrent_adds_journal_in_uid_order_and_visible_on_return(
    runtime: Runtime,
) -> None:
    user = await new_user(runtime)
    boxes = [await inbox(runtime, user), await runtime.mailboxes.create(user, "Second")]

    async def add(index: int) -> AddedMessage:
        box = boxes[index % 2]
        added = await runtime.messages.add_message(user, box, plain(subject=f"group {index}"))
        # acknowledged: the message and its journal event are both readable now
        assert (await runtime.messages.get(user, box, added.uid))["_id"] == added.id
        events = await runtime.repositories.journal.find({"message": added.id})
        assert [(e["command"], e["uid"]) for e in events] == [("EXISTS", added.uid)]
        return added

    counter = runtime.database.commands
    counter.reset()
    added = await asyncio.gather(*(add(i) for i in range(50)))
    # the writes were shared: far fewer commands than 50 adds of 5 each, plus the checks
    assert counter.count < 50 * 5, counter.by_name

    events = await runtime.journal.since(user, None)
    exists = [e for e in events if e["command"] == "EXISTS"]
    assert len(exists) == 50
    assert sorted(e["message"] for e in exists) == sorted(a.id for a in added)
    for box in boxes:
        uids = [e["uid"] for e in exists if e["mailbox"] == box]
        assert len(uids) == 25
        assert uids == sorted(uids), uids  # in (created, _id) order, as readers read them
        assert uids == list(range(1, 26))
        assert (await mailbox_doc(runtime, box))["uidNext"] == 26
    modseqs = [a.modseq for a in added]
    assert len(set(zip(modseqs, [a.mailbox for a in added], strict=True))) == 50
    await assert_consistent(runtime, user)


class EveryOtherInsertFails(Messages):
    """Stores the even uids of a group and reports a fault for the odd ones."""

    async def insert_each(self, documents: Sequence[Document]) -> list[Exception | None]:
        keep = [doc for doc in documents if doc["uid"] % 2 == 0]
        await super().insert_each(keep)
        return [
            None if doc["uid"] % 2 == 0 else errors.InternalDatabaseError() for doc in documents
        ]


async def test_a_failed_item_of_a_group_is_undone_alone(runtime: Runtime) -> None:
    user = await new_user(runtime)
    box = await inbox(runtime, user)
    service = service_with(runtime, messages=EveryOtherInsertFails(runtime.database))
    results = await asyncio.gather(
        *(service.add_message(user, box, plain(subject=f"half {i}")) for i in range(12)),
        return_exceptions=True,
    )
    stored = [r for r in results if isinstance(r, AddedMessage)]
    failed = [r for r in results if isinstance(r, errors.StoreError)]
    assert len(stored) == len(failed) == 6
    assert all(added.uid % 2 == 0 for added in stored)
    assert await storage_used(runtime, user) == sum(added.size for added in stored)
    events = await runtime.journal.since(user, None)
    assert sorted(e["uid"] for e in events if e["command"] == "EXISTS") == sorted(
        added.uid for added in stored
    )
    await assert_consistent(runtime, user)


async def test_quota_of_a_group_is_checked_as_if_one_by_one(runtime: Runtime) -> None:
    raw = plain(body="x" * 2000)
    user = await new_user(runtime, quota=len(raw) * 5)
    box = await inbox(runtime, user)
    results = await asyncio.gather(
        *(runtime.messages.add_message(user, box, raw) for _ in range(8)),
        return_exceptions=True,
    )
    stored = [r for r in results if isinstance(r, AddedMessage)]
    refused = [r for r in results if isinstance(r, errors.OverQuotaError)]
    # submitted together, checked in order: exactly the first five fit
    assert (len(stored), len(refused)) == (5, 3)
    assert await storage_used(runtime, user) == 5 * len(raw)
    assert refused[0].details == {"allowed": 5 * len(raw), "used": 5 * len(raw)}
    await assert_consistent(runtime, user)


async def test_a_reply_stored_before_its_original_shares_its_thread(runtime: Runtime) -> None:
    user = await new_user(runtime)
    box = await inbox(runtime, user)
    root = f"<{uuid.uuid4().hex}@x>"
    reply = await runtime.messages.add_message(
        user, box, plain(subject="Re: Picnic", In_Reply_To=root, References=root)
    )
    original = plain(subject="Picnic")
    original = original.replace(
        original.split(b"Message-ID: ")[1].split(b"\r\n")[0], root.encode(), 1
    )
    first = await runtime.messages.add_message(user, box, original)
    assert first.thread == reply.thread
    # the subject key followed: a later reply found by subject alone joins the same thread
    late = await runtime.messages.add_message(user, box, plain(subject="RE: picnic"))
    assert late.thread == reply.thread
    # an unrelated message with the same subject that is no reply starts its own
    other = await runtime.messages.add_message(user, box, plain(subject="Picnic"))
    assert other.thread != reply.thread
