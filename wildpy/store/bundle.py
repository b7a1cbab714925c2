"""The services behind the REST message routes, built once per runtime.

They sit on top of the message store (`MessageService`): listings and search, changes by UID
set, uploads and the archive. Grouped here so the runtime holds them as one field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from wildpy.services.files import FileService
from wildpy.services.mailboxes import MailboxService
from wildpy.services.messages import MessageService
from wildpy.storage.accounts import Users
from wildpy.storage.blobs import AttachmentRefs, AttachmentStore, Bucket
from wildpy.storage.database import Database
from wildpy.storage.mailboxes import Mailboxes
from wildpy.storage.messages import Archived, Messages, Tombstones

from .actions import MessageActions
from .archive import ArchiveService
from .search import SearchService
from .upload import UploadService


class MessageRepositories(Protocol):
    """The repositories these services read (the runtime's `Repositories`)."""

    users: Users
    mailboxes: Mailboxes
    messages: Messages
    archived: Archived
    tombstones: Tombstones
    attachment_refs: AttachmentRefs


@dataclass(frozen=True)
class MessageApi:
    search: SearchService
    actions: MessageActions
    uploads: UploadService
    archive: ArchiveService


def build_message_api(
    database: Database,
    repos: MessageRepositories,
    messages: MessageService,
    mailboxes: MailboxService,
    files: FileService,
) -> MessageApi:
    return MessageApi(
        search=SearchService(
            repos.messages,
            repos.mailboxes,
            repos.users,
            count_concurrency=messages.settings.thread_count_concurrency,
        ),
        actions=MessageActions(messages, repos.messages, mailboxes),
        uploads=UploadService(messages, repos.users, files),
        archive=ArchiveService(
            repos.archived,
            repos.tombstones,
            messages,
            mailboxes,
            # releases what a restored archive copy held: the same refs and bucket the store uses
            AttachmentStore(repos.attachment_refs, Bucket(database, "attachments")),
            Bucket(database, "bodies"),
            repos.users,
        ),
    )
