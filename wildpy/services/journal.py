"""The change journal: every change to a user's mailboxes and messages, as ordered events.

Writers call `record` after a change; readers (`/updates`, later IMAP IDLE) follow a user's events
with `since`/`wait` or, for a long-lived stream, a `JournalListener`. Delivery works across
processes without Redis or change streams (storage.md: `watch()` never delivers on the embedded
server): a waiting reader polls the collection every `poll_interval` seconds, and a writer in the
same process wakes its readers at once. Concurrent writers' events go to the database together,
one insert per group (`enqueue`: group commit); each `record` returns once its own are stored.

Order and event ids. An event's id is its `_id` (an ObjectId as hex). Events are ordered by
`(created, _id)`, where `created` is the writer's clock in milliseconds: ObjectIds only carry whole
seconds, and within a second ids from two processes compare by their random process bytes, so an
id-only cursor could skip another process's event for good. Within a process, ids break ties in
write order.

One race remains with any cursor: an event can become visible after a later one (two concurrent
writers; a slow insert; clocks of two hosts a little apart). A `JournalListener` therefore
re-reads the last `LOOKBACK` of events on every poll and skips the ids it already delivered, so
such an event is still delivered, late but once. `since`/`wait` are the stateless form: strictly
after the given event, no look-back.

Doors read typed events (services/events.py) through `subscribe`: from an event id, from a
mailbox's modseq, or from now; optionally only one mailbox, optionally with the mailboxes'
counters after events that change them. With `[dbs] redis` set, writers also publish a note per
user through Redis (journal_notify.py) so that readers in other processes wake at once instead of
at their next poll.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bson import ObjectId

from wildpy.clock import utcnow
from wildpy.storage.database import Document, new_id
from wildpy.storage.journal import JOURNAL_TTL_SECONDS, Journal
from wildpy.storage.mailboxes import Mailboxes

from .events import ChangeEvent, CountersChanged, counted_mailboxes, decode_all, encode
from .group_commit import GroupCommit
from .journal_notify import JournalNotifier, LocalNotifier

#: how often a waiting reader looks for events written by other processes
POLL_INTERVAL = 0.25
#: how late an event may become visible and still reach a listener that has moved past it
LOOKBACK = timedelta(seconds=2)
#: events read per query; a listener that gets a full batch reads on without look-back
BATCH = 500


@dataclass(frozen=True, order=True)
class Position:
    """Where an event sits in a user's journal."""

    created: datetime
    id: str

    @classmethod
    def of(cls, event: Document) -> Position:
        return cls(event["created"], str(event["_id"]))


