"""User uploads ("storage files", later used as draft attachments): a GridFS bucket plus our own
metadata collection.

The bytes live in the GridFS bucket `storage` of the attachments database and are reached only
through the bucket API (storage.md: the embedded server keeps `storage.files`/`storage.chunks`
elsewhere, so queries on them silently match nothing). Everything we look things up by (owner,
name, size, hash, dates) lives in the `storagefiles` collection, one document per file, whose
`_id` is the GridFS file id (a 24-hex string, like every id). Listing, paging and search run on
that collection only.

Consistency without transactions:

- upload: the GridFS file is written first, then its metadata; when the metadata insert fails
  the file is deleted again.
- delete: the metadata goes first (that is also the ownership check), then the file.

So the only inconsistency a crash or an outage can leave is a GridFS file without metadata. It is
invisible (nothing lists, reads or counts the bucket) and harmless, and a sweep can collect it
later by comparing the bucket's ids with this collection (not done yet).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncGenerator
from typing import Any, ClassVar

from gridfs import AsyncGridFSBucket, AsyncGridOut
from gridfs.errors import GridFSError, NoFile
from pymongo.errors import PyMongoError

from .collection import Collection, Index
from .database import Database, Document, translate
from .pagination import Page, PageRequest

log = logging.getLogger("wildpy.storage")

#: GridFS files of 46 MB and more are stored but cannot be read back on the embedded server
#: (storage.md); nothing larger than this goes into a bucket.
MAX_GRIDFS_FILE_SIZE = 40 * 1024 * 1024


class FileMissing(Exception):
    """The metadata names a file the bucket does not have (a damaged store, not a user error)."""


class FileTooLarge(Exception):
    """The content is larger than a GridFS file may safely be (MAX_GRIDFS_FILE_SIZE)."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"{size} bytes, at most {limit} allowed")
        self.size = size
        self.limit = limit


class StoredFileReader:
    """An open GridFS file, read chunk by chunk (255 KiB each) or whole.

    Driver errors come out as catalogue errors (the async generator cannot be wrapped by
    `guarded`, so it translates them itself).
    """

    def __init__(self, grid_out: AsyncGridOut) -> None:
        self._grid_out = grid_out

    @property
    def length(self) -> int:
        return int(self._grid_out.length)

    async def chunks(self) -> AsyncGenerator[bytes, None]:
        """The file's bytes, one GridFS chunk at a time; the reader is closed at the end."""
        try:
            while True:
                try:
                    chunk = await self._grid_out.readchunk()
                except PyMongoError as exc:
                    raise translate(exc) from exc
                if not chunk:
                    return
                yield bytes(chunk)
        finally:
            await self.close()

    async def read(self) -> bytes:
        """The whole file (for draft attachments; files are at most MAX_GRIDFS_FILE_SIZE)."""
        parts = [chunk async for chunk in self.chunks()]
        return b"".join(parts)

    async def close(self) -> None:
        # closing a cursor on a lost server: there is nothing left to release
        with contextlib.suppress(PyMongoError):
            await self._grid_out.close()


class StorageFiles(Collection):
    """The `storagefiles` metadata collection and the `storage` GridFS bucket it describes.

    Document: `_id` (the GridFS file id, 24 hex), `user`, `filename`, `contentType`, `cid` (only
    when given), `size`, `md5`, `created`.
    """

    database = "attachments"
    name = "storagefiles"
    bucket_name: ClassVar[str] = "storage"
    # Listing pages by (filename, _id) within one user. The index cannot end in `_id`: the
    # embedded server (nx-27017 0.8.1) turns `_id` inside a compound index into an invalid JSON
    # path and then refuses every insert into the collection ("JSON path error near '_id'").
    indexes = [Index([("user", 1), ("filename", 1)])]

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self.bucket = AsyncGridFSBucket(db.attachments, bucket_name=self.bucket_name)

    async def store(self, document: Document, content: bytes) -> None:
        """Write `content` as GridFS file `document["_id"]`, then its metadata `document`.

        When the metadata cannot be written the file is removed again, so a failed upload leaves
        nothing behind (or, if that removal fails too, an invisible orphan: see the module doc).
        """
        if len(content) > MAX_GRIDFS_FILE_SIZE:
            raise FileTooLarge(len(content), MAX_GRIDFS_FILE_SIZE)
        file_id = document["_id"]
        await self.bucket.upload_from_stream_with_id(
            file_id,
            str(document.get("filename", "")),
            content,
            metadata={"user": document["user"]},
        )
        try:
            await self.collection.insert_one(document)
        except BaseException:  # including cancellation: never keep a file nobody can see
            await self._discard(file_id)
            raise

    async def open(self, file_id: str) -> StoredFileReader:
        """A reader of GridFS file `file_id`; FileMissing when the bucket does not have it."""
        try:
            grid_out = await self.bucket.open_download_stream(file_id)
        except NoFile:
            raise FileMissing(file_id) from None
        return StoredFileReader(grid_out)

    async def remove(self, file_id: str, user: str) -> bool:
        """Delete `user`'s file `file_id`: metadata first, then the GridFS file.

        False when the user has no such file. Once the metadata is gone the file is gone for
        every caller, so a failure to delete the bytes is logged and left to a later sweep.
        """
        if not await self.delete_one({"_id": file_id, "user": user}):
            return False
        await self._discard(file_id)
        return True

    async def _discard(self, file_id: str) -> None:
        """Delete GridFS file `file_id` if it exists; failures leave a harmless orphan."""
        try:
            await self.bucket.delete(file_id)
        except NoFile:
            pass
        except (GridFSError, PyMongoError) as exc:
            # the embedded server answers a missing file with OperationFailure, not NoFile
            log.warning("could not delete GridFS file %s/%s: %s", self.bucket_name, file_id, exc)

    async def ids_of_user(self, user: str) -> list[str]:
        """The ids of all of `user`'s files (account purge)."""
        return [str(row["_id"]) for row in await self.find({"user": user}, {"_id": 1})]

    async def file_of_user(self, user: str, file_id: str) -> Document | None:
        """The metadata of `user`'s file `file_id`; None when the user has no such file."""
        return await self.collection.find_one({"_id": file_id, "user": user})

    async def page_of_user(
        self,
        user: str,
        *,
        filename_pattern: str | None,
        paging: PageRequest,
    ) -> Page:
        """One page of `user`'s files ordered by (filename, _id). `filename_pattern` is a regular
        expression the caller has already escaped; it matches case-insensitively."""
        query: dict[str, Any] = {"user": user}
        if filename_pattern:
            query["filename"] = {"$regex": filename_pattern, "$options": "i"}
        return await self.page(query, paging, field="filename")
