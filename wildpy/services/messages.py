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

See docs/mail-store.md for the collections and the segments format.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from wildpy import errors
from wildpy.mime import ParsedMessage, parse_message
from wildpy.mime.decode import decode_transfer
from wildpy.storage.accounts import Users
from wildpy.storage.blobs import Acquired, AttachmentStore, Bucket
from wildpy.storage.database import AlreadyExists, Document, new_id
from wildpy.storage.mailboxes import Mailboxes
from wildpy.storage.messages import Archived, Messages, Tombstones
from wildpy.storage.pagination import Page, decode_cursor, encode_cursor

from . import segments as seg
from .journal import JournalService
from .limits import allowed
from .message_docs import (
    LISTING_PROJECTION,
    RELEASE_PROJECTION,
    Placement,
    build_document,
    flag_fields,
    normalize_flags,
    with_booleans,
)
from .threads import ThreadChoice, ThreadService

log = logging.getLogger("wildpy.messages")

T = TypeVar("T")

MIB = 1024 * 1024
#: how often a conditional change that lost a race is retried before giving up
MAX_ATTEMPTS = 20
#: concurrent round trips of a batch job
JOB_CONCURRENCY = 16

_RAW_PROJECTION: Document = {"user": 1, "size": 1, "segments": 1, "segmentsFile": 1}
_ATTACHMENT_PROJECTION: Document = {**_RAW_PROJECTION, "attachments": 1}


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
    #: messages at least this big are parsed in a worker thread, off the event loop
    thread_parse: int = 256 * 1024


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
    """Dates that are later changed with `$set` and compared in queries (`rdate`, thread
    `updated`) are epoch milliseconds: the embedded server stores a datetime written by `$set`
    as a string, which no longer compares as a date. WildDuck's `rdate` is a number too."""
    return int(when.timestamp() * 1000)


def utcnow() -> datetime:
    # BSON dates hold milliseconds: truncate so that what we return equals what is stored
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


#: one step of an add: what it is, the call, and how to undo it given the call's result
_Step = tuple[str, Awaitable[Any], Callable[[Any], Awaitable[Any]] | None]