class JournalService:
    def __init__(
        self,
        journal: Journal,
        mailboxes: Mailboxes,
        *,
        poll_interval: float = POLL_INTERVAL,
        notifier: JournalNotifier | None = None,
    ) -> None:
        self._journal = journal
        self._mailboxes = mailboxes
        self.poll_interval = poll_interval
        #: how other processes learn of this one's events (and this one of theirs)
        self.notifier = notifier or LocalNotifier()
        self.notifier.start(self._wake)
        #: readers of this process waiting for a user's next event, woken by `record`
        self._waiters: dict[str, set[asyncio.Event]] = {}
        #: every writer's events, written in groups (one key: a single sequence of writes)
        self._writes: GroupCommit[None, list[Document], None] = GroupCommit(self._write)

    # ------------------------------------------------------------------------------ writing

    async def record_events(self, user: str, events: Sequence[ChangeEvent]) -> list[str]:
        """Store typed events of one user, in order (events.py `encode`); their ids."""
        ids, written = self.enqueue_events(user, events)
        await written
        return ids

    def enqueue_events(
        self, user: str, events: Sequence[ChangeEvent]
    ) -> tuple[list[str], Awaitable[None]]:
        """`enqueue` for typed events: queued at once, in order, stored with the next group."""
        for event in events:
            if event.user != user:
                raise ValueError(f"an event of {event.user} in the journal of {user}")
        return self.enqueue(user, [encode(event) for event in events])

    async def record(self, user: str, mailbox: str, command: str, **fields: Any) -> str:
        """Write one event and return its id. Fields given as None are left out."""
        ids = await self.record_many(user, [{"mailbox": mailbox, "command": command, **fields}])
        return ids[0]

    async def record_many(self, user: str, events: Sequence[Mapping[str, Any]]) -> list[str]:
        """Write several events of one user, in order; their ids once they are stored."""
        ids, written = self.enqueue(user, events)
        await written
        return ids

    def enqueue(
        self, user: str, events: Sequence[Mapping[str, Any]]
    ) -> tuple[list[str], Awaitable[None]]:
        """Queue events for the next group write and return their ids at once, with what to
        await for them to be stored.

        Group commit (wildpy/services/group_commit.py): events queued while a write is in
        flight go out together in the next one, one `insert_many` for all writers. Ids and
        `created` are taken here, in the caller's order, and groups are written one after the
        other in that same order, so `(created, _id)` order is the order of `enqueue` calls
        and an event never becomes visible before one enqueued earlier in this process.
        Synchronous so that a writer can order its events against others' (EXISTS in uid
        order) without giving up the event loop in between.
        """
        if not events:
            done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            done.set_result(None)
            return [], done
        created = utcnow()
        documents = [
            {
                "_id": new_id(),
                "user": user,
                **{key: value for key, value in event.items() if value is not None},
                "created": created,
            }
            for event in events
        ]
        return [document["_id"] for document in documents], self._writes.submit(None, documents)

    async def _write(self, _: None, groups: list[list[Document]]) -> list[BaseException | None]:
        """One insert for the events of every writer in the group."""
        documents = [document for group in groups for document in group]
        failed = await self._journal.insert_each(documents)
        outcomes: list[BaseException | None] = []
        start = 0
        for group in groups:
            errors = [error for error in failed[start : start + len(group)] if error is not None]
            start += len(group)
            outcomes.append(errors[0] if errors else None)
        users = {group[0]["user"] for group in groups}
        for user in users:
            self._wake(user)
        self.notifier.notify(users)
        return outcomes

    # ------------------------------------------------------------------------------ reading

    async def latest(self, user: str) -> Position | None:
        """The position of the user's newest event, or None when there is none."""
        row = await self._journal.newest(user)
        return Position.of(row) if row is not None else None

    async def position(self, user: str, event_id: str) -> Position:
        """The position of one of the user's events, by id.

        An event that expired (or never existed) still marks a point in time: its id's own
        timestamp, so a client resuming after a long absence gets what is left after it.
        """
        event = await self._journal.created_of(user, event_id)
        if event is not None:
            return Position.of(event)
        return Position(ObjectId(event_id).generation_time, event_id)

    async def since(self, user: str, after_id: str | None, limit: int = BATCH) -> list[Document]:
        """The user's events after `after_id` (from the oldest kept when None), oldest first."""
        start = await self.position(user, after_id) if after_id else None
        return await self.read_after(user, start, limit)

    # the contract names the parameter `timeout`; it bounds a poll loop, not one await
    async def wait(
        self,
        user: str,
        after_id: str | None,
        timeout: float,  # noqa: ASYNC109
    ) -> list[Document]:
        """The events after `after_id`, waiting up to `timeout` seconds for the first one;
        [] when none came."""
        start = await self.position(user, after_id) if after_id else None
        deadline = time.monotonic() + timeout
        while True:
            events = await self.read_after(user, start, BATCH)
            remaining = deadline - time.monotonic()
            if events or remaining <= 0:
                return events
            await self.pause(user, min(self.poll_interval, remaining))

    async def listen(self, user: str, after_id: str | None = None) -> JournalListener:
        """A listener for the user's events after `after_id`, or after the newest one now."""
        start = await self.position(user, after_id) if after_id else await self.latest(user)
        return JournalListener(self, user, start)

    async def read_after(
        self, user: str, start: Position | None, limit: int = BATCH
    ) -> list[Document]:
        """The user's events strictly after `start` (all when None), oldest first."""
        if start is None:
            return await self._journal.after(user, None, None, limit)
        return await self._journal.after(user, start.created, start.id, limit)

    async def read_window(self, user: str, since: datetime, limit: int = BATCH) -> list[Document]:
        """The user's events written at `since` or later, oldest first."""
        return await self._journal.written_since(user, since, limit)

    # ------------------------------------------------------------------------------ typed

    async def subscribe(
        self,
        user: str,
        *,
        after: str | None = None,
        mailbox: str | None = None,
        modseq: int | None = None,
        counters: bool = False,
    ) -> Subscription:
        """Follow the user's changes as typed events, each delivered once, in order.

        Starts after the event `after`; or, with `modseq` (and `mailbox`), after the mailbox's
        last change at or below that modseq, which is where an IMAP client that last saw
        HIGHESTMODSEQ `modseq` resumes (RFC 7162 3.1); else from now. The starting point is
        fixed when this returns, so nothing written afterwards is missed. `mailbox` keeps only
        that mailbox's events; `counters` adds a `CountersChanged` per mailbox after events that
        may change its total or unseen count.
        """
        if modseq is not None:
            if mailbox is None:
                raise ValueError("a modseq is a position in one mailbox: name the mailbox")
            row = await self._journal.last_up_to_modseq(user, mailbox, modseq)
            start = Position.of(row) if row is not None else None
            listener = JournalListener(self, user, start)
        else:
            listener = await self.listen(user, after)
        return Subscription(self, listener, mailbox=mailbox, counters=counters)

    async def counters_of(self, user: str, mailbox_ids: set[str], at: str) -> list[ChangeEvent]:
        """`CountersChanged` for each mailbox named, as of the event `at`."""
        now = utcnow()
        return [
            CountersChanged(id=at, user=user, mailbox=row["mailbox"], created=now, **_totals(row))
            for row in await self._mailboxes.counts(user, mailbox_ids)
        ]

    # ------------------------------------------------------------------------------ waiting

    async def pause(self, user: str, seconds: float, stop: asyncio.Event | None = None) -> None:
        """Sleep up to `seconds`, less when this process records an event for `user` or `stop`
        is set."""
        woken = asyncio.Event()
        waiters = self._waiters.setdefault(user, set())
        waiters.add(woken)
        waits = [asyncio.ensure_future(woken.wait())]
        if stop is not None:
            waits.append(asyncio.ensure_future(stop.wait()))
        try:
            await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()
            waiters.discard(woken)
            if not waiters:
                self._waiters.pop(user, None)

    def readers_waiting(self, user: str) -> int:
        """How many readers of this process wait for the user's next event right now."""
        return len(self._waiters.get(user, ()))

    def _wake(self, user: str) -> None:
        for woken in self._waiters.get(user, ()):
            woken.set()

    # ------------------------------------------------------------------------------ upkeep

    async def purge_expired(self) -> int:
        """Drop events older than the journal's TTL (the janitor calls this)."""
        return await self._journal.purge_before(utcnow() - timedelta(seconds=JOURNAL_TTL_SECONDS))

    async def close(self) -> None:
        """Stop listening for other processes' notes (the runtime calls this last)."""
        await self.notifier.close()


