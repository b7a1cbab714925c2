"""Storage files: a user's uploads, kept to be attached to drafts later (WildDuck reference 5.7).

`FileService` decodes and checks the content, names it (a default file name from the content
type, or a content type from the file name), and hands bytes and metadata to the storage layer,
which keeps the GridFS file and its metadata consistent (storage/files.py). Reading goes through
the metadata first, so another user's file is indistinguishable from a missing one (404
FileNotFound either way).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import mimetypes
import re
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from datetime import UTC, datetime

from wildpy import errors
from wildpy.clock import utcnow
from wildpy.storage.accounts import Users
from wildpy.storage.database import Document, is_id, new_id
from wildpy.storage.files import (
    MAX_GRIDFS_FILE_SIZE,
    FileMissing,
    FileTooLarge,
    StorageFiles,
    StoredFileReader,
)
from wildpy.storage.pagination import Page, PageRequest

log = logging.getLogger("wildpy.files")

#: WildDuck's limit for one upload (`content`: binary, at most 64 MiB)
WILDDUCK_MAX_FILE_SIZE = 64 * 1024 * 1024
#: what wildpy accepts: WildDuck's limit, lowered to what GridFS can safely hold (storage.md)
MAX_FILE_SIZE = min(WILDDUCK_MAX_FILE_SIZE, MAX_GRIDFS_FILE_SIZE)

DEFAULT_CONTENT_TYPE = "application/octet-stream"

#: the built-in tables only, so detection does not depend on the host's /etc/mime.types
_MIME = mimetypes.MimeTypes()
#: `x.tar.gz` is guessed as a tar file with gzip *encoding*; the file itself is gzip data
_COMPRESSION_TYPES = {
    "gzip": "application/gzip",
    "bzip2": "application/x-bzip2",
    "xz": "application/x-xz",
    "compress": "application/x-compress",
    "br": "application/x-brotli",
}
_BASE64_URLSAFE = str.maketrans("-_", "+/")
#: the characters with a meaning in a regular expression (WildDuck escapes the same set)
_REGEX_SPECIAL = re.compile(r"[.*+?^${}()|\[\]\\]")


@dataclass(frozen=True)
class StoredFile:
    """The metadata of one uploaded file."""

    id: str
    user: str
    filename: str
    content_type: str
    size: int
    md5: str
    created: datetime
    cid: str | None = None

    @classmethod
    def from_document(cls, document: Document) -> StoredFile:
        return cls(
            id=str(document["_id"]),
            user=str(document["user"]),
            filename=str(document["filename"]),
            content_type=str(document["contentType"]),
            size=int(document["size"]),
            md5=str(document["md5"]),
            created=document["created"],
            cid=document.get("cid"),
        )


class OpenFile:
    """A file being read: its metadata and its bytes, in GridFS chunks or whole."""

    def __init__(self, file: StoredFile, reader: StoredFileReader) -> None:
        self.file = file
        self._reader = reader

    def chunks(self) -> AsyncGenerator[bytes, None]:
        """The bytes chunk by chunk (about 255 KiB each); closes the file when done."""
        return self._reader.chunks()

    async def read(self) -> bytes:
        """All the bytes at once, then closes the file."""
        return await self._reader.read()

    async def close(self) -> None:
        """Release the read cursor (needed only when the chunks were not read to the end)."""
        await self._reader.close()


def decode_content(content: str | bytes, encoding: str | None) -> bytes:
    """The bytes an upload's `content` stands for.

    With `encoding="base64"` the text is base64 (standard or URL-safe alphabet, whitespace and
    missing padding tolerated); anything else that is not base64 is a 400. Without it, the text
    is stored as its UTF-8 bytes.
    """
    if encoding == "base64":
        text = content.decode("ascii", "replace") if isinstance(content, bytes) else content
        return _decode_base64(text)
    if isinstance(content, bytes):
        return content
    try:
        return content.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate from a JSON "\ud800" escape
        raise _invalid("content", '"content" must be valid Unicode text') from None


def _decode_base64(text: str) -> bytes:
    compact = "".join(text.split()).translate(_BASE64_URLSAFE).rstrip("=")
    if len(compact) % 4 == 1:
        raise _invalid("content", '"content" is not valid base64')
    try:
        return base64.b64decode(compact + "=" * (-len(compact) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise _invalid("content", '"content" is not valid base64') from None


def _invalid(field: str, message: str) -> errors.InputValidationError:
    return errors.InputValidationError(message, details={field: message})


def detect_content_type(filename: str) -> str:
    """The content type a file name suggests (built-in tables), octet-stream when unknown."""
    kind, compression = _MIME.guess_type(filename, strict=False)
    if compression is not None:
        return _COMPRESSION_TYPES.get(compression, DEFAULT_CONTENT_TYPE)
    return kind or DEFAULT_CONTENT_TYPE


def detect_extension(content_type: str) -> str:
    """The usual file name extension of a content type, without the dot; `bin` when unknown."""
    base = content_type.split(";", 1)[0].strip().lower()
    extension = _MIME.guess_extension(base, strict=False)
    return extension.lstrip(".") if extension else "bin"


def default_filename(content_type: str | None, today: datetime | None = None) -> str:
    """WildDuck's name for an upload without one: `upload-YYYY-MM-DD.<ext>` (UTC date)."""
    day = (today or utcnow()).astimezone(UTC).strftime("%Y-%m-%d")
    return f"upload-{day}.{detect_extension(content_type or DEFAULT_CONTENT_TYPE)}"


