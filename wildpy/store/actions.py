"""Changes the REST API makes to messages addressed by UID set: flags, expiry, metaData, moves,
deletion and emptying a mailbox (PUT and DELETE on .../messages).

Flag changes, moves and deletions go through `MessageService` (counters, modseq, journal). The
two fields no counter depends on, the expiry (`rdate`, read by the retention job) and the
client's metaData (`meta.custom`), are set here with a conditional update of the message as it
was read. A UID set is walked in uid order in bounded batches, a few messages at a time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, TypeVar

from wildpy import errors
from wildpy.clock import epoch_ms
from wildpy.services.mailboxes import MailboxService
from wildpy.services.messages import MessageService
from wildpy.storage.database import Document
from wildpy.storage.messages import Messages

from .search_terms import UidSet

log = logging.getLogger("wildpy.messages.api")

T = TypeVar("T")

_ROW: Document = {"_id": 1, "mailbox": 1, "uid": 1}

NO_MATCH = "No message matched query"
NOTHING_CHANGED = "Nothing was changed"


@dataclass(frozen=True)
class MessageChanges:
    """What PUT .../messages asks for; None leaves a property as it is."""

    seen: bool | None = None
    flagged: bool | None = None
    draft: bool | None = None
    deleted: bool | None = None
    #: a date, or False to keep the message for ever
    expires: datetime | Literal[False] | None = None
    #: the new metaData as its JSON string
    metadata: str | None = None
    move_to: str | None = None

    def flag_changes(self) -> tuple[list[str], list[str]]:
        add: list[str] = []
        remove: list[str] = []
        for value, flag in (
            (self.seen, "\\Seen"),
            (self.flagged, "\\Flagged"),
            (self.draft, "\\Draft"),
            (self.deleted, "\\Deleted"),
        ):
            if value is not None:
                (add if value else remove).append(flag)
        return add, remove

    @property
    def expiry(self) -> int | Literal[False] | None:
        """The new expiry as stored (epoch ms), False for none, None to leave it."""
        if self.expires is None or self.expires is False:
            return self.expires
        return epoch_ms(self.expires)

    @property
    def changes_details(self) -> bool:
        return self.expires is not None or self.metadata is not None

    @property
    def empty(self) -> bool:
        add, remove = self.flag_changes()
        return not (add or remove or self.changes_details or self.move_to)


@dataclass(frozen=True)
class UpdateOutcome:
    #: messages changed (flags or fields)
    updated: int
    #: with moveTo: (old uid, new uid) pairs, in uid order
    moved: list[tuple[int, int]] | None = None


class MessageActions:
    def __init__(
        self, messages: MessageService, queries: Messages, mailboxes: MailboxService
    ) -> None:
        self._messages = messages
        self._queries = queries
        self._mailboxes = mailboxes

    async def update(
        self, user: str, mailbox: str, uids: UidSet, changes: MessageChanges
    ) -> UpdateOutcome:
        """Apply `changes` to the messages of `uids` in the mailbox: flags and fields first,
        then the move. NoUpdates when nothing is asked; NoSuchMailbox for either mailbox;
        MessageNotFound (or MessageGone for an expired single uid) when nothing matched."""
        if changes.empty:
            raise errors.NoUpdates(NOTHING_CHANGED)
        if changes.move_to:
            await self._mailboxes.get(user, changes.move_to)
        add, remove = changes.flag_changes()
        expiry = changes.expiry
        moved: list[tuple[int, int]] = []

        async def one(row: Document) -> bool:
            uid = int(row["uid"])
            if add or remove:
                await self._messages.update_flags(user, mailbox, uid, add=add, remove=remove)
            if changes.changes_details and not await self._queries.set_details(
                row, expiry=expiry, metadata=changes.metadata
            ):
                raise errors.MessageNotFound()
            if changes.move_to and changes.move_to != mailbox:
                result = await self._messages.move(user, mailbox, uid, changes.move_to)
                moved.append((uid, result.uid))
            elif changes.move_to:
                moved.append((uid, uid))  # "moved" into the mailbox it is in
            return True

        done = await self._each(user, mailbox, uids, one)
        if not done:
            raise errors.MessageNotFound(NO_MATCH)
        return UpdateOutcome(updated=done, moved=sorted(moved) if changes.move_to else None)

    async def delete(self, user: str, mailbox: str, uid: int) -> None:
        """Delete one message, archived unless it is a draft (NoSuchMailbox, MessageNotFound)."""
        await self.in_mailbox(user, mailbox, self._messages.delete(user, mailbox, uid))

    async def empty(self, user: str, mailbox: str, *, archive: bool) -> tuple[int, int]:
        """Delete every message of the mailbox: (deleted, errors). Archived (restorable) unless
        `archive` is False or they are drafts."""
        await self._mailboxes.get(user, mailbox)
        if not archive:
            return await self._messages.delete_mailbox_messages(user, mailbox), 0
        failed = 0

        async def one(row: Document) -> bool:
            nonlocal failed
            try:
                await self._messages.delete(user, mailbox, int(row["uid"]))
            except (errors.MessageNotFound, errors.MessageGone):
                return False  # gone meanwhile: not this request's doing
            except errors.WildpyError as exc:
                failed += 1
                log.warning("deleting uid %s of mailbox %s failed: %s", row["uid"], mailbox, exc)
                return False
            return True

        deleted = await self._each(user, mailbox, UidSet(first=1), one)
        return deleted, failed

    async def _each(
        self,
        user: str,
        mailbox: str,
        uids: UidSet,
        action: Callable[[Document], Awaitable[bool]],
    ) -> int:
        """Run `action` on each message of `uids`, in batches; how many it succeeded for.

        A single uid is addressed directly, so that its own error (MessageNotFound, or
        MessageGone for an expired one) is what the client gets. In a set, a message that
        disappears meanwhile is skipped.
        """
        single = uids.single
        if single is not None:
            row = {"_id": None, "mailbox": mailbox, "uid": single}
            doc = await self.in_mailbox(
                user, mailbox, self._messages.get(user, mailbox, single, _ROW)
            )
            row["_id"] = doc["_id"]
            return int(await action(row))
        query = {"mailbox": mailbox, "user": user, **uids.condition()}
        semaphore = asyncio.Semaphore(self._messages.settings.uid_set_concurrency)

        async def guarded(row: Document) -> bool:
            async with semaphore:
                try:
                    return await action(row)
                except (errors.MessageNotFound, errors.MessageGone):
                    return False  # gone or moved meanwhile

        batch = self._messages.settings.uid_set_batch
        count, after, seen_any = 0, 0, False
        while True:
            rows = await self._queries.in_uid_order(query, _ROW, after_uid=after, limit=batch)
            if not rows:
                break
            seen_any = True
            results = await asyncio.gather(*(guarded(row) for row in rows))
            count += sum(results)
            after = int(rows[-1]["uid"])
        if not seen_any:
            await self._mailboxes.get(user, mailbox)  # NoSuchMailbox rather than no match
        return count

    async def in_mailbox(self, user: str, mailbox: str, call: Awaitable[T]) -> T:
        """`call`, but a missing message in a mailbox that does not exist is NoSuchMailbox."""
        try:
            return await call
        except errors.MessageNotFound:
            await self._mailboxes.get(user, mailbox)
            raise
