"""Counters, quota and attachment references stay exact when many clients change one mailbox.

Real concurrency on the real (embedded) database: many coroutines share one client and event
loop, so their round trips interleave on the server as those of separate processes would.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from datetime import timedelta

from test_message_store import (
    FailingUploads,
    assert_consistent,
    assert_no_orphans,
    inbox,
    mailbox_doc,
    new_user,
    plain,
    service_with,
    storage_used,
    with_attachment,
)

from wildpy import errors
from wildpy.mime import parse_message
from wildpy.runtime import Runtime
from wildpy.services.messages import AddedMessage, utcnow
from wildpy.storage.blobs import AttachmentStore
from wildpy.storage.database import new_id

UPLOADERS = 20
DELETERS = 20
PER_UPLOADER = 8


async def test_concurrent_uploaders_deleters_movers_and_flaggers(runtime: Runtime) -> None:
    user = await new_user(runtime)
    box = await inbox(runtime, user)
    other = await runtime.mailboxes.create(user, "Elsewhere")
    shared = os.urandom(64 * 1024)
    added: list[AddedMessage] = []
    outcomes: dict[str, int] = {"deleted": 0, "missing": 0, "moved": 0, "flagged": 0}
    uploads_done = asyncio.Event()
    rng = random.Random(7)

    async def uploader(index: int) -> None:
        mine: list[int] = []
        for n in range(PER_UPLOADER):
            kind = (index + n) % 3
            if kind == 0:
                raw = with_attachment(shared, subject=f"shared {index}/{n}")
            elif kind == 1:
                raw = with_attachment(os.urandom(20_000), subject=f"own {index}/{n}")
            else:
                raw = plain(subject=f"plain {index}/{n}")
            message = await runtime.messages.add_message(
                user, box, raw, flags=["\\Seen"] if n % 2 else []
            )
            added.append(message)
            mine.append(message.uid)
        # uids handed to one client only grow
        assert mine == sorted(mine)

    async def deleter(index: int) -> None:
        # several deleters go for the same newest messages: exactly one may win each
        while not uploads_done.is_set() or await runtime.repositories.messages.count(
            {"mailbox": box}
        ):
            page = await runtime.messages.list_messages(user, box, limit=3)
            if not page.results:
                await asyncio.sleep(0.01)
                continue
            target = rng.choice(page.results)["uid"]
            action = rng.random()
            try:
                if action < 0.5:
                    await runtime.messages.delete(user, box, target, archive=index % 2 == 0)
                    outcomes["deleted"] += 1
                elif action < 0.75:
                    await runtime.messages.move(user, box, target, other)
                    outcomes["moved"] += 1
                else:
                    await runtime.messages.update_flags(
                        user,
                        box,
                        target,
                        add=["\\Seen"] if rng.random() < 0.5 else [],
                        remove=["\\Seen"] if rng.random() < 0.5 else [],
                    )
                    outcomes["flagged"] += 1
            except errors.MessageNotFound:
                outcomes["missing"] += 1

    async def uploads() -> None:
        await asyncio.gather(*(uploader(i) for i in range(UPLOADERS)))
        uploads_done.set()

    await asyncio.wait_for(
        asyncio.gather(uploads(), *(deleter(i) for i in range(DELETERS))), timeout=240
    )

    assert len(added) == UPLOADERS * PER_UPLOADER
    uids = [message.uid for message in added]
    assert len(set(uids)) == len(uids)
    assert sorted(uids) == list(range(1, len(uids) + 1))
    state = await mailbox_doc(runtime, box)
    assert state["uidNext"] == len(uids) + 1
    assert outcomes["deleted"] + outcomes["moved"] > 0 and outcomes["missing"] > 0, outcomes
    # nothing left in the mailbox, everything accounted for in the other one and the archive
    assert await runtime.repositories.messages.count({"mailbox": box}) == 0
    moved = await runtime.repositories.messages.find({"mailbox": other}, {"uid": 1})
    # a move that lost its race leaves a gap (a uid is never handed out twice); that is allowed
    moved_uids = [m["uid"] for m in moved]
    assert len(set(moved_uids)) == len(moved_uids)
    assert max(moved_uids, default=0) < (await mailbox_doc(runtime, other))["uidNext"]
    assert len(moved) == outcomes["moved"]
    await assert_consistent(runtime, user)
    # and the archive's references go with the purge
    await runtime.retention.run_once(utcnow() + timedelta(days=31))
    assert await runtime.repositories.archived.count({"user": user}) == 0
    await assert_consistent(runtime, user)


async def test_concurrent_adds_of_one_new_attachment_store_one_file(runtime: Runtime) -> None:
    user = await new_user(runtime)
    box = await inbox(runtime, user)
    content = os.urandom(700_000)
    raws = [with_attachment(content, subject=f"same {i}") for i in range(UPLOADERS)]
    added = await asyncio.gather(*(runtime.messages.add_message(user, box, r) for r in raws))
    doc = await runtime.messages.get(user, box, added[0].uid)
    ref = await runtime.repositories.attachment_refs.get(doc["atts"][0])
    assert ref is not None and ref["count"] == UPLOADERS
    for message, raw in zip(added, raws, strict=True):
        assert await runtime.messages.get_raw(user, message.id) == raw
    await assert_consistent(runtime, user)


class SlowFailingUploads(FailingUploads):
    """Fails only after the other adders have started waiting for this upload."""

    async def upload(self, file_id: str, data: bytes, *, filename: str, metadata: object) -> None:
        await asyncio.sleep(0.3)
        await super().upload(file_id, data, filename=filename, metadata=metadata)


async def test_waiting_adders_take_over_a_failed_upload(runtime: Runtime) -> None:
    user = await new_user(runtime)
    box = await inbox(runtime, user)
    failing = service_with(
        runtime, attachment_bucket=SlowFailingUploads(runtime.database, "attachments")
    )
    content = os.urandom(300_000)
    first = asyncio.create_task(failing.add_message(user, box, with_attachment(content, "x")))
    await asyncio.sleep(0.1)  # the failing adder now owns the upload
    others = [with_attachment(content, f"y{i}") for i in range(5)]
    results = await asyncio.gather(
        first,
        *(runtime.messages.add_message(user, box, raw) for raw in others),
        return_exceptions=True,
    )
    assert isinstance(results[0], errors.StoreError)
    stored = [r for r in results[1:] if isinstance(r, AddedMessage)]
    assert len(stored) == 5, results
    for message, raw in zip(stored, others, strict=True):
        assert await runtime.messages.get_raw(user, message.id) == raw
    assert await storage_used(runtime, user) == sum(len(raw) for raw in others)
    await assert_consistent(runtime, user)
    await assert_no_orphans(runtime)


async def test_concurrent_quota_never_exceeded(runtime: Runtime) -> None:
    body = "q" * 1000
    size = len(plain(body=body))
    user = await new_user(runtime, quota=size * 10 + size // 2)
    box = await inbox(runtime, user)
    results = await asyncio.gather(
        *(runtime.messages.add_message(user, box, plain(body=body)) for _ in range(30)),
        return_exceptions=True,
    )
    stored = [r for r in results if isinstance(r, AddedMessage)]
    refused = [r for r in results if isinstance(r, errors.OverQuotaError)]
    assert len(stored) + len(refused) == 30
    assert 1 <= len(stored) <= 10
    assert await storage_used(runtime, user) == sum(m.size for m in stored)
    await assert_consistent(runtime, user)


async def test_a_dead_uploaders_lease_is_taken_over(runtime: Runtime) -> None:
    """An adder that crashed mid-upload leaves `ready: false` with its lease; the next adder of
    the same body takes the job over once the lease is stale, instead of waiting for ever."""
    user = await new_user(runtime)
    box = await inbox(runtime, user)
    raw = with_attachment(os.urandom(100_000), "orphaned upload")
    digest = parse_message(raw).attachments[0].hash
    stale = time.time_ns() // 1_000_000 - AttachmentStore.LEASE_MS - 1000
    await runtime.repositories.attachment_refs.insert(
        {
            "_id": digest,
            "count": 1,  # the dead adder's reference
            "size": 1,
            "file": new_id(),
            "ready": False,
            "owner": "dead",
            "lease": stale,
        }
    )
    added = await asyncio.wait_for(runtime.messages.add_message(user, box, raw), timeout=30)
    assert await runtime.messages.get_raw(user, added.id) == raw
    ref = await runtime.repositories.attachment_refs.get(digest)
    assert ref is not None and ref["ready"] and ref["count"] == 2 and ref["owner"] == ""
    # what a reconciliation would do with the dead adder's reference
    await runtime.messages._attachments.release(digest)
    await assert_consistent(runtime, user)
