"""The typed records the message store answers with, and its two time helpers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime


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


def epoch_ms(when: datetime) -> int:
    """Expiry times (`rdate`) are epoch milliseconds, as WildDuck stores them."""
    return int(when.timestamp() * 1000)


def utcnow() -> datetime:
    # BSON dates hold milliseconds: truncate so that what we return equals what is stored
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)
