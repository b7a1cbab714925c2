"""The message store: every door (REST, SMTP/LMTP, IMAP, POP3) adds and changes mail through here.

Consistency without transactions (storage.md), in three rules:

- Counters move only with `$inc`: the mailbox's uidNext/modifyIndex/total/unseen/size in the
  same `find_one_and_update` that hands out a uid, the owner's `storageUsed` when a message is
  added or released. Nothing ever writes a recount over them.
- A change to a message is conditional on the state it was computed from (`{_id, mailbox, uid,
  modseq}`): of two concurrent deleters, movers or flaggers exactly one wins; the others re-read
  or report MessageNotFound. So every counter adjustment is applied once, by the winner.
- An add that fails midway runs the undo steps of what it did (quota, attachment references,
  files, counters, thread, message) in reverse and raises StoreError: nothing half-stored.
- Concurrent adds share their writes (group commit, group_commit.py) but not their fates: each
  learns its own item's outcome and undoes only what was its own.

See docs/mail-store.md for the collections and the segments format.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from wildpy import errors
from wildpy.mime import ParsedMessage, parse_message, thread_headers
from wildpy.mime.decode import decode_transfer
from wildpy.storage.accounts import Users
from wildpy.storage.blobs import Acquired, AttachmentStore, Bucket
from wildpy.storage.database import AlreadyExists, Document, new_id
from wildpy.storage.mailboxes import Mailboxes
from wildpy.storage.messages import Archived, Messages, Tombstones
from wildpy.storage.pagination import Page, decode_cursor, encode_cursor

from . import segments as seg
from .group_commit import GroupCommit, InOrder
from .journal import JournalService
from .limits import allowed
from .message_docs import (
    LISTING_PROJECTION,
    RAW_FIELDS,
    RELEASE_PROJECTION,
    MessageBody,
    MessageView,
    Placement,
    build_document,
    flag_fields,
    normalize_flags,
    render_message_body,
    search_text,
    unpack_view,
)
from .releases import Releaser
from .threads import ThreadChoice, ThreadService
from .undo import Shield, Step, Undo, gather_undoable

log = logging.getLogger("wildpy.messages")

T = TypeVar("T")

MIB = 1024 * 1024
#: how often a conditional change that lost a race is retried before giving up
MAX_ATTEMPTS = 20
#: most messages one insert carries. The insert is the heaviest write of an add (the embedded
#: server spends ~0.3 ms on a 6 KB document); small groups keep the server inserting one group
#: while this process parses the next messages, where big ones make both sides take turns
#: (16 concurrent adds: 4 -> ~670 adds/s, 8 -> ~640, 2 -> ~550, unbounded -> ~570)
INSERT_GROUP = 4
#: ... and at most about this many bytes of messages
INSERT_GROUP_BYTES = 4 * MIB

_RAW_PROJECTION: Document = dict.fromkeys(RAW_FIELDS, 1)
_ATTACHMENT_PROJECTION: Document = {**_RAW_PROJECTION, "attachments": 1}
_BODY_PROJECTION: Document = {**_RAW_PROJECTION, "view": 1}
#: fields of a stored message that are optional: `_resolve` does not ask for them again
_OPTIONAL_FIELDS = frozenset({"segmentsFile", "head"})


@dataclass(frozen=True)
class StoreSettings:
    #: largest message accepted, in bytes (PayloadTooLarge above)
    max_size: int = 25 * MIB
    #: attachments whose encoded body is at least this big are stored once and shared
    min_attachment: int = 16 * 1024
    #: raw pieces above this total go to a `bodies` file instead of the message document
    inline_body_limit: int = MIB
    #: how long a deleted message stays restorable in `archived`
    archive_time: timedelta = timedelta(days=30)
    #: how long an expired or purged message answers MessageGone (410)
    tombstone_time: timedelta = timedelta(days=30)
    #: thread keys unused this long are forgotten
    thread_time: timedelta = timedelta(days=180)
    #: messages at least this big are parsed in a worker thread, off the event loop
    thread_parse: int = 256 * 1024


@dataclass(frozen=True)
class Slot:
    """Where an add goes in its mailbox: uid, modseq and the mailbox's retention (ms)."""

    uid: int
    modseq: int
    retention: int


