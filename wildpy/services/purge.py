"""The final purge of deleted accounts, once their restore window (`deleteAfter`) has passed.

Deleting a user only moves the account aside (restorable); this removes everything it owned:
messages and archived copies (releasing shared attachments), storage files, mailboxes, the
journal, thread keys, tombstones and the address register, and last the account record itself,
so a purge interrupted midway is simply done again by the next round.
"""

from __future__ import annotations

import logging
from datetime import datetime

from wildpy.clock import utcnow
from wildpy.storage.accounts import AddressRegister, DeletedUsers
from wildpy.storage.files import StorageFiles
from wildpy.storage.journal import Journal
from wildpy.storage.mailboxes import Mailboxes
from wildpy.storage.messages import Threads, Tombstones

from .messages import MessageService

log = logging.getLogger("wildpy.purge")


class AccountPurge:
    def __init__(
        self,
        deleted_users: DeletedUsers,
        messages: MessageService,
        files: StorageFiles,
        mailboxes: Mailboxes,
        journal: Journal,
        threads: Threads,
        tombstones: Tombstones,
        address_register: AddressRegister,
    ) -> None:
        self._deleted = deleted_users
        self._messages = messages
        self._files = files
        self._mailboxes = mailboxes
        self._journal = journal
        self._threads = threads
        self._tombstones = tombstones
        self._register = address_register

    async def purge_due(self, now: datetime | None = None, batch: int = 20) -> int:
        """Purge up to `batch` accounts whose restore window ended; the number purged."""
        due = await self._deleted.ids_due(now or utcnow(), batch)
        for user_id in due:
            await self.purge(user_id)
        return len(due)

    async def purge(self, user_id: str) -> None:
        await self._messages.delete_user_messages(user_id)
        for file_id in await self._files.ids_of_user(user_id):
            await self._files.remove(file_id, user_id)
        mailbox_ids = [str(row["_id"]) for row in await self._mailboxes.of_user(user_id)]
        await self._tombstones.drop_of_mailboxes(mailbox_ids)
        await self._mailboxes.remove_of_user(user_id)
        await self._journal.drop_of_user(user_id)
        await self._threads.drop_of_user(user_id)
        await self._register.drop_of_user(user_id)
        await self._deleted.remove(user_id)
        log.info("purged deleted account %s", user_id)
