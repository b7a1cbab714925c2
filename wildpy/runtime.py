"""The running system: database (embedded when none is configured), repositories and services.

`open_runtime(config)` is the one place that builds and tears down everything a process needs;
the host (wildpy/host.py) opens it once for every door and worker, the CLI for one command.
"""

from __future__ import annotations

import contextlib
import logging
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass

from wildpy.config import Config
from wildpy.counters import Counters, open_counters
from wildpy.datadir import prepare_data_dir, write_private
from wildpy.roles import Roles
from wildpy.services.addresses import AddressService
from wildpy.services.auth import AuthService
from wildpy.services.delivery import DeliveryService
from wildpy.services.domainaliases import DomainAliasService
from wildpy.services.files import FileService
from wildpy.services.journal import JournalService
from wildpy.services.journal_notify import open_notifier
from wildpy.services.mailboxes import MailboxService
from wildpy.services.messages import MessageService, StoreSettings
from wildpy.services.purge import AccountPurge
from wildpy.services.tasks import TaskService
from wildpy.services.tokens import TokenService
from wildpy.services.users import UserService
from wildpy.storage import accounts
from wildpy.storage import messages as message_store
from wildpy.storage.blobs import AttachmentRefs, AttachmentStore, Bucket
from wildpy.storage.collection import Collection
from wildpy.storage.database import Database
from wildpy.storage.embedded import DataDirInUse, EmbeddedMongo
from wildpy.storage.files import StorageFiles
from wildpy.storage.journal import Journal
from wildpy.storage.mailboxes import Mailboxes
from wildpy.storage.tasks import Tasks
from wildpy.store.bundle import MessageApi, build_message_api
from wildpy.store.retention import RetentionJob
from wildpy.store.settings import settings_from_config
from wildpy.store.threads import ThreadService
from wildpy.tls import TlsProvider

log = logging.getLogger("wildpy")


@dataclass
class Repositories:
    users: accounts.Users
    deleted_users: accounts.DeletedUsers
    addresses: accounts.Addresses
    domain_aliases: accounts.DomainAliases
    tokens: accounts.AccessTokens
    address_register: accounts.AddressRegister
    auth_log: accounts.AuthLog
    mailboxes: Mailboxes
    journal: Journal
    storage_files: StorageFiles
    messages: message_store.Messages
    archived: message_store.Archived
    threads: message_store.Threads
    tombstones: message_store.Tombstones
    attachment_refs: AttachmentRefs
    tasks: Tasks

    @classmethod
    def build(cls, db: Database) -> Repositories:
        return cls(
            users=accounts.Users(db),
            deleted_users=accounts.DeletedUsers(db),
            addresses=accounts.Addresses(db),
            domain_aliases=accounts.DomainAliases(db),
            tokens=accounts.AccessTokens(db),
            address_register=accounts.AddressRegister(db),
            auth_log=accounts.AuthLog(db),
            mailboxes=Mailboxes(db),
            journal=Journal(db),
            storage_files=StorageFiles(db),
            messages=message_store.Messages(db),
            archived=message_store.Archived(db),
            threads=message_store.Threads(db),
            tombstones=message_store.Tombstones(db),
            attachment_refs=AttachmentRefs(db),
            tasks=Tasks(db),
        )

    def all(self) -> list[Collection]:
        return [value for value in vars(self).values() if isinstance(value, Collection)]

    async def ensure_indexes(self) -> None:
        for repository in self.all():
            await repository.ensure_indexes()


@dataclass
class Runtime:
    config: Config
    database: Database
    repositories: Repositories
    counters: Counters
    roles: Roles
    users: UserService
    addresses: AddressService
    domain_aliases: DomainAliasService
    tokens: TokenService
    auth: AuthService
    journal: JournalService
    mailboxes: MailboxService
    files: FileService
    messages: MessageService
    retention: RetentionJob
    #: listings, search, changes by UID set, uploads and the archive of the REST API
    message_api: MessageApi
    purge: AccountPurge
    #: received mail to local users (the SMTP and LMTP doors)
    delivery: DeliveryService
    #: the TLS context every door takes (STARTTLS on SMTP and LMTP)
    tls: TlsProvider
    #: background tasks (POST /quota/reset), run by the janitor
    tasks: TaskService
    #: the embedded server, when this process started one
    embedded: EmbeddedMongo | None = None