@dataclass(frozen=True)
class AddedMessage:
    id: str
    uid: int
    modseq: int
    mailbox: str
    size: int
    thread: str


@dataclass(frozen=True)
class FlagChange:
    id: str
    uid: int
    modseq: int
    flags: list[str]
    #: False when the flags already were as asked (nothing written)
    changed: bool


@dataclass(frozen=True)
class MovedMessage:
    id: str
    source: str
    source_uid: int
    mailbox: str
    uid: int
    modseq: int


@dataclass(frozen=True)
class DeletedMessage:
    id: str
    mailbox: str
    uid: int
    modseq: int
    archived: bool


def epoch_ms(when: datetime) -> int:
    """Expiry times (`rdate`) are epoch milliseconds, as WildDuck stores them."""
    return int(when.timestamp() * 1000)


def utcnow() -> datetime:
    # BSON dates hold milliseconds: truncate so that what we return equals what is stored
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def _document_weight(document: Document) -> int:
    # the raw size bounds the inline segments, which dominate a message document
    return int(document.get("size", 0))


async def _nothing() -> None:
    return None


#: the placement a document is built with before its uid is known (`_place` fills it in)
_PROVISIONAL = Slot(uid=0, modseq=0, retention=0)


def _place(document: Document, slot: Slot, thread: str, now: datetime) -> None:
    """Fill in what `build_document` took from `_PROVISIONAL`: uid, modseq, thread, expiry."""
    document.update(uid=slot.uid, modseq=slot.modseq, thread=thread, exp=bool(slot.retention))
    if slot.retention:
        document["rdate"] = epoch_ms(now) + slot.retention


# errors that reject an add for what it is, not because storage failed: passed on unchanged
_REJECTIONS = (errors.OverQuotaError, errors.NoSuchMailbox, errors.UserNotFound)


