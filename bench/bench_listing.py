"""Benchmark: the newest 50 messages of a 100,000-message mailbox against a 1,000-message one.

The message documents are written with insert_many (copies of the listing fields of a document
add_message stored, with new ids and uids) and the mailbox counters set to match; then
MessageService.list_messages reads the first page, a later page by cursor and the unseen-only
first page of each mailbox. Prints the time ratio big/small (target: within 3x).
Run: .venv/bin/python bench/bench_listing.py [big]
"""

from __future__ import annotations

import asyncio
import sys
import time

from _store import bench_runtime, bench_user, message

from wildpy.runtime import Runtime
from wildpy.storage.database import Document, new_id
from wildpy.store.documents import LISTING_FIELDS

ROUNDS = 20
BATCH = 2000


async def fill(runtime: Runtime, user: str, box: str, template: Document, count: int) -> None:
    """`count` copies of `template` in mailbox `box`, uids 1..count, every third one seen."""
    for start in range(0, count, BATCH):
        docs = []
        for uid in range(start + 1, min(start + BATCH, count) + 1):
            unseen = uid % 3 != 0
            docs.append(
                {
                    **template,
                    "_id": new_id(),
                    "mailbox": box,
                    "uid": uid,
                    "modseq": uid,
                    "unseen": unseen,
                    "flags": [] if unseen else ["\\Seen"],
                }
            )
        await runtime.repositories.messages.collection.insert_many(docs, ordered=False)
    unseen_count = sum(1 for uid in range(1, count + 1) if uid % 3 != 0)
    await runtime.repositories.mailboxes.update_one(
        {"_id": box},
        {
            "$set": {
                "uidNext": count + 1,
                "modifyIndex": count,
                "total": count,
                "unseen": unseen_count,
                "size": count * int(template["size"]),
            }
        },
    )


async def timed(call: object, rounds: int = ROUNDS) -> float:
    started = time.perf_counter()
    for _ in range(rounds):
        await call()  # type: ignore[operator]
    return (time.perf_counter() - started) / rounds


async def measure(runtime: Runtime, user: str, box: str) -> dict[str, float]:
    service = runtime.messages
    first = await service.list_messages(user, box, limit=50)
    assert len(first.results) == 50 and isinstance(first.next_cursor, str)
    cursor = first.next_cursor
    later = await service.list_messages(user, box, limit=50, next_cursor=cursor, page=2)
    assert len(later.results) == 50
    return {
        "newest 50": await timed(lambda: service.list_messages(user, box, limit=50)),
        "next page": await timed(
            lambda: service.list_messages(user, box, limit=50, next_cursor=cursor, page=2)
        ),
        "unseen 50": await timed(lambda: service.list_messages(user, box, limit=50, unseen=True)),
    }


async def run(runtime: Runtime, big: int) -> None:
    user, inbox = await bench_user(runtime)
    added = await runtime.messages.add_message(user, inbox, message(1))
    stored = await runtime.repositories.messages.get(added.id)
    assert stored is not None
    # the listing reads only listing fields through the {mailbox, uid} index; leaving out the
    # bulky ones (raw segments, text, html, MIME tree) keeps the set-up within a minute
    template = {key: value for key, value in stored.items() if key in LISTING_FIELDS}
    small_box = await runtime.mailboxes.create(user, "Small")
    big_box = await runtime.mailboxes.create(user, "Big")
    started = time.perf_counter()
    await fill(runtime, user, small_box, template, 1000)
    await fill(runtime, user, big_box, template, big)
    print(f"set-up: {big + 1000} message documents in {time.perf_counter() - started:.0f} s")
    await measure(runtime, user, small_box)  # warm up
    small = await measure(runtime, user, small_box)
    large = await measure(runtime, user, big_box)
    for name in small:
        print(
            f"{name}: {big:,} messages {large[name] * 1000:6.1f} ms, 1,000 messages "
            f"{small[name] * 1000:6.1f} ms, ratio {large[name] / small[name]:.2f} (target <= 3)"
        )


async def main(big: int) -> None:
    async with bench_runtime() as runtime:
        await run(runtime, big)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000))
