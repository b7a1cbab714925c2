"""What the message store is configured with: sizes and times (config/default.toml `[store]`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

MIB = 1024 * 1024
#: how often a conditional change that lost a race is retried before giving up
MAX_ATTEMPTS = 20


@dataclass(frozen=True)
class StoreSettings:
    #: largest message accepted, in bytes (PayloadTooLarge above)
    max_size: int = 25 * MIB
    #: attachments whose encoded body is at least this big are stored once and shared
    min_attachment: int = 16 * 1024
    #: raw pieces above this total go to a `bodies` file instead of the message document
    inline_body_limit: int = MIB
    #: how long a deleted message stays restorable in `archived`
    archive_time: timedelta = timedelta(days=30)
    #: how long an expired or purged message answers MessageGone (410)
    tombstone_time: timedelta = timedelta(days=30)
    #: thread keys unused this long are forgotten
    thread_time: timedelta = timedelta(days=180)
    #: messages at least this big are parsed in a worker thread, off the event loop
    thread_parse: int = 256 * 1024
