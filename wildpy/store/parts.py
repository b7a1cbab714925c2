"""What every part of the message store works with: repositories, journal, settings, shield."""

from __future__ import annotations

from dataclasses import dataclass

from wildpy.services.journal import JournalService
from wildpy.storage.accounts import Users
from wildpy.storage.blobs import AttachmentStore, Bucket
from wildpy.storage.mailboxes import Mailboxes
from wildpy.storage.messages import Archived, Messages, Tombstones

from .settings import StoreSettings
from .threads import ThreadService
from .undo import Shield


@dataclass
class StoreParts:
    """Shared, not copied, by the parts: a repository swapped here (the fault-injection tests
    swap `messages`) is the one every part uses from then on."""

    users: Users
    mailboxes: Mailboxes
    messages: Messages
    archived: Archived
    tombstones: Tombstones
    threads: ThreadService
    attachments: AttachmentStore
    bodies: Bucket
    journal: JournalService
    settings: StoreSettings
    #: one shield for the whole store, so that `settle` waits for every part's changes
    shield: Shield


class StorePart:
    """Base of the store's parts: the shared pieces under the names the methods use."""

    def __init__(self, parts: StoreParts) -> None:
        self._parts = parts
        self.settings = parts.settings
        self._shield = parts.shield

    @property
    def _users(self) -> Users:
        return self._parts.users

    @property
    def _mailboxes(self) -> Mailboxes:
        return self._parts.mailboxes

    @property
    def _messages(self) -> Messages:
        return self._parts.messages

    @property
    def _archived(self) -> Archived:
        return self._parts.archived

    @property
    def _tombstones(self) -> Tombstones:
        return self._parts.tombstones

    @property
    def _threads(self) -> ThreadService:
        return self._parts.threads

    @property
    def _attachments(self) -> AttachmentStore:
        return self._parts.attachments

    @property
    def _bodies(self) -> Bucket:
        return self._parts.bodies

    @property
    def _journal(self) -> JournalService:
        return self._parts.journal