class _Undo:
    """Compensating steps of a multi-step write, run in reverse when a later step fails."""

    def __init__(self) -> None:
        self._steps: list[tuple[str, Callable[[], Awaitable[Any]]]] = []

    def push(self, what: str, step: Callable[[], Awaitable[Any]]) -> None:
        self._steps.append((what, step))

    async def run(self) -> None:
        while self._steps:
            what, step = self._steps.pop()
            try:
                await step()
            except Exception:  # keep undoing the rest; the original error is what matters
                log.error("undo step failed: %s", what, exc_info=True)


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
        and OverQuotaError reject the message before anything is kept. Any storage failure
        after that is undone and raised as StoreError.
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
        parsed = await self._parse(raw)
        undo = _Undo()
        try:
            return await self._store(undo, user_id, mailbox_id, raw, parsed, flag_list, idate, meta)
        except _REJECTIONS:
            await undo.run()
            raise
        except asyncio.CancelledError:
            await undo.run()
            raise
        except Exception as exc:
            await undo.run()
            log.error("storing a message failed: %s", exc, exc_info=True)
            raise errors.StoreError() from exc

    async def _parse(self, raw: bytes) -> ParsedMessage:
        if len(raw) >= self.settings.thread_parse:
            return await asyncio.to_thread(parse_message, raw)
        return parse_message(raw)

    async def _store(
        self,
        undo: _Undo,
        user_id: str,
        mailbox_id: str,
        raw: bytes,
        parsed: ParsedMessage,
        flags: list[str],
        idate: datetime | None,
        meta: Mapping[str, Any] | None,
    ) -> AddedMessage:
        size = len(raw)
        now = utcnow()
        message_id = new_id()

        # 1. quota and thread lookup, side by side (the users and mail databases)
        _, choice = await self._gather_undoable(
            undo,
            [
                (
                    "quota",
                    self._reserve_quota(user_id, size),
                    lambda _: self._adjust_quota(user_id, -size),
                ),
                ("thread lookup", self._threads.choose(user_id, parsed), None),
            ],
        )
        assert isinstance(choice, ThreadChoice)

        # 2. attachment bodies and the body file: uploaded before a uid is handed out, so the
        # window in which a uid is allocated but its message not yet visible stays short
        pieces = seg.cut(size, parsed.attachments, self.settings.min_attachment)
        cut_out = {piece.digest: piece for piece in pieces if piece.digest is not None}
        inline = seg.raw_size_of(pieces) <= self.settings.inline_body_limit
        view = memoryview(raw)
        uploads: list[_Step] = [
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
        done = await self._gather_undoable(undo, uploads) if uploads else []
        files = {item.hash: item.file for item in done if isinstance(item, Acquired)}
        segments = seg.build(raw, pieces, files, inline=inline)

        # 3. uid, modseq and the mailbox counters in one step
        unseen = "\\seen" not in {flag.lower() for flag in flags}
        mailbox = await self._mailboxes.find_one_and_update(
            {"_id": mailbox_id, "user": user_id},
            {
                "$inc": {
                    "uidNext": 1,
                    "modifyIndex": 1,
                    "total": 1,
                    "unseen": int(unseen),
                    "size": size,
                }
            },
            projection={"uidNext": 1, "modifyIndex": 1, "retention": 1},
            return_new=False,
        )
        if mailbox is None:
            raise errors.NoSuchMailbox()
        undo.push(
            "mailbox counters",
            lambda: self._mailboxes.update_one(
                {"_id": mailbox_id},
                {"$inc": {"total": -1, "unseen": -int(unseen), "size": -size}},
            ),
        )
        retention = int(mailbox.get("retention") or 0)
        placement = Placement(
            id=message_id,
            user=user_id,
            mailbox=mailbox_id,
            uid=int(mailbox["uidNext"]),
            modseq=int(mailbox.get("modifyIndex", 0)) + 1,
            thread=choice.id,
            idate=idate or now,
            created=now,
            rdate=epoch_ms(now) + retention if retention else None,
        )
        document = build_document(
            parsed,
            placement,
            flags,
            segments,
            segments_file=body_file,
            attachment_digests=sorted(cut_out),
            meta=meta,
        )

        # 4. the message and, when it starts one, its thread
        await self._gather_undoable(
            undo,
            [
                (
                    "message",
                    self._messages.insert(document),
                    lambda _: self._messages.delete_one({"_id": message_id}),
                ),
                ("thread", self._threads.create(choice), lambda _: self._threads.discard(choice)),
            ],
        )

        # 5. tell the listeners
        await self._journal.record(
            user_id,
            mailbox_id,
            "EXISTS",
            uid=placement.uid,
            message=message_id,
            modseq=placement.modseq,
            flags=flags,
            unseen=unseen,
            idate=placement.idate,
            thread=choice.id,
        )
        return AddedMessage(
            id=message_id,
            uid=placement.uid,
            modseq=placement.modseq,
            mailbox=mailbox_id,
            size=size,
            thread=choice.id,
        )

    @staticmethod
    async def _gather_undoable(undo: _Undo, steps: Sequence[_Step]) -> list[Any]:
        """Run `steps` side by side and register the undo of each that succeeded; once all have
        finished (none is left running unaccounted for), raise the failure, a rejection
        (over quota, no such mailbox) in preference to a fault."""
        results = await asyncio.gather(*(step for _, step, _ in steps), return_exceptions=True)
        failures: list[BaseException] = []
        for (what, _, reverse), result in zip(steps, results, strict=True):
            if isinstance(result, BaseException):
                failures.append(result)
            elif reverse is not None:
                undo.push(what, functools.partial(reverse, result))
        if failures:
            rejections = [f for f in failures if isinstance(f, _REJECTIONS)]
            raise (rejections or failures)[0]
        return list(results)

    async def _reserve_quota(self, user_id: str, size: int) -> None:
        """Add `size` to the owner's storageUsed, or refuse with OverQuotaError.

        Optimistic, one round trip: `$inc` first, then compare the total that came back with
        the quota. An add that does not fit takes its bytes back out. Concurrent adds each see
        the others' reservations, so the quota is never exceeded; near the limit one of them
        may be refused when a concurrent, refused one still briefly counts (OverQuotaError is
        retryable). A conditional `$inc` would need the quota first (another round trip), and
        `$expr` filters are wrong on the embedded server (they match other documents).
        """
        user = await self._users.find_one_and_update(
            {"_id": user_id},
            {"$inc": {"storageUsed": size}},
            projection={"storageUsed": 1, "quota": 1},
        )
        if user is None:
            raise errors.UserNotFound()
        quota = allowed(user, "quota")
        used = int(user.get("storageUsed", 0))
        if used > quota:
            await self._adjust_quota(user_id, -size)
            raise errors.OverQuotaError(details={"allowed": quota, "used": used - size})

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
        return with_booleans(doc)

    async def get_by_id(
        self, user_id: str, message_id: str, projection: Document | None = None
    ) -> Document:
        doc = await self._messages.find_one({"_id": message_id, "user": user_id}, projection)
        if doc is None:
            await self._raise_missing({"_id": message_id, "user": user_id})
        assert doc is not None
        return with_booleans(doc)

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
            results=[with_booleans(row) for row in rows],
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
        """Bytes [start, end) of a stored message (a message or archived document with
        `segments`, `segmentsFile`), fetching only the files those bytes are in."""
        segments: list[seg.Segment] = doc["segments"]
        spans = seg.locate(segments, start, end)
        needs_body = any("body" in segments[span.index] for span in spans)
        files = sorted(
            {str(segments[s.index]["file"]) for s in spans if "att" in segments[s.index]}
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
            if "raw" in segment:
                out += segment["raw"][low:high]
            elif "body" in segment:
                base = offsets[span.index]
                out += body[base + low : base + high]
            else:
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

    async def _resolve(self, user_id: str, message: Document | str, fields: Document) -> Document:
        if isinstance(message, dict):
            # `segmentsFile` is optional: only messages with big bodies have one
            needed = (key for key in fields if key != "segmentsFile")
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
            await asyncio.gather(
                self._journal.record(
                    user_id,
                    mailbox_id,
                    "EXPUNGE",
                    uid=uid,
                    message=doc["_id"],
                    modseq=int(source["modifyIndex"]) if source else None,
                ),
                self._journal.record(
                    user_id,
                    target_id,
                    "EXISTS",
                    uid=new_uid,
                    message=doc["_id"],
                    modseq=new_modseq,
                    flags=doc.get("flags", []),
                    unseen=bool(unseen),
                ),
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
            modseqs = await self._drop_from_mailboxes([doc])
            await asyncio.gather(
                self._release_quota([doc]),
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
                await self._release_content([doc])
            return DeletedMessage(doc["_id"], mailbox_id, uid, modseqs.get(mailbox_id, 0), keep)
        raise errors.StoreError("Message is changing too fast, try again")

    async def delete_mailbox_messages(self, user_id: str, mailbox_id: str, batch: int = 500) -> int:
        """Remove every message of a mailbox (mailbox deletion): quota, attachments and files
        are released, nothing is archived. Safe to repeat; the number removed."""
        removed = 0
        while True:
            rows = await self._messages.find(
                {"mailbox": mailbox_id, "user": user_id},
                {**RELEASE_PROJECTION, "modseq": 1},
                sort=[("uid", 1)],
                limit=batch,
            )
            if not rows:
                return removed
            removed += await self._remove_batch(rows, reason=None, now=utcnow())

    async def _remove_batch(self, rows: list[Document], reason: str | None, now: datetime) -> int:
        """Claim, delete and release a batch of messages; with `reason`, leave tombstones
        (kept `settings.tombstone_time` from `now`)."""
        token = new_id()
        claimed = await self._messages.claim(rows, token)
        if not claimed:
            return 0
        if reason is not None:
            await self._tombstones.insert_many(
                [
                    {
                        "_id": row["_id"],
                        "user": row["user"],
                        "mailbox": row["mailbox"],
                        "uid": row["uid"],
                        "reason": reason,
                        "created": now,
                        "expires": now + self.settings.tombstone_time,
                    }
                    for row in claimed
                ]
            )
        await self._messages.delete_claimed(token, [row["mailbox"] for row in claimed])
        modseqs = await self._drop_from_mailboxes(claimed)
        by_user: dict[str, list[Document]] = defaultdict(list)
        for row in claimed:
            by_user[row["user"]].append(row)
        await asyncio.gather(
            self._release_quota(claimed),
            *(
                self._journal.record_many(
                    user,
                    [
                        {
                            "mailbox": row["mailbox"],
                            "command": "EXPUNGE",
                            "uid": row["uid"],
                            "message": row["_id"],
                            "modseq": modseqs.get(row["mailbox"]),
                        }
                        for row in user_rows
                    ],
                )
                for user, user_rows in by_user.items()
            ),
        )
        await self._release_content(claimed)
        return len(claimed)

    async def _drop_from_mailboxes(self, rows: Sequence[Document]) -> dict[str, int]:
        """Take removed messages out of their mailboxes' counters; the new modseq of each."""
        totals: dict[str, Counter[str]] = defaultdict(Counter)
        for row in rows:
            counter = totals[row["mailbox"]]
            counter["total"] -= 1
            counter["unseen"] -= int(bool(row.get("unseen")))
            counter["size"] -= int(row.get("size", 0))
        results = await asyncio.gather(
            *(
                self._mailboxes.find_one_and_update(
                    {"_id": mailbox},
                    {"$inc": {**counter, "modifyIndex": 1}},
                    projection={"modifyIndex": 1},
                )
                for mailbox, counter in totals.items()
            )
        )
        return {
            mailbox: int(doc["modifyIndex"])
            for mailbox, doc in zip(totals, results, strict=True)
            if doc is not None
        }

    async def _release_quota(self, rows: Sequence[Document]) -> None:
        sizes: Counter[str] = Counter()
        for row in rows:
            sizes[row["user"]] += int(row.get("size", 0))
        await asyncio.gather(*(self._adjust_quota(user, -size) for user, size in sizes.items()))

    async def _release_content(self, rows: Sequence[Document]) -> None:
        """Drop the attachment references and body files of messages gone for good."""
        references: Counter[str] = Counter()
        files: list[str] = []
        for row in rows:
            references.update(row.get("atts", []))
            if row.get("segmentsFile"):
                files.append(str(row["segmentsFile"]))
        calls: list[Awaitable[bool]] = [
            self._attachments.release(digest, count) for digest, count in references.items()
        ]
        calls.extend(self._bodies.delete(file) for file in files)
        await _bounded(calls)

    # ------------------------------------------------------------------------------ retention

    async def expire_due(self, now: datetime | None = None, batch: int = 500) -> int:
        """Remove one batch of messages whose mailbox retention ran out, leaving tombstones."""
        when = now or utcnow()
        rows = await self._messages.expired(
            epoch_ms(when), batch, {**RELEASE_PROJECTION, "modseq": 1}
        )
        return await self._remove_batch(rows, reason="expired", now=when) if rows else 0

    async def purge_archived(self, now: datetime | None = None, batch: int = 500) -> int:
        """Drop one batch of archived messages past their grace period, leaving tombstones."""
        when = now or utcnow()
        rows = await self._archived.due(epoch_ms(when), batch, RELEASE_PROJECTION)
        if not rows:
            return 0
        # one delete per document: its count says whether this job (and not a concurrent
        # restore or purge) took it, and so whether its references are this job's to release
        deleted = await _bounded([self._archived.delete_one({"_id": row["_id"]}) for row in rows])
        mine = [row for row, count in zip(rows, deleted, strict=True) if count]
        stamp = when
        # no mailbox/uid here: that uid was deleted by its user and answers 404, not 410
        await self._tombstones.insert_many(
            [
                {
                    "_id": row["_id"],
                    "user": row["user"],
                    "reason": "purged",
                    "created": stamp,
                    "expires": stamp + self.settings.tombstone_time,
                }
                for row in mine
            ]
        )
        await self._release_content(mine)
        return len(mine)

    async def drop_tombstones(self, now: datetime | None = None) -> int:
        return await self._tombstones.delete_many({"expires": {"$lte": now or utcnow()}})


def _uid_of(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return int(value)
    raise errors.InputValidationError("Invalid cursor", details={"next": "Invalid cursor"})


async def _bounded(calls: Sequence[Awaitable[T]], limit: int = JOB_CONCURRENCY) -> list[T]:
    """Await `calls` at most `limit` at a time, results in order."""
    semaphore = asyncio.Semaphore(limit)

    async def one(call: Awaitable[T]) -> T:
        async with semaphore:
            return await call

    return list(await asyncio.gather(*(one(call) for call in calls)))
