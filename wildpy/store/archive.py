"""Deleted messages kept for a grace period: list them, and restore one or a date range.

A deleted message's archived copy keeps its `_id`, so the archive lists it by that id (WildDuck
lists archived `_id`s too, and fails to restore by it: reference section 12, item 9; wildpy
restores by exactly that id).

A restore takes the copy out of `archived` with a delete whose count says whether this caller
won it (a concurrent restore or the purge job may want it too), stores its bytes again through
`MessageService.add_message` (quota, uid, counters, journal, like any new message) and then
drops the references the copy held. If the add is refused (over quota, say) the copy goes back
into the archive untouched.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import datetime

from wildpy import errors
from wildpy.services.mailboxes import MailboxService
from wildpy.services.messages import MessageService
from wildpy.storage.accounts import Users
from wildpy.storage.blobs import AttachmentStore, Bucket
from wildpy.storage.database import Document
from wildpy.storage.messages import Archived, Tombstones
from wildpy.storage.pagination import Page, PageRequest

from .projections import listing_projection
from .records import AddedMessage

log = logging.getLogger("wildpy.archive")


@dataclass(frozen=True)
class RangeReport:
    restored: int
    failed: int


class ArchiveService:
    def __init__(
        self,
        archived: Archived,
        tombstones: Tombstones,
        messages: MessageService,
        mailboxes: MailboxService,
        attachments: AttachmentStore,
        bodies: Bucket,
        users: Users,
    ) -> None:
        self._users = users
        self._archived = archived
        self._tombstones = tombstones
        self._messages = messages
        self._mailboxes = mailboxes
        self._attachments = attachments
        self._bodies = bodies

    async def page(
        self, user: str, paging: PageRequest, *, ascending: bool, headers: bool = False
    ) -> Page:
        """One page of the user's archived messages by deletion time (newest first unless
        `ascending`), with the listing fields and the headers if asked: `{user, archived}` is
        indexed, `{user, _id}` cannot be (storage.md)."""
        projection = {**listing_projection(headers=headers, metadata=False), "archived": 1}
        page = await self._archived.page_by_archive_time(
            user, paging, ascending=ascending, projection=projection
        )
        # an empty page for a real user only (UserNotFound otherwise); asked only when empty,
        # so a page with rows costs no extra round trip
        if page.total == 0 and await self._users.get(user, {"_id": 1}) is None:
            raise errors.UserNotFound()
        return page

    async def restore(
        self, user: str, archived_id: str, mailbox: str | None = None
    ) -> AddedMessage:
        """Put an archived message back, into `mailbox` or the one it was deleted from (INBOX
        when that one is gone). MessageNotFound, MessageGone after the purge, NoSuchMailbox for
        a `mailbox` not the user's, OverQuotaError."""
        if mailbox is not None:
            await self._mailboxes.get(user, mailbox)
        doc = await self._archived.of_user_by_id(user, archived_id)
        if doc is None:
            if await self._tombstones.of_id(user, archived_id):
                raise errors.MessageGone()
            raise errors.MessageNotFound()
        target = mailbox or await self._original_mailbox(user, str(doc["mailbox"]))
        return await self._restore(doc, target)

    async def restore_range(self, user: str, start: datetime, end: datetime) -> RangeReport:
        """Restore every message archived between `start` and `end`, each into the mailbox it
        was deleted from, batch by batch, oldest first."""
        batch = self._messages.settings.restore_batch
        restored = failed = 0
        after: datetime | None = None
        mailboxes: dict[str, str] = {}
        while True:
            rows = await self._archived.archived_between(user, after, start, end, batch)
            if not rows:
                return RangeReport(restored, failed)
            for row in rows:
                source = str(row["mailbox"])
                if source not in mailboxes:
                    mailboxes[source] = await self._original_mailbox(user, source)
            outcomes = await asyncio.gather(
                *(self._restore(row, mailboxes[str(row["mailbox"])]) for row in rows),
                return_exceptions=True,
            )
            for outcome in outcomes:
                if isinstance(outcome, errors.MessageNotFound):
                    continue  # restored or purged by someone else meanwhile
                if isinstance(outcome, BaseException):
                    failed += 1
                    log.warning("restoring an archived message failed: %s", outcome)
                else:
                    restored += 1
            after = rows[-1]["archived"]
            if len(rows) < batch:
                return RangeReport(restored, failed)

    async def _original_mailbox(self, user: str, mailbox: str) -> str:
        try:
            return str((await self._mailboxes.get(user, mailbox))["_id"])
        except errors.NoSuchMailbox:
            return str((await self._mailboxes.inbox(user))["_id"])

    async def _restore(self, doc: Document, mailbox: str) -> AddedMessage:
        raw = await self._messages.read_range(doc, 0, int(doc["size"]))
        # claim it: only the caller whose delete removed the copy may release what it holds
        if not await self._archived.remove_copy(doc["_id"]):
            raise errors.MessageNotFound()
        try:
            added = await self._messages.add_message(
                str(doc["user"]),
                mailbox,
                raw,
                flags=list(doc.get("flags") or []),
                idate=doc.get("idate"),
                meta=doc.get("meta"),
            )
        except BaseException:
            await self._archived.insert(doc)  # refused or failed: the copy stays restorable
            raise
        await self._release(doc)
        return added

    async def _release(self, doc: Document) -> None:
        """Drop the attachment references and the body file of a restored archived copy (the
        restored message took references of its own)."""
        try:
            counts = Counter(str(digest) for digest in doc.get("atts") or [])
            calls: list[Awaitable[bool]] = [
                self._attachments.release(digest, n) for digest, n in counts.items()
            ]
            if doc.get("segmentsFile"):
                calls.append(self._bodies.delete(str(doc["segmentsFile"])))
            await asyncio.gather(*calls)
        except Exception:  # the message is restored; a leaked reference only costs space
            log.exception("releasing the archived copy %s failed", doc["_id"])
