"""What the message store is configured with: sizes, times and batch limits.

Every field has a key in config/default.toml `[store]` (`settings_from_config` maps them); the
defaults here are the same values, for stores built without a configuration (tests, bench).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from wildpy.config import StoreConfig

MIB = 1024 * 1024


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
    #: how often a conditional change that lost a race is retried before giving up
    max_attempts: int = 20
    #: most messages one insert carries. The insert is the heaviest write of an add (the
    #: embedded server spends ~0.3 ms on a 6 KB document); small groups keep the server
    #: inserting one group while this process parses the next messages, where big ones make
    #: both sides take turns (16 concurrent adds: 4 -> ~670 adds/s, 8 -> ~640, 2 -> ~550,
    #: unbounded -> ~570)
    insert_group: int = 4
    #: ... and at most about this many bytes of messages
    insert_group_bytes: int = 4 * MIB
    #: documents the retention job handles per batch
    retention_batch: int = 500
    #: batches of each kind per retention run: a run stays bounded with a large backlog
    retention_rounds: int = 20
    #: messages read per batch while a change walks a UID set (PUT/DELETE .../messages)
    uid_set_batch: int = 200
    #: messages of a UID set changed at once
    uid_set_concurrency: int = 8
    #: archived messages read per batch by a date-range restore
    restore_batch: int = 100
    #: thread sizes counted at once for a listing (one indexed count each)
    thread_count_concurrency: int = 8


def settings_from_config(section: StoreConfig) -> StoreSettings:
    """The `[store]` section as the store's settings (times there are in seconds)."""
    return StoreSettings(
        max_size=section.max_size,
        min_attachment=section.min_attachment,
        inline_body_limit=section.inline_body_limit,
        archive_time=timedelta(seconds=section.archive_time),
        tombstone_time=timedelta(seconds=section.tombstone_time),
        thread_time=timedelta(seconds=section.thread_time),
        thread_parse=section.thread_parse,
        max_attempts=section.max_attempts,
        insert_group=section.insert_group,
        insert_group_bytes=section.insert_group_bytes,
        retention_batch=section.retention_batch,
        retention_rounds=section.retention_rounds,
        uid_set_batch=section.uid_set_batch,
        uid_set_concurrency=section.uid_set_concurrency,
        restore_batch=section.restore_batch,
        thread_count_concurrency=section.thread_count_concurrency,
    )
