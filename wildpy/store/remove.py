"""Removing messages: one delete (archived unless asked not to), a mailbox's or a user's all."""

from __future__ import annotations

import asyncio

from wildpy import errors
from wildpy.clock import epoch_ms, utcnow
from wildpy.services.events import MessageExpunged
from wildpy.storage.database import AlreadyExists

from .documents import RELEASE_PROJECTION
from .parts import StorePart, StoreParts
from .read import Reader
from .records import DeletedMessage
from .releases import Releaser


class Remover(StorePart):
    def __init__(self, parts: StoreParts, reader: Reader, releases: Releaser) -> None:
        super().__init__(parts)
        self._reader = reader
        self._releases = releases

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
        for attempt in range(self.settings.max_attempts):
            doc = await self._reader.get(user_id, mailbox_id, uid)
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
            removed = await self._messages.remove_as_read(doc)
            if not removed:
                if keep:
                    await self._archived.remove_copy(doc["_id"], now)
                continue
            modseqs = await self._releases.drop_from_mailboxes([doc])
            await asyncio.gather(
                self._releases.release_quota([doc]),
                self._journal.record_events(
                    user_id,
                    [
                        MessageExpunged(
                            user=user_id,
                            mailbox=mailbox_id,
                            uid=uid,
                            message=doc["_id"],
                            modseq=modseqs.get(mailbox_id),
                        )
                    ],
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
            rows = await self._messages.of_mailbox(user_id, mailbox_id, RELEASE_PROJECTION, batch)
            if not rows:
                return removed
            removed += await self._releases.remove_batch(rows, reason=None, now=utcnow())

    async def delete_user_messages(self, user_id: str, batch: int = 500) -> int:
        """Remove all of a user's messages and archived copies, releasing their attachments
        and files (for the final purge of a deleted account). The number removed."""
        return await self._shield.run(self._delete_user_messages(user_id, batch))

    async def _delete_user_messages(self, user_id: str, batch: int) -> int:
        removed = 0
        while rows := await self._messages.of_user(user_id, RELEASE_PROJECTION, batch):
            removed += await self._releases.remove_batch(rows, reason=None, now=utcnow())
        while rows := await self._archived.of_user(user_id, RELEASE_PROJECTION, batch):
            removed += await self._releases.purge(rows, utcnow(), tombstones=False)
        return removed