def escape_regex(text: str) -> str:
    """`text` as a regular expression that matches it literally (MongoDB's PCRE and the
    embedded server's Python `re` agree on these escapes)."""
    return _REGEX_SPECIAL.sub(lambda match: "\\" + match.group(0), text)


def _blank_to_none(value: str | None) -> str | None:
    """WildDuck trims these fields and treats an empty string as "not given"."""
    if value is None:
        return None
    value = value.strip()
    return value or None


class FileService:
    """Upload, list, read and delete a user's storage files."""

    def __init__(self, files: StorageFiles, users: Users, *, max_size: int = MAX_FILE_SIZE) -> None:
        self._files = files
        self._users = users
        self.max_size = min(max_size, MAX_GRIDFS_FILE_SIZE)

    async def _require_user(self, user: str) -> None:
        if not is_id(user) or not await self._users.exists(user):
            raise errors.UserNotFound()

    # ------------------------------------------------------------------------------ upload

    async def upload(
        self,
        user: str,
        content: str | bytes,
        *,
        encoding: str | None = None,
        filename: str | None = None,
        content_type: str | None = None,
        cid: str | None = None,
    ) -> str:
        """Store a new file for `user`; its id.

        400 InputValidationError for content that is not what `encoding` says, 413
        PayloadTooLarge above `max_size`, 404 UserNotFound for an unknown user.
        """
        data = decode_content(content, encoding)
        if len(data) > self.max_size:
            raise self._too_large(len(data))
        filename = _blank_to_none(filename)
        content_type = _blank_to_none(content_type)
        cid = _blank_to_none(cid)
        if filename is None:
            content_type = content_type or DEFAULT_CONTENT_TYPE
            filename = default_filename(content_type)
        elif content_type is None:
            content_type = detect_content_type(filename)

        await self._require_user(user)
        document: Document = {
            "_id": new_id(),
            "user": user,
            "filename": filename,
            "contentType": content_type,
            "size": len(data),
            "md5": hashlib.md5(data, usedforsecurity=False).hexdigest(),
            "created": utcnow(),
        }
        if cid is not None:
            document["cid"] = cid
        try:
            await self._files.store(document, data)
        except FileTooLarge as exc:
            raise self._too_large(exc.size) from None
        return str(document["_id"])

    def _too_large(self, size: int) -> errors.PayloadTooLarge:
        return errors.PayloadTooLarge(
            f"File is {size} bytes, larger than the allowed {self.max_size} bytes",
            details={"limit": self.max_size},
        )

    # ------------------------------------------------------------------------------ list

    async def list(
        self, user: str, paging: PageRequest, *, query: str | None = None
    ) -> tuple[Page, list[StoredFile]]:
        """One page of `user`'s files by file name; `query` matches a part of the file name,
        literally and case-insensitively. 404 UserNotFound for an unknown user."""
        query = _blank_to_none(query)
        if not is_id(user):
            raise errors.UserNotFound()
        result = await self._files.page_of_user(
            user,
            filename_pattern=escape_regex(query) if query else None,
            paging=paging,
        )
        if result.total == 0:
            # only an empty answer needs to know whether the user exists (saves a round trip)
            await self._require_user(user)
        return result, [StoredFile.from_document(document) for document in result.results]

    # ------------------------------------------------------------------------------ read

    async def get(self, user: str, file_id: str) -> StoredFile:
        """The metadata of `user`'s file `file_id`; 404 FileNotFound when the user has none."""
        if not is_id(user) or not is_id(file_id):
            raise errors.FileNotFound()
        document = await self._files.file_of_user(user, file_id)
        if document is None:
            raise errors.FileNotFound()
        return StoredFile.from_document(document)

    async def open(self, user: str, file_id: str) -> OpenFile:
        """`user`'s file `file_id`, opened for reading; 404 FileNotFound when the user has none."""
        stored = await self.get(user, file_id)
        try:
            reader = await self._files.open(stored.id)
        except FileMissing:
            # metadata is written after the file and deleted before it, so this is damage
            log.error("storage file %s of user %s has metadata but no GridFS file", file_id, user)
            raise errors.FileNotFound() from None
        return OpenFile(stored, reader)

    async def read(self, user: str, file_id: str) -> tuple[StoredFile, bytes]:
        """`user`'s file `file_id` and all its bytes (draft attachments)."""
        opened = await self.open(user, file_id)
        return opened.file, await opened.read()

    # ------------------------------------------------------------------------------ delete

    async def delete(self, user: str, file_id: str) -> None:
        """Delete `user`'s file `file_id`; 404 FileNotFound when the user has none."""
        if not is_id(user) or not is_id(file_id):
            raise errors.FileNotFound()
        if not await self._files.remove(file_id, user):
            raise errors.FileNotFound()
