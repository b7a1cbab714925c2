"""Benchmark: 1,000 messages that share one 1 MB attachment, stored through add_message.

Prints the bytes stored (GridFS files of both buckets, message documents as BSON, and the
attachment reference documents) against the ideal: one copy of the attachment (encoded, as it
appears in the messages) plus each message's own bytes (its raw size without the attachment).
Target: within 1.1x. Also prints the breakdown of a message document, since everything it holds
beyond its raw bytes (index fields, search text, header block, MIME tree) is what the ratio
measures.
Run: .venv/bin/python bench/bench_attachments.py [messages]
"""

from __future__ import annotations

import asyncio
import os
import sys
import time

import bson
from _store import bench_runtime, bench_user, message

from wildpy.mime import parse_message
from wildpy.runtime import Runtime
from wildpy.storage.blobs import Bucket

CONCURRENCY = 8


async def run(runtime: Runtime, count: int) -> None:
    user, box = await bench_user(runtime)
    attachment = os.urandom(1024 * 1024)
    raws = [message(index, body_size=1500, attachment=attachment) for index in range(count)]
    encoded = parse_message(raws[0]).attachments[0]
    encoded_size = encoded.body_end - encoded.body_start

    queue = list(raws)

    async def worker() -> None:
        while queue:
            await runtime.messages.add_message(user, box, queue.pop())

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    elapsed = time.perf_counter() - started
    print(f"stored {count} messages of {len(raws[0]):,} bytes in {elapsed:.1f} s")

    files = await Bucket(runtime.database, "attachments").sizes()
    bodies = await Bucket(runtime.database, "bodies").sizes()
    docs = await runtime.repositories.messages.find({"user": user})
    refs = await runtime.repositories.attachment_refs.find({})
    doc_bytes = sum(len(bson.encode(doc)) for doc in docs)
    ref_bytes = sum(len(bson.encode(ref)) for ref in refs)
    stored = sum(files.values()) + sum(bodies.values()) + doc_bytes + ref_bytes
    own = sum(len(raw) - encoded_size for raw in raws)
    ideal = encoded_size + own
    print(
        f"GridFS attachment files: {len(files)} ({sum(files.values()):,} bytes), "
        f"body files: {len(bodies)}, reference count: {refs[0]['count'] if refs else 0}"
    )
    print(
        f"message documents: {doc_bytes:,} bytes ({doc_bytes / count:,.0f} per message, "
        f"raw without attachment {own / count:,.0f})"
    )
    print(f"stored {stored:,} bytes vs ideal {ideal:,} bytes: ratio {stored / ideal:.3f}")
    print(f"  (without deduplication it would be {sum(len(r) for r in raws) / ideal:.0f}x)")
    sample = docs[0]
    parts = sorted(
        ((len(bson.encode({key: value})) - 5, key) for key, value in sample.items()), reverse=True
    )
    print("  per-message document, largest fields: " + ", ".join(f"{k} {n}" for n, k in parts[:8]))


async def main(count: int) -> None:
    async with bench_runtime() as runtime:
        await run(runtime, count)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000))
