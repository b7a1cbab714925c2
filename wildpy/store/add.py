"""Adding a message: the one path every door uses (quota, uid/modseq, thread, parse, upload,
insert, journal), with group commit of the writes concurrent adds share and undo on failure.

See docs/mail-store.md for the collections and the segments format.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from wildpy import errors
from wildpy.clock import epoch_ms, utcnow
from wildpy.mime import ParsedMessage, parse_message, thread_headers
from wildpy.services.events import MessageAdded
from wildpy.services.group_commit import GroupCommit, InOrder
from wildpy.services.limits import allowed
from wildpy.storage.blobs import Acquired
from wildpy.storage.database import Document, new_id

from . import segments as seg
from .documents import Placement, build_document, normalize_flags, search_text
from .parts import StorePart, StoreParts
from .records import AddedMessage
from .threads import ThreadChoice
from .undo import Step, Undo, gather_undoable

log = logging.getLogger("wildpy.messages")


@dataclass(frozen=True)
class Slot:
    """Where an add goes in its mailbox: uid, modseq and the mailbox's retention (ms)."""

    uid: int
    modseq: int
    retention: int


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


class Adder(StorePart):
    def __init__(self, parts: StoreParts) -> None:
        super().__init__(parts)
        # group commit of the writes concurrent adds share (group_commit.py)
        self._inserts: GroupCommit[None, Document, None] = GroupCommit(
            self._insert,
            max_items=self.settings.insert_group,
            max_weight=self.settings.insert_group_bytes,
            weigh=_document_weight,
        )
        self._allocations: GroupCommit[tuple[str, str], tuple[int, bool], Slot] = GroupCommit(
            self._allocate
        )
        self._reservations: GroupCommit[str, int, None] = GroupCommit(self._reserve_quota)
        #: EXISTS events of one mailbox go to the journal in uid order
        self._order = InOrder()

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
                lambda _: self._messages.remove(message_id),
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
        _, written = self._journal.enqueue_events(
            user_id,
            [
                MessageAdded(
                    user=user_id,
                    mailbox=mailbox_id,
                    uid=slot.uid,
                    message=message_id,
                    modseq=slot.modseq,
                    flags=tuple(flags),
                    unseen=unseen,
                    idate=idate or now,
                    thread=choice.id,
                )
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
            await self._mailboxes.count_out(mailbox_id, unseen=int(unseen), size=size)

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
        before = await self._mailboxes.allocate_uids(
            mailbox_id,
            user_id,
            count=count,
            unseen=sum(int(unseen) for _, unseen in items),
            size=sum(size for size, _ in items),
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
        user = await self._users.reserve_storage(user_id, total)
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
            await self._users.add_storage_used(user_id, delta)
