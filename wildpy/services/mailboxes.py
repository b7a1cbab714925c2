"""Mailboxes: a new account's default folders, create, rename (with children), update, delete.

Every door goes through this service: the REST API now, IMAP CREATE/RENAME/DELETE/SUBSCRIBE
later. Each structural change is written to the journal (CREATE, RENAME, DELETE) so that
`/updates` streams and IMAP sessions in any process learn about it.

Messages belong to the message store. Deleting a mailbox asks it, through the narrow
`MessageStore` protocol, to remove the mailbox's messages and release their quota; the runtime
attaches the message service to `MailboxService.messages` once it exists. Without one no door can
add messages, so there is nothing to remove.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Protocol

from wildpy import errors
from wildpy.clock import utcnow
from wildpy.mailbox_names import JUNK, TRASH, special_use_names
from wildpy.mailbox_paths import (
    INBOX,
    check_path,
    is_within,
    listing_key,
    normalize_path,
)
from wildpy.services.events import MailboxCreated, MailboxDeleted, MailboxRenamed
from wildpy.storage.accounts import Users
from wildpy.storage.database import AlreadyExists, Document, new_id
from wildpy.storage.mailboxes import Mailboxes

from .journal import JournalService

log = logging.getLogger("wildpy.mailboxes")

#: WildDuck's `const:max:mailboxes`
MAX_MAILBOXES = 1500
#: Trash and Junk keep messages at most this long (ms), as WildDuck's JUNK_RETENTION
JUNK_RETENTION = 30 * 24 * 3600 * 1000
#: the fields PUT /mailboxes/:id may set besides `path`
UPDATABLE = ("retention", "subscribed", "hidden", "encryptMessages")

# WildDuck's messages, kept word for word: clients match on them
CREATE_EXISTS = "Mailbox creation failed with code MailboxAlreadyExists"
RENAME_EXISTS = "Mailbox rename failed with code MailboxAlreadyExists"
CREATE_LIMIT = (
    "Mailbox creation failed with code ReachedMailboxCountLimit. Max mailboxes count reached."
)
UPDATE_MISSING = "Mailbox update failed with code NoSuchMailbox"
UPDATE_DISALLOWED = "Mailbox update failed with code DisallowedMailboxMethod"
DELETE_MISSING = "Mailbox deletion failed with code NoSuchMailbox"
DELETE_DISALLOWED = "Mailbox deletion failed with code DisallowedMailboxMethod"
NOTHING_CHANGED = "Nothing was changed"


class MessageStore(Protocol):
    """What mailbox deletion needs from the message store."""

    async def delete_mailbox_messages(self, user_id: str, mailbox_id: str) -> int:
        """Remove the mailbox's messages, release their attachments and decrement the owner's
        storageUsed; the number removed. Must be safe to call again (nothing left: 0)."""
        ...


def _document(
    user_id: str, path: str, *, retention: int, created: datetime, **fields: Any
) -> Document:
    return {
        "_id": new_id(),
        "user": user_id,
        "path": path,
        "uidValidity": int(created.timestamp()),
        "uidNext": 1,
        "modifyIndex": 0,
        "subscribed": True,
        "hidden": False,
        "encryptMessages": False,
        "retention": retention,
        # kept exact by the message store with $inc (docs/mail-store.md)
        "total": 0,
        "unseen": 0,
        "size": 0,
        "created": created,
        **fields,
    }


class MailboxService:
    def __init__(
        self,
        mailboxes: Mailboxes,
        users: Users,
        journal: JournalService,
        *,
        max_mailboxes: int = MAX_MAILBOXES,
    ) -> None:
        self._mailboxes = mailboxes
        self._users = users
        self._journal = journal
        self.max_mailboxes = max_mailboxes
        #: the message store, attached by the runtime when there is one (see module docstring)
        self.messages: MessageStore | None = None

    # ------------------------------------------------------------------------------ defaults

    async def create_defaults(
        self,
        user_id: str,
        language: str = "",
        names: Mapping[str, str] | None = None,
        *,
        retention: int = 0,
    ) -> None:
        """A new account's INBOX, Sent Mail, Trash, Drafts and Junk, in one round trip.

        The special-use folders are named after `language`, or `names` (keys `sent`, `trash`,
        `junk`, `drafts`) when given. Trash and Junk keep messages 30 days at most; the others
        get the account's retention. If the insert fails, whatever it wrote is removed again.
        """
        created = utcnow()
        documents = [_document(user_id, INBOX, retention=retention, created=created)]
        seen = {INBOX}
        for use, name in special_use_names(language, names).items():
            try:
                path = normalize_path(name)
            except errors.InputValidationError as exc:
                raise errors.InputValidationError(
                    exc.text, details={"mailboxes": exc.text}
                ) from None
            if path in seen:
                message = f"Duplicate mailbox name: {name}"
                raise errors.InputValidationError(message, details={"mailboxes": message})
            seen.add(path)
            keep = min(retention, JUNK_RETENTION) if retention else JUNK_RETENTION
            documents.append(
                _document(
                    user_id,
                    path,
                    retention=keep if use in (TRASH, JUNK) else retention,
                    created=created,
                    specialUse=use,
                )
            )
        try:
            await self._mailboxes.insert_many(documents)
        except BaseException:
            # nothing half-made; if the database is gone this fails too, and the error that
            # matters is the first one
            with contextlib.suppress(Exception):
                await self._mailboxes.remove_of_user(user_id)
            raise

    # ------------------------------------------------------------------------------ reading

    async def get(self, user_id: str, mailbox_id: str) -> Document:
        return _found(await self._mailboxes.of_user_by_id(user_id, mailbox_id))

    async def resolve(self, user_id: str, path: str) -> Document:
        """The mailbox at `path` (a leading `inbox` in any case means INBOX)."""
        return _found(await self._mailboxes.at_path(user_id, normalize_path(path)))

    async def by_special_use(self, user_id: str, use: str) -> Document:
        return _found(await self._mailboxes.with_special_use(user_id, use))

    async def inbox(self, user_id: str) -> Document:
        return _found(await self._mailboxes.at_path(user_id, INBOX))

    async def describe(
        self, user_id: str, mailbox_id: str | None = None, path: str | None = None
    ) -> Document:
        """The stored mailbox, with its counters, by id or (`path`) by path; UserNotFound for
        a user that does not exist, NoSuchMailbox."""
        # the path is checked before any query starts (a bad one raises here, not midway)
        wanted = normalize_path(path or "") if mailbox_id is None else ""
        user, mailbox = await asyncio.gather(
            self._users.get(user_id, {"_id": 1}),
            self._mailboxes.of_user_by_id(user_id, mailbox_id)
            if mailbox_id is not None
            else self._mailboxes.at_path(user_id, wanted),
        )
        if user is None:
            raise errors.UserNotFound()
        if mailbox is None:
            raise errors.NoSuchMailbox()
        return mailbox

    async def listing(
        self,
        user_id: str,
        *,
        special_use_only: bool = False,
        show_hidden: bool = False,
    ) -> list[Document]:
        """The user's stored mailboxes (with their counters) in WildDuck's order: one query."""
        user, mailboxes = await asyncio.gather(
            self._users.get(user_id, {"_id": 1}),
            # bounded: the limit keeps a user's mailboxes far below this
            self._mailboxes.all_of_user(user_id, 2 * self.max_mailboxes),
        )
        if user is None:
            raise errors.UserNotFound()
        if special_use_only:
            mailboxes = [m for m in mailboxes if m["path"] == INBOX or m.get("specialUse")]
        if not show_hidden:
            mailboxes = [m for m in mailboxes if not m.get("hidden")]
        mailboxes.sort(key=lambda m: listing_key(m["path"], bool(m.get("subscribed", True))))
        return mailboxes

    async def counters(self, user_id: str, mailbox_ids: Iterable[str]) -> list[dict[str, Any]]:
        """`{mailbox, total, unseen}` of each of the user's mailboxes named (one query)."""
        return await self._mailboxes.counts(user_id, mailbox_ids)

    # ------------------------------------------------------------------------------ changing

    async def create(
        self,
        user_id: str,
        path: str,
        *,
        hidden: bool = False,
        retention: int | None = None,
        encrypt_messages: bool = False,
    ) -> str:
        """A new mailbox; its id. Without `retention` it gets the account's."""
        path = normalize_path(path)
        user, count = await asyncio.gather(
            self._users.get(user_id, {"retention": 1}), self._mailboxes.count_of_user(user_id)
        )
        if user is None:
            raise errors.UserNotFound()
        # a soft limit, as WildDuck's: creates racing at the very limit may pass it by a few
        if count >= self.max_mailboxes:
            raise errors.DisallowedMailboxMethod(
                CREATE_LIMIT, details={"allowed": self.max_mailboxes}
            )
        document = _document(
            user_id,
            path,
            retention=int(retention if retention else user.get("retention") or 0),
            created=utcnow(),
            hidden=hidden,
            encryptMessages=encrypt_messages,
        )
        try:
            await self._mailboxes.insert(document)
        except AlreadyExists:
            raise errors.MailboxExistsError(CREATE_EXISTS) from None
        await self._journal.record_events(
            user_id, [MailboxCreated(user=user_id, mailbox=document["_id"], path=path)]
        )
        return str(document["_id"])

    async def update(self, user_id: str, mailbox_id: str, changes: Mapping[str, Any]) -> None:
        """PUT /mailboxes/:id: rename (`path`) and/or set retention, subscribed, hidden,
        encryptMessages. No field at all: NoUpdates."""
        sets = {key: changes[key] for key in UPDATABLE if changes.get(key) is not None}
        new_path = changes.get("path")
        if new_path is None and not sets:
            raise errors.NoUpdates(NOTHING_CHANGED)
        mailbox = _found(await self._mailboxes.of_user_by_id(user_id, mailbox_id), UPDATE_MISSING)
        if new_path is not None:
            new_path = normalize_path(new_path)
            if new_path != mailbox["path"]:
                await self._rename(mailbox, new_path, sets)
                return
        if sets and not await self._mailboxes.set_fields(mailbox_id, user_id, sets):
            raise errors.NoSuchMailbox(UPDATE_MISSING)

    async def _rename(self, mailbox: Document, new_path: str, sets: Document) -> None:
        """Rename a mailbox and every mailbox below it (`Old/x` becomes `New/x`).

        INBOX and hidden mailboxes stay where they are (WildDuck's rule), and a mailbox cannot
        move below itself. A special-use mailbox may move: its special use goes with it.
        Target paths are checked before anything moves, so a clash leaves all as it was; the
        unique index still decides a race with a concurrent create.
        """
        user_id, mailbox_id, old_path = mailbox["user"], mailbox["_id"], mailbox["path"]
        if old_path == INBOX or mailbox.get("hidden"):
            raise errors.DisallowedMailboxMethod(UPDATE_DISALLOWED)
        if is_within(new_path, old_path):
            raise errors.DisallowedMailboxMethod(UPDATE_DISALLOWED)
        children = await self._children(user_id, old_path)
        moves = [(c["_id"], c["path"], new_path + c["path"][len(old_path) :]) for c in children]
        for _, _, target in moves:
            check_path(target)
        targets = [new_path, *(target for _, _, target in moves)]
        if await self._mailboxes.any_at(user_id, targets):
            raise errors.MailboxExistsError(RENAME_EXISTS)
        try:
            renamed = await self._mailboxes.rename(mailbox_id, old_path, new_path, sets)
        except AlreadyExists:
            raise errors.MailboxExistsError(RENAME_EXISTS) from None
        if not renamed:
            raise errors.NoSuchMailbox(UPDATE_MISSING)  # deleted or renamed meanwhile
        refused = await self._mailboxes.move_paths(moves)
        if refused:
            # a mailbox created at a target path since the check above: that child keeps its
            # old path, the rest of the rename stands
            log.warning("rename of %s: %d children kept their paths", mailbox_id, len(refused))
        moved = [move for index, move in enumerate(moves) if index not in refused]
        await self._journal.record_events(
            user_id,
            [
                MailboxRenamed(user=user_id, mailbox=ident, path=path)
                for ident, _, path in [(mailbox_id, old_path, new_path), *moved]
            ],
        )

    async def _children(self, user_id: str, path: str) -> list[Document]:
        rows = await self._mailboxes.below(user_id, path, 2 * self.max_mailboxes)
        return [row for row in rows if is_within(row["path"], path)]

    async def delete(self, user_id: str, mailbox_id: str) -> None:
        """Delete a mailbox and its messages (quota released). INBOX, special-use and hidden
        mailboxes cannot be deleted; mailboxes below this one stay."""
        mailbox = _found(await self._mailboxes.of_user_by_id(user_id, mailbox_id), DELETE_MISSING)
        if mailbox["path"] == INBOX or mailbox.get("specialUse") or mailbox.get("hidden"):
            raise errors.DisallowedMailboxMethod(DELETE_DISALLOWED)
        store = self.messages
        # messages first: if this fails, the mailbox is still there and a retry finishes the job
        if store is not None:
            await store.delete_mailbox_messages(user_id, mailbox_id)
        if not await self._mailboxes.remove(mailbox_id, user_id):
            raise errors.NoSuchMailbox(DELETE_MISSING)
        if store is not None:
            # a message delivered between the two steps would otherwise be left behind
            await store.delete_mailbox_messages(user_id, mailbox_id)
        await self._journal.record_events(
            user_id, [MailboxDeleted(user=user_id, mailbox=mailbox_id, path=mailbox["path"])]
        )


def _found(mailbox: Document | None, message: str | None = None) -> Document:
    if mailbox is None:
        raise errors.NoSuchMailbox(message)
    return mailbox