class MessageService:
    def __init__(
        self,
        *,
        users: Users,
        mailboxes: Mailboxes,
        messages: Messages,
        archived: Archived,
        tombstones: Tombstones,
        threads: ThreadService,
        attachments: AttachmentStore,
        bodies: Bucket,
        journal: JournalService,
        settings: StoreSettings | None = None,
    ) -> None:
        self._users = users
        self._mailboxes = mailboxes
        self._messages = messages
        self._archived = archived
        self._tombstones = tombstones
        self._threads = threads
        self._attachments = attachments
        self._bodies = bodies
        self._journal = journal
        self.settings = settings or StoreSettings()
        self._shield = Shield()
        # group commit of the writes concurrent adds share (group_commit.py)
        self._inserts: GroupCommit[None, Document, None] = GroupCommit(
            self._insert,
            max_items=INSERT_GROUP,
            max_weight=INSERT_GROUP_BYTES,
            weigh=_document_weight,
        )
        self._allocations: GroupCommit[tuple[str, str], tuple[int, bool], Slot] = GroupCommit(
            self._allocate
        )
        self._reservations: GroupCommit[str, int, None] = GroupCommit(self._reserve_quota)
        #: EXISTS events of one mailbox go to the journal in uid order
        self._order = InOrder()
        self._releases = Releaser(
            users=users,
            mailboxes=mailboxes,
            messages=messages,
            archived=archived,
            tombstones=tombstones,
            attachments=attachments,
            bodies=bodies,
            journal=journal,
            tombstone_time=self.settings.tombstone_time,
        )

    # ------------------------------------------------------------------------------ adding

    async def add_message(
        self,
        user_id: str,
        mailbox_id: str,
        raw: bytes,
        *,
        flags: Sequence[str] = (),
        idate: datetime | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> AddedMessage:
        """Store `raw` in the mailbox: the one path every door uses.

        EmptyMessage, PayloadTooLarge (over `settings.max_size`), UserNotFound, NoSuchMailbox
        and OverQuotaError reject the message before anything is kept (a rejected add may
        have used up a uid: IMAP allows gaps). Any storage failure after that is undone and
        raised as StoreError. Returns once the message and its journal event are stored.
        """
        raw = bytes(raw)
        if not raw.strip():
            raise errors.EmptyMessage()
        if len(raw) > self.settings.max_size:
            raise errors.PayloadTooLarge(
                "Message is larger than allowed",
                details={"allowed": self.settings.max_size, "size": len(raw)},
            )
        flag_list = normalize_flags(flags)
        return await self._shield.run(self._add(user_id, mailbox_id, raw, flag_list, idate, meta))

    async def settle(self) -> None:
        """Wait for changes still running after their callers went away (before shutdown)."""
        await self._shield.settle()

    async def _add(
        self,
        user_id: str,
        mailbox_id: str,
        raw: bytes,
        flags: list[str],
        idate: datetime | None,
        meta: Mapping[str, Any] | None,
    ) -> AddedMessage:
        undo = Undo()
        try:
            return await self._store(undo, user_id, mailbox_id, raw, flags, idate, meta)
        except _REJECTIONS:
            await undo.run()
            raise
        except BaseException as exc:
            await undo.run()
            if not isinstance(exc, Exception):
                raise
            log.error("storing a message failed: %s", exc, exc_info=True)
            raise errors.StoreError() from exc

    async def _parse(self, raw: bytes) -> ParsedMessage:
        # no HTML: sanitising is the costliest part of a parse, and the detail view renders
        # it from the raw message when a message is shown (`body`)
        if len(raw) >= self.settings.thread_parse:
            return await asyncio.to_thread(parse_message, raw, html=False)
        return parse_message(raw, html=False)

    async def _store(
        self,
        undo: Undo,
        user_id: str,
        mailbox_id: str,
        raw: bytes,
        flags: list[str],
        idate: datetime | None,
        meta: Mapping[str, Any] | None,
    ) -> AddedMessage:
        """The steps of an add; each one that changed something leaves its undo in `undo`.

        Round trips are what an add costs (docs/mail-store.md), so independent steps run side
        by side and the writes many adds share (message inserts, journal events, the counters
        of one mailbox, the quota of one user) go out in groups (group_commit.py):

        1. the quota reservation, the uid/modseq/counters of the mailbox and the thread (one
           bulk write for a message that is no reply) side by side, while the message is
           parsed and its document built (CPU work overlapping the round trips);
        2. the message insert (a reply's thread keys alongside);
        3. the journal event, in uid order per mailbox, stored before the add returns.

        A message that may have attachments to store once in GridFS (16 KiB and more) or a
        body file reserves quota and resolves its thread while it parses, uploads, and only
        then takes its uid, so that a uid handed out stays invisible for one round trip, not
        for a whole upload. A rejected add may have used up a uid (a gap, as IMAP allows).
        """
        size = len(raw)
        now = utcnow()
        message_id = new_id()
        unseen = "\\seen" not in {flag.lower() for flag in flags}
        # too small for an attachment to store apart or a body file: nothing to upload first
        early = size < self.settings.min_attachment and size <= self.settings.inline_body_limit
        # submitted before the parse, so that their commands are on the wire while the CPU
        # parses (the GIL allows no more overlap than that)
        steps: list[Step] = [
            (
                "quota",
                self._reservations.submit(user_id, size),
                lambda _: self._adjust_quota(user_id, -size),
            )
        ]
        if early:
            steps.append(self._allocation_step(user_id, mailbox_id, size, unseen))

        def document_for(
            parsed: ParsedMessage,
            slot: Slot,
            thread: str,
            segments: list[seg.Segment],
            head: bytes | None,
            segments_file: str | None = None,
            attachment_digests: Sequence[str] = (),
        ) -> Document:
            placement = Placement(
                id=message_id,
                user=user_id,
                mailbox=mailbox_id,
                uid=slot.uid,
                modseq=slot.modseq,
                thread=thread,
                idate=idate or now,
                created=now,
                rdate=epoch_ms(now) + slot.retention if slot.retention else None,
            )
            return build_document(
                parsed,
                placement,
                flags,
                segments,
                segments_file=segments_file,
                attachment_digests=attachment_digests,
                meta=meta,
                head=head,
            )

        # the thread step needs only the top header block: it goes out before the parse too
        steps.append(
            (
                "thread",
                self._threads.resolve(user_id, thread_headers(raw)),
                lambda choice: self._threads.discard(choice) if choice.written else _nothing(),
            )
        )

        async def prepare() -> tuple[ParsedMessage, Document | None]:
            """Parse and (small message) build the document while the commands travel; the
            uid, modseq and thread are filled in when they are known (`_place`)."""
            parsed = await self._parse(raw)
            if not early:
                return parsed, None
            pieces = self._cut(parsed)
            segments = seg.build(raw, pieces, {}, inline=True, text=search_text(parsed))
            head = seg.pack_head(raw, pieces)
            return parsed, document_for(parsed, _PROVISIONAL, "", segments, head)

        # a task created after the steps above: their commands are on the wire before the CPU
        # work starts
        steps.append(("parse", prepare(), None))
        results = await gather_undoable(undo, steps, _REJECTIONS)
        choice = results[-2]
        parsed, document = results[-1]
        assert isinstance(parsed, ParsedMessage) and isinstance(choice, ThreadChoice)

        if early:
            slot = results[1]
            assert isinstance(slot, Slot) and document is not None
            _place(document, slot, choice.id, now)
        else:
            # attachment bodies and the body file (only a message of 16 KiB or more has any)
            pieces = self._cut(parsed)
            cut_out = {piece.digest: piece for piece in pieces if piece.digest is not None}
            inline = seg.raw_size_of(pieces) <= self.settings.inline_body_limit
            view = memoryview(raw)
            uploads: list[Step] = [
                (
                    f"attachment {digest}",
                    self._attachments.acquire(digest, view[piece.start : piece.end]),
                    lambda acquired: self._attachments.release(acquired.hash),
                )
                for digest, piece in cut_out.items()
            ]
            body_file: str | None = None
            if not inline:
                body_file = file_id = new_id()
                uploads.append(
                    (
                        "body file",
                        self._bodies.upload(
                            file_id,
                            seg.body_of(raw, pieces),
                            filename=message_id,
                            metadata={"message": message_id},
                        ),
                        lambda _: self._bodies.delete(file_id),
                    )
                )
            done = await gather_undoable(undo, uploads, _REJECTIONS) if uploads else []
            files = {item.hash: item.file for item in done if isinstance(item, Acquired)}
            [slot] = await gather_undoable(
                undo, [self._allocation_step(user_id, mailbox_id, size, unseen)]
            )
            assert isinstance(slot, Slot)
            document = document_for(
                parsed,
                slot,
                choice.id,
                seg.build(raw, pieces, files, inline=inline, text=search_text(parsed)),
                seg.pack_head(raw, pieces),
                segments_file=body_file,
                attachment_digests=sorted(cut_out),
            )

        # 2. the message (group commit) and a reply's thread keys
        writes: list[Step] = [
            (
                "message",
                self._inserts.submit(None, document),
                lambda _: self._messages.delete_one({"_id": message_id}),
            )
        ]
        if not choice.written:
            writes.append(
                (
                    "thread keys",
                    self._threads.record(user_id, choice),
                    lambda _: self._threads.discard(choice),
                )
            )
        await gather_undoable(undo, writes)

        # 3. tell the listeners: after the events of lower uids of this mailbox (this process)
        await self._order.turn(mailbox_id, slot.uid)
        _, written = self._journal.enqueue(
            user_id,
            [
                {
                    "mailbox": mailbox_id,
                    "command": "EXISTS",
                    "uid": slot.uid,
                    "message": message_id,
                    "modseq": slot.modseq,
                    "flags": flags,
                    "unseen": unseen,
                    "idate": idate or now,
                    "thread": choice.id,
                }
            ],
        )
        self._order.release(mailbox_id, slot.uid)
        await written
        return AddedMessage(
            id=message_id,
            uid=slot.uid,
            modseq=slot.modseq,
            mailbox=mailbox_id,
            size=size,
            thread=choice.id,
        )

    def _cut(self, parsed: ParsedMessage) -> list[seg.Piece]:
        """The stored pieces: the header block apart (`head`), attachments cut out."""
        return seg.cut(
            parsed.size,
            parsed.attachments,
            self.settings.min_attachment,
            head_end=parsed.root.header_end,
        )

    def _allocation_step(self, user_id: str, mailbox_id: str, size: int, unseen: bool) -> Step:
        """The uid/modseq/counters step and its undo: the counters go back, the uid stays used
        (a gap, as IMAP allows) and its turn in the journal order is given up."""

        async def give_back(slot: Slot) -> None:
            self._order.release(mailbox_id, slot.uid)
            await self._mailboxes.update_one(
                {"_id": mailbox_id},
                {"$inc": {"total": -1, "unseen": -int(unseen), "size": -size}},
            )

        return (
            "mailbox counters",
            self._allocations.submit((user_id, mailbox_id), (size, unseen)),
            give_back,
        )

    async def _allocate(
        self, key: tuple[str, str], items: list[tuple[int, bool]]
    ) -> list[Slot | BaseException]:
        """uids, modseqs and counters for a group of adds to one mailbox, in one round trip.

        `$inc` by the group's totals, the document as it was before: the group's uids are
        `uidNext`, `uidNext + 1`, ... and its modseqs `modifyIndex + 1`, ... in order. Each
        uid is held in the journal order (`_order`) until its event is queued or it is given
        up, so EXISTS events of this process come in uid order.
        """
        user_id, mailbox_id = key
        count = len(items)
        before = await self._mailboxes.find_one_and_update(
            {"_id": mailbox_id, "user": user_id},
            {
                "$inc": {
                    "uidNext": count,
                    "modifyIndex": count,
                    "total": count,
                    "unseen": sum(int(unseen) for _, unseen in items),
                    "size": sum(size for size, _ in items),
                }
            },
            projection={"uidNext": 1, "modifyIndex": 1, "retention": 1},
            return_new=False,
        )
        if before is None:
            return [errors.NoSuchMailbox() for _ in items]
        uid, modseq = int(before["uidNext"]), int(before.get("modifyIndex", 0)) + 1
        retention = int(before.get("retention") or 0)
        for index in range(count):
            self._order.hold(mailbox_id, uid + index)
        return [Slot(uid + index, modseq + index, retention) for index in range(count)]

    async def _insert(self, _: None, documents: list[Document]) -> list[Exception | None]:
        """The messages of a group of adds, in one insert; each stored or failed on its own."""
        return await self._messages.insert_each(documents)

    async def _reserve_quota(self, user_id: str, sizes: list[int]) -> list[BaseException | None]:
        """Reserve the quota of a group of adds of one user in one round trip.

        Optimistic: `$inc` by the group's total first, then compare with the quota as if the
        adds had come one by one in order: an add fits when the usage before the group, plus
        the adds of the group accepted before it, plus its own size stay within the quota.
        Those that do not fit have their bytes taken back out (one more round trip) and get
        OverQuotaError. Concurrent reservations see each other's bytes, so the quota is never
        exceeded; near the limit one may be refused while a refused one still briefly counts
        (OverQuotaError is retryable). A conditional `$inc` would need the quota first
        (another round trip), and `$expr` filters are wrong on the embedded server (they
        match other documents).
        """
        total = sum(sizes)
        user = await self._users.find_one_and_update(
            {"_id": user_id},
            {"$inc": {"storageUsed": total}},
            projection={"storageUsed": 1, "quota": 1},
        )
        if user is None:
            return [errors.UserNotFound() for _ in sizes]
        quota = allowed(user, "quota")
        used = int(user.get("storageUsed", 0)) - total
        outcomes: list[BaseException | None] = []
        refused = 0
        for size in sizes:
            if used + size > quota:
                outcomes.append(errors.OverQuotaError(details={"allowed": quota, "used": used}))
                refused += size
            else:
                used += size
                outcomes.append(None)
        if refused:
            try:
                await self._adjust_quota(user_id, -refused)
            except Exception as exc:  # those bytes stay counted: the refused adds say so
                outcomes = [exc if outcome is not None else None for outcome in outcomes]
        return outcomes

    async def _adjust_quota(self, user_id: str, delta: int) -> None:
        if delta:
            await self._users.update_one({"_id": user_id}, {"$inc": {"storageUsed": delta}})

    # ------------------------------------------------------------------------------ reading

    async def get(
        self, user_id: str, mailbox_id: str, uid: int, projection: Document | None = None
    ) -> Document:
        """The message at `uid` in the mailbox; MessageGone when it expired or was purged."""
        doc = await self._messages.find_one(
            {"mailbox": mailbox_id, "uid": uid, "user": user_id}, projection
        )
        if doc is None:
            await self._raise_missing({"mailbox": mailbox_id, "uid": uid, "user": user_id})
        assert doc is not None
        return doc

    async def get_by_id(
        self, user_id: str, message_id: str, projection: Document | None = None
    ) -> Document:
        doc = await self._messages.find_one({"_id": message_id, "user": user_id}, projection)
        if doc is None:
            await self._raise_missing({"_id": message_id, "user": user_id})
        assert doc is not None
        return doc

    async def _raise_missing(self, query: Document) -> None:
        if await self._tombstones.find_one(query, {"_id": 1}) is not None:
            raise errors.MessageGone()
        raise errors.MessageNotFound()

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
        backwards = False
        bound: int | None = None
        if next_cursor:
            bound = _uid_of(decode_cursor(next_cursor, "next").value)
        elif previous_cursor and page > 1:
            bound = _uid_of(decode_cursor(previous_cursor, "previous").value)
            backwards = True
        forward = ascending != backwards
        query: Document = {"mailbox": mailbox_id, "user": user_id}
        if unseen is not None:
            query["unseen"] = unseen
        if bound is not None:
            query["uid"] = {"$gt" if forward else "$lt": bound}
        mailbox, rows = await asyncio.gather(
            self._mailboxes.find_one(
                {"_id": mailbox_id, "user": user_id}, {"total": 1, "unseen": 1}
            ),
            self._messages.find(
                query, LISTING_PROJECTION, sort=[("uid", 1 if forward else -1)], limit=limit + 1
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
        doc = await self._resolve(user_id, message, _RAW_PROJECTION)
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
        doc = await self._resolve(user_id, message, _ATTACHMENT_PROJECTION)
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
        doc = await self._resolve(user_id, message, _BODY_PROJECTION)
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

    # ------------------------------------------------------------------------------ changing

    async def update_flags(
        self,
        user_id: str,
        mailbox_id: str,
        uid: int,
        *,
        add: Iterable[str] = (),
        remove: Iterable[str] = (),
        replace: Iterable[str] | None = None,
    ) -> FlagChange:
        """Set (`replace`), add or remove flags; a new modseq when anything changed."""
        return await self._shield.run(
            self._update_flags(user_id, mailbox_id, uid, add, remove, replace)
        )

    async def _update_flags(
        self,
        user_id: str,
        mailbox_id: str,
        uid: int,
        add: Iterable[str],
        remove: Iterable[str],
        replace: Iterable[str] | None,
    ) -> FlagChange:
        added, removed = normalize_flags(add), {f.lower() for f in normalize_flags(remove)}
        replacement = normalize_flags(replace) if replace is not None else None
        for _ in range(MAX_ATTEMPTS):
            doc = await self.get(user_id, mailbox_id, uid, {"flags": 1, "modseq": 1, "unseen": 1})
            old = list(doc.get("flags", []))
            new = list(replacement) if replacement is not None else old
            new = normalize_flags([*(f for f in new if f.lower() not in removed), *added])
            if {f.lower() for f in new} == {f.lower() for f in old}:
                return FlagChange(doc["_id"], uid, int(doc["modseq"]), old, changed=False)
            fields = flag_fields(new)
            delta = int(fields["unseen"]) - int(bool(doc.get("unseen")))
            mailbox = await self._mailboxes.find_one_and_update(
                {"_id": mailbox_id, "user": user_id},
                {"$inc": {"modifyIndex": 1, "unseen": delta}},
                projection={"modifyIndex": 1},
            )
            if mailbox is None:
                raise errors.NoSuchMailbox()
            modseq = int(mailbox["modifyIndex"])
            changed = await self._messages.update_one(
                {"_id": doc["_id"], "mailbox": mailbox_id, "uid": uid, "modseq": doc["modseq"]},
                {"$set": {**fields, "modseq": modseq}},
            )
            if changed:
                await self._journal.record(
                    user_id,
                    mailbox_id,
                    "FETCH",
                    uid=uid,
                    message=doc["_id"],
                    modseq=modseq,
                    flags=new,
                    unseen=fields["unseen"],
                )
                return FlagChange(doc["_id"], uid, modseq, new, changed=True)
            # changed by someone else since we read it: give the unseen delta back, read again
            if delta:
                await self._mailboxes.update_one({"_id": mailbox_id}, {"$inc": {"unseen": -delta}})
        raise errors.StoreError("Message is changing too fast, try again")

    async def move(self, user_id: str, mailbox_id: str, uid: int, target_id: str) -> MovedMessage:
        """Move a message to another mailbox under a new uid (IMAP MOVE, REST moveTo)."""
        return await self._shield.run(self._move(user_id, mailbox_id, uid, target_id))

    async def _move(self, user_id: str, mailbox_id: str, uid: int, target_id: str) -> MovedMessage:
        for _ in range(MAX_ATTEMPTS):
            doc = await self.get(
                user_id, mailbox_id, uid, {"modseq": 1, "size": 1, "unseen": 1, "flags": 1}
            )
            size, unseen = int(doc["size"]), int(bool(doc.get("unseen")))
            target = await self._mailboxes.find_one_and_update(
                {"_id": target_id, "user": user_id},
                {
                    "$inc": {
                        "uidNext": 1,
                        "modifyIndex": 1,
                        "total": 1,
                        "unseen": unseen,
                        "size": size,
                    }
                },
                projection={"uidNext": 1, "modifyIndex": 1, "retention": 1},
                return_new=False,
            )
            if target is None:
                raise errors.NoSuchMailbox()
            new_uid, new_modseq = int(target["uidNext"]), int(target.get("modifyIndex", 0)) + 1
            retention = int(target.get("retention") or 0)
            update: Document = {
                "$set": {
                    "mailbox": target_id,
                    "uid": new_uid,
                    "modseq": new_modseq,
                    "exp": bool(retention),
                }
            }
            if retention:
                update["$set"]["rdate"] = epoch_ms(utcnow()) + retention
            else:
                update["$unset"] = {"rdate": ""}
            moved = await self._messages.update_one(
                {"_id": doc["_id"], "mailbox": mailbox_id, "uid": uid, "modseq": doc["modseq"]},
                update,
            )
            if not moved:
                await self._mailboxes.update_one(
                    {"_id": target_id},
                    {"$inc": {"total": -1, "unseen": -unseen, "size": -size}},
                )
                continue
            source = await self._mailboxes.find_one_and_update(
                {"_id": mailbox_id},
                {"$inc": {"total": -1, "unseen": -unseen, "size": -size, "modifyIndex": 1}},
                projection={"modifyIndex": 1},
            )
            await self._journal.record_many(
                user_id,
                [
                    {
                        "mailbox": mailbox_id,
                        "command": "EXPUNGE",
                        "uid": uid,
                        "message": doc["_id"],
                        "modseq": int(source["modifyIndex"]) if source else None,
                    },
                    {
                        "mailbox": target_id,
                        "command": "EXISTS",
                        "uid": new_uid,
                        "message": doc["_id"],
                        "modseq": new_modseq,
                        "flags": doc.get("flags", []),
                        "unseen": bool(unseen),
                    },
                ],
            )
            return MovedMessage(doc["_id"], mailbox_id, uid, target_id, new_uid, new_modseq)
        raise errors.StoreError("Message is changing too fast, try again")

    # ------------------------------------------------------------------------------ deleting

    async def delete(
        self, user_id: str, mailbox_id: str, uid: int, *, archive: bool = True
    ) -> DeletedMessage:
        """Delete a message; its quota is released at once.

        Unless `archive` is False (skipArchive) or the message is a draft, a copy stays in
        `archived` for `settings.archive_time`, holding its attachments until purged.
        """
        return await self._shield.run(self._delete(user_id, mailbox_id, uid, archive))

    async def _delete(
        self, user_id: str, mailbox_id: str, uid: int, archive: bool
    ) -> DeletedMessage:
        for attempt in range(MAX_ATTEMPTS):
            doc = await self.get(user_id, mailbox_id, uid)
            keep = archive and not doc.get("draft")
            now = utcnow()
            if keep:
                copy = {
                    **doc,
                    "archived": now,
                    "exp": True,
                    "rdate": epoch_ms(now + self.settings.archive_time),
                }
                try:
                    await self._archived.insert(copy)
                except AlreadyExists:
                    # a concurrent deleter is archiving it: give it a moment, then re-read
                    await asyncio.sleep(0.002 * (attempt + 1))
                    continue
            removed = await self._messages.delete_one(
                {"_id": doc["_id"], "mailbox": mailbox_id, "uid": uid, "modseq": doc["modseq"]}
            )
            if not removed:
                if keep:
                    await self._archived.delete_one({"_id": doc["_id"], "archived": now})
                continue
            modseqs = await self._releases.drop_from_mailboxes([doc])
            await asyncio.gather(
                self._releases.release_quota([doc]),
                self._journal.record(
                    user_id,
                    mailbox_id,
                    "EXPUNGE",
                    uid=uid,
                    message=doc["_id"],
                    modseq=modseqs.get(mailbox_id),
                ),
            )
            if not keep:
                await self._releases.release_content([doc])
            return DeletedMessage(doc["_id"], mailbox_id, uid, modseqs.get(mailbox_id, 0), keep)
        raise errors.StoreError("Message is changing too fast, try again")

    async def delete_mailbox_messages(self, user_id: str, mailbox_id: str, batch: int = 500) -> int:
        """Remove every message of a mailbox (mailbox deletion): quota, attachments and files
        are released, nothing is archived. Safe to repeat; the number removed."""
        return await self._shield.run(self._delete_mailbox_messages(user_id, mailbox_id, batch))

    async def _delete_mailbox_messages(self, user_id: str, mailbox_id: str, batch: int) -> int:
        removed = 0
        while True:
            rows = await self._messages.find(
                {"mailbox": mailbox_id, "user": user_id},
                RELEASE_PROJECTION,
                sort=[("uid", 1)],
                limit=batch,
            )
            if not rows:
                return removed
            removed += await self._releases.remove_batch(rows, reason=None, now=utcnow())

    # ------------------------------------------------------------------------------ retention

    async def expire_due(self, now: datetime | None = None, batch: int = 500) -> int:
        """Remove one batch of messages whose mailbox retention ran out, leaving tombstones."""
        when = now or utcnow()
        rows = await self._messages.expired(epoch_ms(when), batch, RELEASE_PROJECTION)
        return await self._releases.remove_batch(rows, reason="expired", now=when) if rows else 0

    async def purge_archived(self, now: datetime | None = None, batch: int = 500) -> int:
        """Drop one batch of archived messages past their grace period, leaving tombstones."""
        when = now or utcnow()
        rows = await self._archived.due(epoch_ms(when), batch, RELEASE_PROJECTION)
        return await self._releases.purge(rows, when, tombstones=True)

    async def delete_user_messages(self, user_id: str, batch: int = 500) -> int:
        """Remove all of a user's messages and archived copies, releasing their attachments
        and files (for the final purge of a deleted account). The number removed."""
        return await self._shield.run(self._delete_user_messages(user_id, batch))

    async def _delete_user_messages(self, user_id: str, batch: int) -> int:
        removed = 0
        while rows := await self._messages.find({"user": user_id}, RELEASE_PROJECTION, limit=batch):
            removed += await self._releases.remove_batch(rows, reason=None, now=utcnow())
        while rows := await self._archived.find({"user": user_id}, RELEASE_PROJECTION, limit=batch):
            removed += await self._releases.purge(rows, utcnow(), tombstones=False)
        return removed

    async def drop_tombstones(self, now: datetime | None = None) -> int:
        return await self._tombstones.delete_many({"expires": {"$lte": now or utcnow()}})

    async def drop_stale_threads(self, now: datetime | None = None) -> int:
        """Forget thread keys unused for `settings.thread_time` (WildDuck: 180 days)."""
        cutoff = (now or utcnow()) - self.settings.thread_time
        return await self._threads.drop_older_than(epoch_ms(cutoff))


def _uid_of(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return int(value)
    raise errors.InputValidationError("Invalid cursor", details={"next": "Invalid cursor"})
