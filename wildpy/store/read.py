"""Reading messages: one by uid or id, a mailbox page, the raw bytes, ranges, attachments,
the IMAP view and the body a detail view shows."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from wildpy import errors
from wildpy.mime.decode import decode_transfer
from wildpy.storage.cursors import encode_cursor
from wildpy.storage.database import Document
from wildpy.storage.pagination import Page, PageRequest, start_of

from . import segments as seg
from .documents import (
    LISTING_PROJECTION,
    MessageBody,
    MessageView,
    render_message_body,
    unpack_view,
)
from .parts import StorePart
from .projections import ATTACHMENT_PROJECTION, BODY_PROJECTION, RAW_PROJECTION
from .records import UidFlags

#: fields of a stored message that are optional: `_resolve` does not ask for them again
_OPTIONAL_FIELDS = frozenset({"segmentsFile", "head"})


class Reader(StorePart):
    async def get(
        self, user_id: str, mailbox_id: str, uid: int, projection: Document | None = None
    ) -> Document:
        """The message at `uid` in the mailbox; MessageGone when it expired or was purged."""
        doc = await self._messages.at_uid(user_id, mailbox_id, uid, projection)
        if doc is None:
            if await self._tombstones.at_uid(user_id, mailbox_id, uid):
                raise errors.MessageGone()
            raise errors.MessageNotFound()
        return doc

    async def get_in_mailbox(
        self, user_id: str, mailbox_id: str, uid: int, projection: Document | None = None
    ) -> Document:
        """`get`, but a missing message in a mailbox the user does not have is NoSuchMailbox:
        the mailbox is looked at only when the message is not found (no extra round trip)."""
        try:
            return await self.get(user_id, mailbox_id, uid, projection)
        except errors.MessageNotFound:
            if not await self._mailboxes.belongs_to(mailbox_id, user_id):
                raise errors.NoSuchMailbox() from None
            raise

    async def source(self, user_id: str, mailbox_id: str, uid: int) -> bytes:
        """The raw message at `uid` (REST message.eml, IMAP BODY[]); NoSuchMailbox,
        MessageNotFound, MessageGone."""
        doc = await self.get_in_mailbox(user_id, mailbox_id, uid, RAW_PROJECTION)
        return await self.get_raw(user_id, doc)

    async def attachment(
        self, user_id: str, mailbox_id: str, uid: int, attachment_id: str
    ) -> tuple[dict[str, Any], bytes]:
        """An attachment of the message at `uid`: its listing info and decoded content."""
        doc = await self.get_in_mailbox(user_id, mailbox_id, uid, ATTACHMENT_PROJECTION)
        return await self.read_attachment(user_id, doc, attachment_id)

    async def changed_since(
        self, user_id: str, mailbox_id: str, modseq: int, *, batch: int = 500
    ) -> list[UidFlags]:
        """uid, modseq and flags of the messages of the mailbox changed after `modseq` (added,
        flagged or moved in), in uid order: what IMAP SELECT (CONDSTORE/QRESYNC) and a client
        catching up need. NoSuchMailbox. Read in bounded batches on the `{mailbox, modseq}`
        index; expunged messages are not here (they are in the journal)."""
        if not await self._mailboxes.belongs_to(mailbox_id, user_id):
            raise errors.NoSuchMailbox()
        out: list[UidFlags] = []
        after = 0
        while rows := await self._messages.changed_since(
            mailbox_id, modseq, after_uid=after, limit=batch
        ):
            out.extend(
                UidFlags(
                    str(row["_id"]), int(row["uid"]), int(row["modseq"]), list(row.get("flags", []))
                )
                for row in rows
            )
            after = int(rows[-1]["uid"])
            if len(rows) < batch:
                break
        return out

    async def get_by_id(
        self, user_id: str, message_id: str, projection: Document | None = None
    ) -> Document:
        doc = await self._messages.of_user_by_id(user_id, message_id, projection)
        if doc is None:
            if await self._tombstones.of_id(user_id, message_id):
                raise errors.MessageGone()
            raise errors.MessageNotFound()
        return doc

    async def list_messages(
        self,
        user_id: str,
        mailbox_id: str,
        *,
        limit: int = 20,
        ascending: bool = False,
        unseen: bool | None = None,
        next_cursor: str | None = None,
        previous_cursor: str | None = None,
        page: int = 1,
    ) -> Page:
        """One page of a mailbox, by uid (newest first by default), with listing fields.

        Two indexed queries side by side: the page itself and the mailbox document, whose
        exact counters give the total (counting a large mailbox would cost time in proportion
        to its size).
        """
        start, backwards = start_of(PageRequest(limit, next_cursor, previous_cursor, page))
        bound = None if start is None else _uid_of(start.value)
        forward = ascending != backwards
        mailbox, rows = await asyncio.gather(
            self._mailboxes.counters(mailbox_id, user_id),
            self._messages.page_by_uid(
                user_id,
                mailbox_id,
                unseen=unseen,
                beyond=bound,
                ascending=forward,
                limit=limit + 1,
                projection=LISTING_PROJECTION,
            ),
        )
        if mailbox is None:
            raise errors.NoSuchMailbox()
        total = int(mailbox.get("total", 0))
        if unseen is True:
            total = int(mailbox.get("unseen", 0))
        elif unseen is False:
            total -= int(mailbox.get("unseen", 0))
        more = len(rows) > limit
        rows = rows[:limit]
        if backwards:
            rows.reverse()
        if not rows:
            return Page([], total, 1, False, False)
        has_next = more or backwards
        has_previous = bound is not None and (not backwards or more)
        return Page(
            results=rows,
            total=total,
            page=page if has_previous else 1,
            next_cursor=encode_cursor(rows[-1]["uid"], rows[-1]["_id"]) if has_next else False,
            previous_cursor=encode_cursor(rows[0]["uid"], rows[0]["_id"])
            if has_previous
            else False,
        )

    async def get_raw(self, user_id: str, message: Document | str) -> bytes:
        """The message exactly as it was added (`message.eml`, IMAP BODY[])."""
        doc = await self._resolve(user_id, message, RAW_PROJECTION)
        return await self.read_range(doc, 0, int(doc["size"]))

    async def read_range(self, doc: Document, start: int, end: int) -> bytes:
        """Bytes [start, end) of a stored message (a message or archived document with the
        RAW_FIELDS: `segments`, `segmentsFile`, `head`, `text`), fetching only the files those
        bytes are in."""
        return await self._assemble(doc, start, end, attachments=True)

    async def _assemble(self, doc: Document, start: int, end: int, *, attachments: bool) -> bytes:
        """`read_range`; with `attachments` False the bodies of the attachments stored apart
        are left out (nothing is read from the `attachments` bucket)."""
        segments: list[seg.Segment] = doc["segments"]
        spans = seg.locate(segments, start, end)
        needs_body = any("body" in segments[span.index] for span in spans)
        files = sorted(
            {str(segments[s.index]["file"]) for s in spans if "att" in segments[s.index]}
            if attachments
            else ()
        )
        loads: list[Awaitable[bytes]] = [self._attachments.read(file) for file in files]
        if needs_body:
            loads.append(self._bodies.download(str(doc["segmentsFile"])))
        loaded = await asyncio.gather(*loads)
        contents = dict(zip(files, loaded, strict=False))
        body = loaded[-1] if needs_body else b""
        offsets = seg.body_offsets(segments) if needs_body else {}
        out = bytearray()
        for span in spans:
            segment = segments[span.index]
            low, high = span.offset, span.offset + span.length
            if seg.is_inline(segment):
                out += seg.inline_bytes(segment, doc)[low:high]
            elif "body" in segment:
                base = offsets[span.index]
                out += body[base + low : base + high]
            elif attachments:
                out += contents[str(segment["file"])][low:high]
        return bytes(out)

    async def read_attachment(
        self, user_id: str, message: Document | str, attachment_id: str
    ) -> tuple[dict[str, Any], bytes]:
        """An attachment's listing info and its decoded content; AttachmentNotFound."""
        doc = await self._resolve(user_id, message, ATTACHMENT_PROJECTION)
        wanted = attachment_id.upper()
        for info in doc.get("attachments", []):
            if str(info.get("id", "")).upper() == wanted:
                encoded = await self.read_range(doc, int(info["start"]), int(info["end"]))
                return dict(info), decode_transfer(encoded, str(info["transferEncoding"]))
        raise errors.AttachmentNotFound()

    async def view(self, user_id: str, message: Document | str) -> MessageView:
        """The message's MIME tree and IMAP ENVELOPE/BODYSTRUCTURE/BODY."""
        doc = await self._resolve(user_id, message, {"user": 1, "view": 1})
        return unpack_view(doc["view"])

    async def body(self, user_id: str, message: Document | str) -> MessageBody:
        """The text and sanitised HTML a detail view shows, rendered from the raw message
        (nothing of it is stored twice): exactly what `parse_message` makes of the message.

        Reads the document's own bytes (and its body file, for a big one), never the
        attachments stored apart: they are not needed (`render_body`), and are not even
        stood in for (the stored tree is moved onto the bytes without them). Sanitising is a
        few MB/s, so a message costs about what parsing it did when it was added.
        """
        doc = await self._resolve(user_id, message, BODY_PROJECTION)
        own = await self._assemble(doc, 0, int(doc["size"]), attachments=False)
        view = unpack_view(doc["view"])
        cut_out = seg.attachment_ranges(doc["segments"])
        if len(own) >= self.settings.thread_parse:
            return await asyncio.to_thread(render_message_body, own, view, cut_out)
        return render_message_body(own, view, cut_out)

    async def _resolve(self, user_id: str, message: Document | str, fields: Document) -> Document:
        if isinstance(message, dict):
            # `segmentsFile` and `head` are optional: only some messages have one
            needed = (key for key in fields if key not in _OPTIONAL_FIELDS)
            if message.get("user") == user_id and all(key in message for key in needed):
                return message
            message = str(message["_id"])
        return await self.get_by_id(user_id, message, fields)


def _uid_flags(row: Document) -> UidFlags:
    return UidFlags(
        str(row["_id"]), int(row["uid"]), int(row["modseq"]), list(row.get("flags", []))
    )


def _uid_of(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return int(value)
    raise errors.InputValidationError("Invalid cursor", details={"next": "Invalid cursor"})