def build_runtime(config: Config, database: Database, counters: Counters, roles: Roles) -> Runtime:
    repos = Repositories.build(database)
    journal = JournalService(
        repos.journal,
        repos.mailboxes,
        poll_interval=(
            config.journal.poll_interval_with_redis
            if config.dbs.redis
            else config.journal.poll_interval
        ),
        notifier=open_notifier(config.dbs.redis),
    )
    # the message service is attached below as `mailboxes.messages`: it needs the mailboxes
    # and the mailbox service needs it (deleting a mailbox removes its messages and quota)
    mailboxes = MailboxService(repos.mailboxes, repos.users, journal)
    domain_aliases = DomainAliasService(repos.domain_aliases)
    addresses = AddressService(repos.addresses, domain_aliases, repos.users, repos.address_register)
    users = UserService(
        repos.users,
        repos.deleted_users,
        repos.tokens,
        addresses,
        counters,
        email_domain=config.email_domain or default_email_domain(),
        mailboxes=mailboxes,
        messages=repos.messages,
    )
    tokens = TokenService(
        repos.tokens, repos.users, ttl=config.api.token_ttl, lifetime=config.api.token_lifetime
    )
    messages = build_message_service(
        database, repos, journal, settings=settings_from_config(config.store)
    )
    mailboxes.messages = messages
    files = FileService(repos.storage_files, repos.users)
    return Runtime(
        config=config,
        database=database,
        repositories=repos,
        counters=counters,
        roles=roles,
        users=users,
        addresses=addresses,
        domain_aliases=domain_aliases,
        tokens=tokens,
        auth=AuthService(repos.users, users, tokens, counters, limits=config.limits),
        files=files,
        journal=journal,
        mailboxes=mailboxes,
        messages=messages,
        retention=RetentionJob(messages),
        message_api=build_message_api(database, repos, messages, mailboxes, files),
        delivery=DeliveryService(addresses, repos.users, mailboxes, messages, counters),
        tls=TlsProvider(config.tls),
        tasks=TaskService(repos.tasks, repos.users, users),
        purge=AccountPurge(
            repos.deleted_users,
            messages,
            repos.storage_files,
            repos.mailboxes,
            repos.journal,
            repos.threads,
            repos.tombstones,
            repos.address_register,
        ),
    )


def build_message_service(
    database: Database,
    repos: Repositories,
    journal: JournalService,
    *,
    attachment_bucket: Bucket | None = None,
    settings: StoreSettings | None = None,
) -> MessageService:
    """The message store; tests pass their own `attachment_bucket` to inject storage faults."""
    return MessageService(
        users=repos.users,
        mailboxes=repos.mailboxes,
        messages=repos.messages,
        archived=repos.archived,
        tombstones=repos.tombstones,
        threads=ThreadService(repos.threads),
        attachments=AttachmentStore(
            repos.attachment_refs, attachment_bucket or Bucket(database, "attachments")
        ),
        bodies=Bucket(database, "bodies"),
        journal=journal,
        settings=settings,
    )


def default_email_domain() -> str:
    """The machine's host name, as WildDuck takes it (`os.hostname()`): `getfqdn` would answer
    a resolver's idea of the name, often `localhost` on a machine without DNS for itself."""
    return socket.gethostname().lower() or "localhost"


EMBEDDED_URI_FILE = "embedded.uri"


async def _start_embedded(config: Config, attach: bool) -> tuple[str, EmbeddedMongo | None]:
    """Start the embedded server; or, with `attach`, use the one a running wildpy started."""
    # refuse, in one line, a data directory other users can enter: the database is in there
    prepare_data_dir(config.data_dir)
    embedded = EmbeddedMongo(config.data_dir)
    uri_file = config.data_dir / EMBEDDED_URI_FILE
    try:
        uri = await embedded.astart()
    except DataDirInUse:
        if not attach or not uri_file.exists():
            raise
        # the CLI next to a running server: share its database instead of starting another
        return uri_file.read_text().strip(), None
    # 0600 like everything else in the (checked 0700) data directory
    write_private(uri_file, uri + "\n")
    log.info("embedded database started on %s (data in %s)", uri, config.data_dir)
    return uri, embedded


@contextlib.asynccontextmanager
async def open_runtime(
    config: Config, *, ensure_indexes: bool = True, attach: bool = False
) -> AsyncIterator[Runtime]:
    """Start what `config` asks for, yield the runtime, and stop it all again.

    `attach`: when another wildpy process runs the embedded database of the same data directory,
    use it (the CLI does this); otherwise that is an error.
    """
    roles = Roles.load(config.api.roles)
    embedded: EmbeddedMongo | None = None
    uri = config.dbs.mongo
    if not uri:
        uri, embedded = await _start_embedded(config, attach)
    database = Database(uri, config.dbs.database)
    counters = open_counters(config.dbs.redis)
    runtime = build_runtime(config, database, counters, roles)
    runtime.embedded = embedded
    try:
        if ensure_indexes:
            await runtime.repositories.ensure_indexes()
        yield runtime
    finally:
        await runtime.messages.settle()
        await runtime.journal.close()
        await counters.close()
        await database.close()
        if embedded is not None:
            await embedded.astop()
