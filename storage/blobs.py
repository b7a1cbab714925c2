"""Large binary content in `db.attachments`: GridFS buckets and deduplicated attachments.

- `Bucket`: one GridFS bucket, used only through the bucket API (storage.md), with string ids.
  `attachments` holds deduplicated attachment bodies, `bodies` the raw segments of messages
  too big to keep inline in the message document.
- `AttachmentRefs`: `attachmentrefs`, one document per distinct attachment body (`_id` = SHA-256
  hex of the encoded bytes) with its reference count and the GridFS file that holds it.
- `AttachmentStore`: the protocol that keeps the two consistent when many messages add and drop
  the same attachment at once (see `acquire` and `release`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gridfs import AsyncGridFSBucket
from gridfs.errors import NoFile
from pymongo.errors import OperationFailure

from wildpy.clock import epoch_ms, utcnow
from wildpy.errors import StoreError

from .collection import Collection
from .database import Database, Document, Repository, new_id

log = logging.getLogger("wildpy.storage.blobs")


class Bucket(Repository):
    """A GridFS bucket of `db.attachments`. Files are whole `bytes`: at most the message size
    limit (25 MB by default), well under the embedded server's ~40 MB GridFS ceiling."""

    def __init__(self, db: Database, name: str) -> None:
        self.name = name
        self.bucket = AsyncGridFSBucket(db.attachments, bucket_name=name)

    async def upload(
        self, file_id: str, data: bytes, *, filename: str, metadata: Mapping[str, Any]
    ) -> None:
        await self.bucket.upload_from_stream_with_id(file_id, filename, data, metadata=metadata)

    async def download(self, file_id: str) -> bytes:
        stream = await self.bucket.open_download_stream(file_id)
        return await stream.read()

    async def delete(self, file_id: str) -> bool:
        """Delete a file and its chunks; False when there was no such file."""
        try:
            await self.bucket.delete(file_id)
        except NoFile:
            return False
        except OperationFailure:
            # the embedded server answers a delete of a missing file with a command error
            return False
        return True

    async def sizes(self, limit: int = 10_000) -> dict[str, int]:
        """File id -> length, at most `limit` files (tests and benchmarks)."""
        out: dict[str, int] = {}
        cursor = self.bucket.find({}, limit=limit)
        async for grid_out in cursor:
            out[str(grid_out._id)] = int(grid_out.length)
        return out


class AttachmentRefs(Collection):
    """`{_id: sha256 hex, count, size, file, ready, owner, lease, created}`.

    `file` is the GridFS id in the `attachments` bucket; `ready` turns true once the whole file
    is stored; `owner` is the token of the adder uploading it ("" when nobody is), `lease` when
    that adder took the job (epoch milliseconds).
    """

    database = "attachments"
    name = "attachmentrefs"

    async def count_or_create(self, digest: str, fields: Document) -> bool:
        """Add one reference, creating the document with `fields` if there is none.

        True when this call created it. `update_one(upsert)` with `$setOnInsert` is what both
        MongoDB and the embedded server do right (storage.md); the unique `_id` makes one of
        several concurrent callers the creator.
        """
        result = await self.collection.update_one(
            {"_id": digest}, {"$inc": {"count": 1}, "$setOnInsert": fields}, upsert=True
        )
        return result.upserted_id is not None


@dataclass(frozen=True)
class Acquired:
    """An attachment reference held by a message: where its encoded bytes are stored."""

    hash: str
    file: str
    #: this call uploaded the file (only used for reporting and tests)
    uploaded: bool


