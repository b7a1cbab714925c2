"""Taking messages out for good, exactly once: counters, quota, references, files, tombstones.

Used by MessageService for single deletes, mailbox and account removal, and the retention job.
Batches are claimed first (`Messages.claim`), so that only what this job took out is released,
however many deleters, movers and jobs run at the same time.
"""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from collections.abc import Awaitable, Sequence
from datetime import datetime, timedelta

from wildpy.services.events import MessageExpunged
from wildpy.services.journal import JournalService
from wildpy.storage.accounts import Users
from wildpy.storage.blobs import AttachmentStore, Bucket
from wildpy.storage.database import Document, new_id
from wildpy.storage.mailboxes import Mailboxes
from wildpy.storage.messages import Archived, Messages, Tombstones

from .undo import bounded


class Releaser:
    def __init__(
        self,
        *,
        users: Users,
        mailboxes: Mailboxes,
        messages: Messages,
        archived: Archived,
        tombstones: Tombstones,
        attachments: AttachmentStore,
        bodies: Bucket,
        journal: JournalService,
        tombstone_time: timedelta,
    ) -> None:
        self._users = users
        self._mailboxes = mailboxes
        self._messages = messages
        self._archived = archived
        self._tombstones = tombstones
        self._attachments = attachments
        self._bodies = bodies
        self._journal = journal
        self._tombstone_time = tombstone_time

    async def remove_batch(self, rows: list[Document], reason: str | None, now: datetime) -> int:
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
                        "expires": now + self._tombstone_time,
                    }
                    for row in claimed
                ]
            )
        await self._messages.delete_claimed(token, [row["mailbox"] for row in claimed])
        modseqs = await self.drop_from_mailboxes(claimed)
        by_user: dict[str, list[Document]] = defaultdict(list)
        for row in claimed:
            by_user[row["user"]].append(row)
        await asyncio.gather(
            self.release_quota(claimed),
            *(
                self._journal.record_events(
                    user,
                    [
                        MessageExpunged(
                            user=user,
                            mailbox=row["mailbox"],
                            uid=row["uid"],
                            message=row["_id"],
                            modseq=modseqs.get(row["mailbox"]),
                        )
                        for row in user_rows
                    ],
                )
                for user, user_rows in by_user.items()
            ),
        )
        await self.release_content(claimed)
        return len(claimed)

    async def drop_from_mailboxes(self, rows: Sequence[Document]) -> dict[str, int]:
        """Take removed messages out of their mailboxes' counters; the new modseq of each."""
        totals: dict[str, Counter[str]] = defaultdict(Counter)
        for row in rows:
            counter = totals[row["mailbox"]]
            counter["total"] -= 1
            counter["unseen"] -= int(bool(row.get("unseen")))
            counter["size"] -= int(row.get("size", 0))
        results = await asyncio.gather(
            *(
                self._mailboxes.remove_messages(
                    mailbox,
                    total=-counter["total"],
                    unseen=-counter["unseen"],
                    size=-counter["size"],
                )
                for mailbox, counter in totals.items()
            )
        )
        return {
            mailbox: modseq
            for mailbox, modseq in zip(totals, results, strict=True)
            if modseq is not None
        }

    async def release_quota(self, rows: Sequence[Document]) -> None:
        sizes: Counter[str] = Counter()
        for row in rows:
            sizes[row["user"]] += int(row.get("size", 0))
        await asyncio.gather(
            *(self._users.add_storage_used(user, -size) for user, size in sizes.items())
        )

    async def release_content(self, rows: Sequence[Document]) -> None:
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
        await bounded(calls)

    async def purge(self, rows: Sequence[Document], now: datetime, *, tombstones: bool) -> int:
        """Drop archived copies and release what they hold."""
        # one delete per document: its count says whether this job (and not a concurrent
        # restore or purge) took it, and so whether its references are this job's to release
        deleted = await bounded([self._archived.remove_copy(row["_id"]) for row in rows])
        mine = [row for row, count in zip(rows, deleted, strict=True) if count]
        if tombstones:
            # no mailbox/uid here: that uid was deleted by its user and answers 404, not 410
            await self._tombstones.insert_many(
                [
                    {
                        "_id": row["_id"],
                        "user": row["user"],
                        "reason": "purged",
                        "created": now,
                        "expires": now + self._tombstone_time,
                    }
                    for row in mine
                ]
            )
        await self.release_content(mine)
        return len(mine)
