"""The MongoDB client, its logical databases, round-trip counting and driver-error translation.

Every repository reaches MongoDB through a `Database`. Driver errors are turned into catalogue
errors here and only here: a lost server becomes `InternalDatabaseError` (503, retry later), a
unique-index violation becomes `AlreadyExists` for the service to name.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar

from bson import ObjectId
from pymongo import AsyncMongoClient, monitoring
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import (
    AutoReconnect,
    ConnectionFailure,
    DuplicateKeyError,
    ExecutionTimeout,
    NetworkTimeout,
    PyMongoError,
    ServerSelectionTimeoutError,
    WriteConcernError,
)

from wildpy.errors import InternalDatabaseError, InternalError

log = logging.getLogger("wildpy.storage")

Document = dict[str, Any]

P = ParamSpec("P")
R = TypeVar("R")

# how long a request waits for an unreachable server before answering 503
SERVER_SELECTION_TIMEOUT_MS = 2500


class AlreadyExists(Exception):
    """A unique index refused a write; the service turns it into the catalogue's ...Exists code."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def new_id() -> str:
    """A new document id: an ObjectId as 24 lowercase hex characters (storage.md)."""
    return str(ObjectId())


def is_id(value: object) -> bool:
    return isinstance(value, str) and len(value) == 24 and ObjectId.is_valid(value)


class CommandCounter(monitoring.CommandListener):
    """Counts the commands the driver sends: the benchmarks print round trips per operation."""

    def __init__(self) -> None:
        self.count = 0
        self.by_name: dict[str, int] = {}

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.count += 1
        self.by_name[event.command_name] = self.by_name.get(event.command_name, 0) + 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass

    def reset(self) -> None:
        self.count = 0
        self.by_name.clear()


class Database:
    """One client and the three logical databases wildpy uses.

    Several logical databases keep one slow query on the embedded server from blocking the others
    (storage.md); on MongoDB they cost nothing.
    """

    def __init__(self, uri: str, prefix: str) -> None:
        self.commands = CommandCounter()
        self.client: AsyncMongoClient[Document] = AsyncMongoClient(
            uri,
            serverSelectionTimeoutMS=SERVER_SELECTION_TIMEOUT_MS,
            connectTimeoutMS=SERVER_SELECTION_TIMEOUT_MS,
            event_listeners=[self.commands],
            tz_aware=True,
        )
        self.users: AsyncDatabase[Document] = self.client[f"{prefix}-users"]
        self.mail: AsyncDatabase[Document] = self.client[prefix]
        self.attachments: AsyncDatabase[Document] = self.client[f"{prefix}-attachments"]

    async def ping(self) -> None:
        await guarded(self.client.admin.command)("ping")

    async def close(self) -> None:
        await self.client.close()

    async def drop_all(self) -> None:
        """Drop the three logical databases (tests only)."""
        for db in (self.users, self.mail, self.attachments):
            await self.client.drop_database(db.name)


def translate(exc: PyMongoError) -> Exception:
    """The catalogue error (or AlreadyExists) for a driver error."""
    if isinstance(exc, DuplicateKeyError):
        details = exc.details or {}
        key = ",".join(details.get("keyPattern", {}) or {}) or str(details.get("errmsg", ""))
        return AlreadyExists(key)
    unavailable = (
        ServerSelectionTimeoutError,
        AutoReconnect,
        ConnectionFailure,
        NetworkTimeout,
        ExecutionTimeout,
        WriteConcernError,
    )
    if isinstance(exc, unavailable):
        log.warning("database unavailable: %s", type(exc).__name__)
        return InternalDatabaseError()
    log.error("database command failed: %s", exc)
    return InternalError("Database command failed")


def guarded(call: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Wrap an async database call so driver errors come out as catalogue errors."""

    @functools.wraps(call)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await call(*args, **kwargs)
        except PyMongoError as exc:
            raise translate(exc) from exc

    return wrapper


class Repository:
    """Base of the per-collection repositories: every public coroutine is `guarded`.

    Doing it here, once, is what keeps driver errors from leaking out of storage/.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name, value in list(vars(cls).items()):
            if name.startswith("_") or not callable(value):
                continue
            if inspect.iscoroutinefunction(value):
                setattr(cls, name, guarded(value))