class AttachmentStore:
    """Deduplicated attachment bodies: one GridFS file per distinct encoded body, counted.

    Adding a reference (`acquire`), per hash:

    1. `$inc count` on an existing refs document (one round trip). If it is `ready`, done: this
       is the common case of a body already stored.
    2. No document: `update_one(upsert)` with `$setOnInsert {file, owner: <my token>, ready:
       false}`. The unique `_id` (the hash) makes exactly one concurrent adder the creator; it
       uploads under the file id it wrote, then sets `ready` (conditional on still being the
       owner). Everybody else has incremented the count and waits.
    3. Waiting adders hold a count, so the document cannot disappear under them. They poll until
       `ready`; when the owner gave up (`owner` == "", after a failed upload) or its lease
       expired (a crashed process), one of them takes the job over with a conditional update on
       the owner it saw, under a fresh file id, and uploads.

    Dropping a reference (`release`): `$inc count -1`; at zero, `delete_one({_id, count <= 0})`
    and, only if that deleted it, the GridFS file. An adder that revives the count in between
    makes the delete match nothing, so the file stays; an adder that comes after the delete
    creates a new document and a new file id, which the old file's deletion cannot touch.
    """

    #: an owner that has not finished its upload after this long (ms) is presumed dead
    LEASE_MS = 60_000
    #: longest wait for another adder's upload before giving up with StoreError
    WAIT_LIMIT = 90.0

    def __init__(self, refs: AttachmentRefs, bucket: Bucket) -> None:
        self.refs = refs
        self.bucket = bucket

    async def acquire(self, digest: str, data: bytes | memoryview) -> Acquired:
        """Hold one reference to the body `data` whose SHA-256 hex is `digest`.

        Either returns with the reference held and the file readable, or raises having dropped
        the reference it took (a database that went away midway aside).
        """
        counted = False
        try:
            doc = await self.refs.find_one_and_update(
                {"_id": digest},
                {"$inc": {"count": 1}},
                projection={"file": 1, "ready": 1, "owner": 1, "lease": 1},
            )
            counted = doc is not None
            if doc is not None and doc.get("ready"):
                return Acquired(digest, str(doc["file"]), uploaded=False)
            if doc is None:
                token, file_id = new_id(), new_id()
                now = utcnow()
                fields: Document = {
                    "size": len(data),
                    "file": file_id,
                    "ready": False,
                    "owner": token,
                    "lease": epoch_ms(),
                    "created": now,
                }
                created = await self.refs.count_or_create(digest, fields)
                counted = True
                if created and await self._upload(digest, data, token, file_id):
                    return Acquired(digest, file_id, uploaded=True)
            # we hold a count: wait for whoever uploads, or take the job over
            return await self._await_ready(digest, data)
        except BaseException:
            if counted:
                await _quietly(self.release(digest))
            raise

    async def _await_ready(self, digest: str, data: bytes | memoryview) -> Acquired:
        started = time.monotonic()
        delay = 0.01
        while True:
            doc = await self.refs.get(digest, {"file": 1, "ready": 1, "owner": 1, "lease": 1})
            if doc is None:  # cannot happen while we hold a count; be safe, not stuck
                raise StoreError("Attachment reference vanished")
            if doc.get("ready"):
                return Acquired(digest, str(doc["file"]), uploaded=False)
            lease = doc.get("lease")
            stale = isinstance(lease, int) and epoch_ms() - lease > self.LEASE_MS
            if not doc.get("owner") or stale:
                token, file_id = new_id(), new_id()
                taken = await self.refs.update_one(
                    {"_id": digest, "ready": False, "owner": doc.get("owner", "")},
                    {"$set": {"owner": token, "file": file_id, "lease": epoch_ms()}},
                )
                if taken and await self._upload(digest, data, token, file_id):
                    return Acquired(digest, file_id, uploaded=True)
                continue
            if time.monotonic() - started > self.WAIT_LIMIT:
                raise StoreError("Timed out waiting for an attachment upload")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.2)

    async def _upload(
        self, digest: str, data: bytes | memoryview, token: str, file_id: str
    ) -> bool:
        """Upload as the owner; True once `ready` is set, False if the job was taken over.

        On failure the partial file is deleted and the job handed back (`owner` = "") for a
        waiting adder to take over, then the error propagates.
        """
        try:
            await self.bucket.upload(
                file_id, bytes(data), filename=digest, metadata={"sha256": digest}
            )
        except BaseException:
            await _quietly(self.bucket.delete(file_id))
            await _quietly(
                self.refs.update_one({"_id": digest, "owner": token}, {"$set": {"owner": ""}})
            )
            raise
        finished = await self.refs.update_one(
            {"_id": digest, "owner": token}, {"$set": {"ready": True, "owner": ""}}
        )
        if finished:
            return True
        # our lease was taken over while we uploaded: the new owner's file is the one
        await self.bucket.delete(file_id)
        return False

    async def release(self, digest: str, count: int = 1) -> bool:
        """Drop `count` references; True when that was the last and the file was deleted."""
        doc = await self.refs.find_one_and_update(
            {"_id": digest}, {"$inc": {"count": -count}}, projection={"count": 1, "file": 1}
        )
        if doc is None or int(doc.get("count", 0)) > 0:
            return False
        if not await self.refs.delete_one({"_id": digest, "count": {"$lte": 0}}):
            return False  # revived by a concurrent adder: the file stays
        await self.bucket.delete(str(doc["file"]))
        return True

    async def read(self, file_id: str) -> bytes:
        return await self.bucket.download(file_id)


async def _quietly(call: Any) -> None:
    """Run a clean-up step whose failure must not hide the error being handled."""
    try:
        await call
    except Exception:
        log.warning("attachment clean-up step failed", exc_info=True)


__all__ = [
    "Acquired",
    "AttachmentRefs",
    "AttachmentStore",
    "Bucket",
    "Document",
]
