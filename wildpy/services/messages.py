"""The message store's facade: every door (REST, SMTP/LMTP, IMAP, POP3) adds and changes mail here.

The work is done in `wildpy.store`, one module per purpose (add, read, change, remove, expiry);
this class builds those parts over one set of repositories and hands each call to its part.
It lives in `services/` so that every door and the runtime keep importing it from one stable
place while the store's insides move.

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

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from wildpy.clock import epoch_ms, utcnow
from wildpy.storage.accounts import Users
from wildpy.storage.blobs import AttachmentStore, Bucket
from wildpy.storage.database import Document
from wildpy.storage.mailboxes import Mailboxes
from wildpy.storage.messages import Archived, Messages, Tombstones
from wildpy.storage.pagination import Page
from wildpy.store.add import Adder
from wildpy.store.change import Changer
from wildpy.store.detail import Opener
from wildpy.store.documents import MessageBody, MessageView
from wildpy.store.expiry import Expiry
from wildpy.store.parts import StoreParts
from wildpy.store.read import Reader
from wildpy.store.records import (
    AddedMessage,
    DeletedMessage,
    FlagChange,
    MovedMessage,
    ReadMessage,
    UidFlags,
)
from wildpy.store.releases import Releaser
from wildpy.store.remove import Remover
from wildpy.store.settings import StoreSettings
from wildpy.store.threads import ThreadService
from wildpy.store.undo import Shield

from .journal import JournalService

__all__ = [
    "AddedMessage",
    "DeletedMessage",
    "FlagChange",
    "MessageService",
    "MovedMessage",
    "ReadMessage",
    "StoreSettings",
    "UidFlags",
    "epoch_ms",
    "utcnow",
]


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
        self.settings = settings or StoreSettings()
        self._shield = Shield()
        self._parts = parts = StoreParts(
            users=users,
            mailboxes=mailboxes,
            messages=messages,
            archived=archived,
            tombstones=tombstones,
            threads=threads,
            attachments=attachments,
            bodies=bodies,
            journal=journal,
            settings=self.settings,
            shield=self._shield,
        )
        releases = Releaser(
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
        self._adder = Adder(parts)
        self._reader = Reader(parts)
        self._changer = Changer(parts, self._reader)
        self._remover = Remover(parts, self._reader, releases)
        self._expiry = Expiry(parts, releases)
        self._opener = Opener(self._reader, self._changer)

    # the repository and the attachment store every part uses, reachable as before the split:
    # the fault-injection tests swap the first and read the second
    @property
    def _messages(self) -> Messages:
        return self._parts.messages

    @_messages.setter
    def _messages(self, messages: Messages) -> None:
        self._parts.messages = messages

    @property
    def _attachments(self) -> AttachmentStore:
        return self._parts.attachments

    async def settle(self) -> None:
        """Wait for changes still running after their callers went away (before shutdown)."""
        await self._shield.settle()

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
        """Store `raw` in the mailbox: the one path every door uses (`store.add`)."""
        return await self._adder.add_message(
            user_id, mailbox_id, raw, flags=flags, idate=idate, meta=meta
        )

    # ------------------------------------------------------------------------------ reading

    async def get(
        self, user_id: str, mailbox_id: str, uid: int, projection: Document | None = None
    ) -> Document:
        """The message at `uid` in the mailbox; MessageGone when it expired or was purged."""
        return await self._reader.get(user_id, mailbox_id, uid, projection)

    async def get_by_id(
        self, user_id: str, message_id: str, projection: Document | None = None
    ) -> Document:
        return await self._reader.get_by_id(user_id, message_id, projection)

    async def read_message(
        self, user_id: str, mailbox_id: str, uid: int, *, mark_seen: bool = False
    ) -> ReadMessage:
        """The message at `uid` to show (detail fields, rendered body), marked \\Seen first
        when `mark_seen`; NoSuchMailbox for a mailbox not the user's."""
        return await self._opener.read_message(user_id, mailbox_id, uid, mark_seen=mark_seen)

    async def source(self, user_id: str, mailbox_id: str, uid: int) -> bytes:
        """The raw message at `uid` in the mailbox; NoSuchMailbox for a mailbox not the user's."""
        return await self._reader.source(user_id, mailbox_id, uid)

    async def attachment(
        self, user_id: str, mailbox_id: str, uid: int, attachment_id: str
    ) -> tuple[dict[str, Any], bytes]:
        """An attachment of the message at `uid`: its listing info and decoded content."""
        return await self._reader.attachment(user_id, mailbox_id, uid, attachment_id)

    async def changed_since(self, user_id: str, mailbox_id: str, modseq: int) -> list[UidFlags]:
        """uid, modseq and flags of the mailbox's messages changed after `modseq`, by uid."""
        return await self._reader.changed_since(user_id, mailbox_id, modseq)

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
        """One page of a mailbox, by uid (newest first by default), with listing fields."""
        return await self._reader.list_messages(
            user_id,
            mailbox_id,
            limit=limit,
            ascending=ascending,
            unseen=unseen,
            next_cursor=next_cursor,
            previous_cursor=previous_cursor,
            page=page,
        )

    async def get_raw(self, user_id: str, message: Document | str) -> bytes:
        """The message exactly as it was added (`message.eml`, IMAP BODY[])."""
        return await self._reader.get_raw(user_id, message)

    async def read_range(self, doc: Document, start: int, end: int) -> bytes:
        """Bytes [start, end) of a stored message or archived document."""
        return await self._reader.read_range(doc, start, end)

    async def read_attachment(
        self, user_id: str, message: Document | str, attachment_id: str
    ) -> tuple[dict[str, Any], bytes]:
        """An attachment's listing info and its decoded content; AttachmentNotFound."""
        return await self._reader.read_attachment(user_id, message, attachment_id)

    async def view(self, user_id: str, message: Document | str) -> MessageView:
        """The message's MIME tree and IMAP ENVELOPE/BODYSTRUCTURE/BODY."""
        return await self._reader.view(user_id, message)

    async def body(self, user_id: str, message: Document | str) -> MessageBody:
        """The text and sanitised HTML a detail view shows, rendered from the raw message."""
        return await self._reader.body(user_id, message)

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
        return await self._changer.update_flags(
            user_id, mailbox_id, uid, add=add, remove=remove, replace=replace
        )

    async def move(self, user_id: str, mailbox_id: str, uid: int, target_id: str) -> MovedMessage:
        """Move a message to another mailbox under a new uid (IMAP MOVE, REST moveTo)."""
        return await self._changer.move(user_id, mailbox_id, uid, target_id)

    # ------------------------------------------------------------------------------ removing

    async def delete(
        self, user_id: str, mailbox_id: str, uid: int, *, archive: bool = True
    ) -> DeletedMessage:
        """Delete a message (archived unless `archive` is False); its quota is released."""
        return await self._remover.delete(user_id, mailbox_id, uid, archive=archive)

    async def delete_mailbox_messages(self, user_id: str, mailbox_id: str, batch: int = 500) -> int:
        """Remove every message of a mailbox (mailbox deletion); the number removed."""
        return await self._remover.delete_mailbox_messages(user_id, mailbox_id, batch)

    async def delete_user_messages(self, user_id: str, batch: int = 500) -> int:
        """Remove all of a user's messages and archived copies (final account purge)."""
        return await self._remover.delete_user_messages(user_id, batch)

    # ------------------------------------------------------------------------------ retention

    async def expire_due(self, now: datetime | None = None, batch: int = 500) -> int:
        """Remove one batch of messages whose mailbox retention ran out, leaving tombstones."""
        return await self._expiry.expire_due(now, batch)

    async def purge_archived(self, now: datetime | None = None, batch: int = 500) -> int:
        """Drop one batch of archived messages past their grace period, leaving tombstones."""
        return await self._expiry.purge_archived(now, batch)

    async def drop_tombstones(self, now: datetime | None = None) -> int:
        return await self._expiry.drop_tombstones(now)

    async def drop_stale_threads(self, now: datetime | None = None) -> int:
        """Forget thread keys unused for `settings.thread_time` (WildDuck: 180 days)."""
        return await self._expiry.drop_stale_threads(now)