def _totals(row: Document) -> dict[str, int]:
    return {"total": int(row["total"]), "unseen": int(row["unseen"])}


class JournalListener:
    """Follows one user's journal from a starting point, delivering each event once."""

    def __init__(self, journal: JournalService, user: str, start: Position | None) -> None:
        self._journal = journal
        self.user = user
        #: events at or before this were there before the listener started
        self._floor = start
        #: the newest event delivered (or the start)
        self._cursor = start
        #: ids delivered within the look-back window, so a re-read does not repeat them
        self._seen: dict[str, datetime] = {}
        #: the last read was a full batch: read on strictly after the cursor until caught up
        self._catching_up = False

    @property
    def last_id(self) -> str | None:
        return self._cursor.id if self._cursor is not None else None

    async def poll(self) -> list[Document]:
        """The events that arrived since the last poll (one query)."""
        cursor = self._cursor
        if cursor is None:
            rows = await self._journal.read_after(self.user, None, BATCH)
        elif self._catching_up:
            rows = await self._journal.read_after(self.user, cursor, BATCH)
        else:
            rows = await self._journal.read_window(self.user, cursor.created - LOOKBACK, BATCH)
        self._catching_up = len(rows) == BATCH
        fresh = []
        for row in rows:
            position = Position.of(row)
            if position.id in self._seen or (self._floor is not None and position <= self._floor):
                continue
            fresh.append(row)
            self._seen[position.id] = position.created
            if self._cursor is None or position > self._cursor:
                self._cursor = position
        if self._cursor is not None:
            horizon = self._cursor.created - LOOKBACK
            self._seen = {ident: at for ident, at in self._seen.items() if at >= horizon}
        return fresh

    async def next(self, seconds: float, stop: asyncio.Event | None = None) -> list[Document]:
        """The next events, waiting up to `seconds` for them; [] if none came or `stop` is set."""
        deadline = time.monotonic() + seconds
        while True:
            events = await self.poll()
            remaining = deadline - time.monotonic()
            if events or remaining <= 0 or (stop is not None and stop.is_set()):
                return events
            await self._journal.pause(self.user, min(self._journal.poll_interval, remaining), stop)


class Subscription:
    """A door's view of one user's changes: typed events, each once, in journal order."""

    def __init__(
        self,
        journal: JournalService,
        listener: JournalListener,
        *,
        mailbox: str | None,
        counters: bool,
    ) -> None:
        self._journal = journal
        self._listener = listener
        self.mailbox = mailbox
        self.counters = counters

    @property
    def user(self) -> str:
        return self._listener.user

    @property
    def last_id(self) -> str | None:
        """The id of the last stored event delivered (or of the starting point)."""
        return self._listener.last_id

    async def next(self, seconds: float, stop: asyncio.Event | None = None) -> list[ChangeEvent]:
        """The next events, waiting up to `seconds` for them; [] if none came or `stop` is set."""
        deadline = time.monotonic() + seconds
        while True:
            remaining = max(0.0, deadline - time.monotonic())
            events = decode_all(await self._listener.next(remaining, stop))
            if self.mailbox is not None:
                events = [event for event in events if event.mailbox == self.mailbox]
            if events or time.monotonic() >= deadline or (stop is not None and stop.is_set()):
                break
        counted = counted_mailboxes(events) if self.counters else set()
        if counted and self.last_id is not None:
            events.extend(await self._journal.counters_of(self.user, counted, self.last_id))
        return events
