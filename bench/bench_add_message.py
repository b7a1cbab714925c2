"""Benchmark: MessageService.add_message against a bare insert_one loop of the same documents.

Both run on the same embedded database in the same process and run: the baseline inserts, one
by one, copies of exactly the documents add_message stored, into a scratch collection of the
same logical database. Prints the throughput ratio (target >= 0.5x) and the database round
trips per added message, counted with the driver's command monitoring (target <= 6 without
attachments). Run: .venv/bin/python bench/bench_add_message.py [messages]
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Awaitable, Callable

from _store import bench_runtime, bench_user, message

from wildpy.runtime import Runtime
from wildpy.storage.database import new_id
from wildpy.storage.messages import Messages

CONCURRENCY = 16


async def timed_adds(
    runtime: Runtime, user: str, box: str, raws: list[bytes], parallel: int
) -> float:
    queue = list(raws)

    async def worker() -> None:
        while queue:
            await runtime.messages.add_message(user, box, queue.pop())

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(parallel)))
    return time.perf_counter() - started


async def timed_inserts(runtime: Runtime, docs: list[dict[str, object]], parallel: int) -> float:
    """The baseline: the same documents, one insert_one each, into a collection of the same
    logical database with the same indexes as `messages`."""
    scratch = runtime.database.mail[f"baseline_{new_id()}"]
    for index in Messages.indexes:
        await scratch.create_index(index.keys, unique=index.unique, sparse=index.sparse)
    queue = [{**doc, "_id": new_id(), "mailbox": new_id()} for doc in docs]

    async def worker() -> None:
        while queue:
            await scratch.insert_one(queue.pop())

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(parallel)))
    elapsed = time.perf_counter() - started
    await scratch.drop()
    return elapsed


async def round_trips(runtime: Runtime, label: str, user: str, box: str, raws: list[bytes]) -> None:
    commands = runtime.database.commands
    commands.reset()
    for raw in raws:
        await runtime.messages.add_message(user, box, raw)
    per = commands.count / len(raws)
    names = {name: round(count / len(raws), 2) for name, count in sorted(commands.by_name.items())}
    print(f"round trips per add, {label}: {per:.2f}  {names}")


async def other_round_trips(runtime: Runtime, user: str, box: str) -> None:
    """Round trips of the other operations, for the record."""
    commands = runtime.database.commands
    trash = str((await runtime.mailboxes.by_special_use(user, "\\Trash"))["_id"])
    page = await runtime.messages.list_messages(user, box, limit=10)
    uids = [row["uid"] for row in page.results]
    operations: list[tuple[str, Callable[[int], Awaitable[object]]]] = [
        ("list_messages (50)", lambda uid: runtime.messages.list_messages(user, box, limit=50)),
        ("get_raw (200 KB attachment)", lambda uid: runtime.messages.get_raw(user, uid_doc[uid])),
        ("update_flags", lambda uid: runtime.messages.update_flags(user, box, uid, add=["\\Seen"])),
        ("move", lambda uid: runtime.messages.move(user, box, uid, trash)),
    ]
    uid_doc = {uid: row["_id"] for uid, row in zip(uids, page.results, strict=True)}
    for name, call in operations:
        commands.reset()
        for uid in uids[:5]:
            await call(uid)
        print(f"round trips per {name}: {commands.count / 5:.1f}")
    commands.reset()
    for uid in uids[5:10]:
        await runtime.messages.delete(user, box, uid)
    print(f"round trips per delete (archived): {commands.count / 5:.1f}")


async def run(runtime: Runtime, count: int) -> None:
    user, box = await bench_user(runtime)
    for index in range(20):  # warm up connections and the server's caches
        await runtime.messages.add_message(user, box, message(index))

    await round_trips(
        runtime, "plain message, new thread", user, box, [message(i) for i in range(50)]
    )
    shared = os.urandom(200 * 1024)
    await runtime.messages.add_message(user, box, message(0, attachment=shared))
    await round_trips(
        runtime,
        "200 KB attachment already stored",
        user,
        box,
        [message(i, attachment=shared) for i in range(20)],
    )
    await round_trips(
        runtime,
        "new 200 KB attachment each",
        user,
        box,
        [message(i, attachment=os.urandom(200 * 1024)) for i in range(20)],
    )

    await other_round_trips(runtime, user, box)

    for parallel in (1, CONCURRENCY):
        bench_user_id, bench_box = await bench_user(runtime)
        raws = [message(10_000 + i) for i in range(count)]
        runtime.database.commands.reset()
        add_time = await timed_adds(runtime, bench_user_id, bench_box, raws, parallel)
        # concurrent adds share their writes (group commit): fewer commands per add
        per_add = runtime.database.commands.count / count
        docs = await runtime.repositories.messages.find({"mailbox": bench_box}, limit=count)
        insert_time = await timed_inserts(runtime, docs, parallel)
        ratio = insert_time / add_time
        print(
            f"{parallel:2d} at a time: add_message {count / add_time:7.0f} msg/s "
            f"({per_add:.2f} round trips per add), bare insert_one {count / insert_time:7.0f} "
            f"doc/s, ratio {ratio:.2f} (target >= 0.50)"
        )


async def main(count: int) -> None:
    async with bench_runtime() as runtime:
        await run(runtime, count)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 500))
