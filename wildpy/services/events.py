"""Typed change events: what the change journal says happened to a user's mailboxes and messages.

Every door consumes these, never journal documents: the SSE route today, IMAP IDLE/NOOP, POP3 and
webhooks next (after mox's `store.Change*` types). The journal keeps WildDuck's stored shape
(`command` EXISTS, FETCH, EXPUNGE, CREATE, RENAME, DELETE): writers hand typed events to
`JournalService.record_events`, which stores `encode(event)` and gives each its id and time, and
`decode` turns a stored event back into its type. A move is stored as an EXPUNGE in the source
mailbox that names its target (internal fields `movedTo`/`movedUid`) and an EXISTS in the
target, so a consumer of the source sees `MessageMoved`, which is an expunge too.

`CountersChanged` is not stored: a subscription adds it after events that change a mailbox's
total or unseen count, as WildDuck's /updates stream does.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger("wildpy.events")


#: `created` of an event not stored yet (a writer's event before the journal takes it)
UNSTORED = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, kw_only=True)
class ChangeEvent:
    """Common to every event: its journal id, the user and mailbox, and when it was written.

    A writer leaves `id` and `created` out; the journal fills them in when it stores the event.
    """

    user: str
    mailbox: str
    id: str = ""
    created: datetime = UNSTORED


@dataclass(frozen=True, kw_only=True)
class MessageAdded(ChangeEvent):
    """A message appeared in a mailbox (delivered, appended, copied or moved in): EXISTS."""

    uid: int
    message: str
    modseq: int | None = None
    flags: tuple[str, ...] = ()
    unseen: bool | None = None
    idate: datetime | None = None
    thread: str | None = None


@dataclass(frozen=True, kw_only=True)
class FlagsChanged(ChangeEvent):
    """A message's flags changed: FETCH with the new flags."""

    uid: int
    message: str
    modseq: int | None = None
    flags: tuple[str, ...] = ()
    unseen: bool | None = None


@dataclass(frozen=True, kw_only=True)
class MessageExpunged(ChangeEvent):
    """A message left a mailbox (deleted, expunged, purged): EXPUNGE."""

    uid: int
    message: str
    modseq: int | None = None


@dataclass(frozen=True, kw_only=True)
class MessageMoved(MessageExpunged):
    """A message left this mailbox for `target`, where it has `target_uid` (an EXPUNGE too)."""

    target: str
    target_uid: int


@dataclass(frozen=True, kw_only=True)
class MailboxCreated(ChangeEvent):
    path: str


@dataclass(frozen=True, kw_only=True)
class MailboxRenamed(ChangeEvent):
    #: the new path
    path: str


@dataclass(frozen=True, kw_only=True)
class MailboxDeleted(ChangeEvent):
    path: str


@dataclass(frozen=True, kw_only=True)
class CountersChanged(ChangeEvent):
    """A mailbox's totals after the events before it (not stored; `id` is the last event's)."""

    total: int
    unseen: int


#: journal `command` of each stored event type
COMMANDS: dict[type[ChangeEvent], str] = {
    MessageAdded: "EXISTS",
    FlagsChanged: "FETCH",
    MessageExpunged: "EXPUNGE",
    MessageMoved: "EXPUNGE",
    MailboxCreated: "CREATE",
    MailboxRenamed: "RENAME",
    MailboxDeleted: "DELETE",
}


def encode(event: ChangeEvent) -> dict[str, Any]:
    """The stored fields of `event` in WildDuck's order, without `_id`, `user` and `created`
    (the journal adds those); fields that are None are left out."""
    if isinstance(event, CountersChanged):
        raise ValueError("CountersChanged is computed for readers, never stored")
    document: dict[str, Any] = {"mailbox": event.mailbox, "command": COMMANDS[type(event)]}
    if isinstance(event, MessageAdded | FlagsChanged | MessageExpunged):
        document.update(uid=event.uid, message=event.message, modseq=event.modseq)
    if isinstance(event, MessageAdded | FlagsChanged):
        document.update(flags=list(event.flags), unseen=event.unseen)
    if isinstance(event, MessageAdded):
        document.update(idate=event.idate, thread=event.thread)
    if isinstance(event, MessageMoved):
        document.update(movedTo=event.target, movedUid=event.target_uid)
    if isinstance(event, MailboxCreated | MailboxRenamed | MailboxDeleted):
        document["path"] = event.path
    return {key: value for key, value in document.items() if value is not None}


def decode(document: Mapping[str, Any]) -> ChangeEvent | None:
    """The typed event of one journal document; None (logged) for a command this version does not
    know, so a newer writer in a mixed deployment never breaks an older reader."""
    common: dict[str, Any] = {
        "id": str(document["_id"]),
        "user": str(document["user"]),
        "mailbox": str(document.get("mailbox", "")),
        "created": document["created"],
    }
    command = document.get("command")
    if command in {"EXISTS", "FETCH"}:
        common.update(
            uid=int(document["uid"]),
            message=str(document["message"]),
            modseq=_optional_int(document.get("modseq")),
            flags=tuple(document.get("flags", ())),
            unseen=document.get("unseen"),
        )
        if command == "FETCH":
            return FlagsChanged(**common)
        return MessageAdded(**common, idate=document.get("idate"), thread=document.get("thread"))
    if command == "EXPUNGE":
        common.update(
            uid=int(document["uid"]),
            message=str(document["message"]),
            modseq=_optional_int(document.get("modseq")),
        )
        if document.get("movedTo"):
            return MessageMoved(
                **common, target=str(document["movedTo"]), target_uid=int(document["movedUid"])
            )
        return MessageExpunged(**common)
    if command == "CREATE":
        return MailboxCreated(**common, path=str(document["path"]))
    if command == "RENAME":
        return MailboxRenamed(**common, path=str(document["path"]))
    if command == "DELETE":
        return MailboxDeleted(**common, path=str(document.get("path", "")))
    log.warning("journal event %s has an unknown command %r; skipped", common["id"], command)
    return None


def decode_all(documents: Iterable[Mapping[str, Any]]) -> list[ChangeEvent]:
    return [event for event in map(decode, documents) if event is not None]


def changes_counts(event: ChangeEvent) -> bool:
    """Whether `event` may change its mailbox's total or unseen count: a message in or out, or a
    flag change that carries the message's \\Seen state."""
    if isinstance(event, MessageAdded | MessageExpunged):
        return bool(event.mailbox)
    return isinstance(event, FlagsChanged) and event.unseen is not None


def counted_mailboxes(events: Iterable[ChangeEvent]) -> set[str]:
    """The mailboxes whose counts these events may have changed."""
    return {event.mailbox for event in events if changes_counts(event)}


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)
