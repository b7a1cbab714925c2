"""The typed records the message store answers with, and its two time helpers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .documents import MessageBody


@dataclass(frozen=True)
class AddedMessage:
    id: str
    uid: int
    modseq: int
    mailbox: str
    size: int
    thread: str


@dataclass(frozen=True)
class FlagChange:
    id: str
    uid: int
    modseq: int
    flags: list[str]
    #: False when the flags already were as asked (nothing written)
    changed: bool


@dataclass(frozen=True)
class MovedMessage:
    id: str
    source: str
    source_uid: int
    mailbox: str
    uid: int
    modseq: int


@dataclass(frozen=True)
class DeletedMessage:
    id: str
    mailbox: str
    uid: int
    modseq: int
    archived: bool


@dataclass(frozen=True)
class UidFlags:
    """A message's place and flags in its mailbox (the uid/flags index IMAP keeps)."""

    id: str
    uid: int
    modseq: int
    flags: list[str]


@dataclass(frozen=True)
class ReadMessage:
    """One message to show: its stored detail fields and the body rendered from it."""

    #: the stored message with the detail fields (docs/mail-store.md); flags as they are now
    message: dict[str, Any]
    body: MessageBody
