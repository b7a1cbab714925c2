"""Conversation threads: which thread a new message joins (reference section 6.3, `threads`).

As WildDuck: a message joins the thread that shares one of its reference ids (Message-ID,
In-Reply-To, References, Thread-Index; stored as SHA-1 base64 digests) *and* its normalised
subject, so that a reused References header on an unrelated subject starts a new thread.
Fallback: a reply (a "Re:"-style subject, In-Reply-To or References) whose references match
nothing, because the message it answers is not stored here, joins the most recent thread with
the same normalised subject if that thread saw a message within `SUBJECT_WINDOW_MS`.

Storage differs from WildDuck's one document per thread with an `ids` array: a lookup by array
element (`ids: {$in: [...]}`) cannot use an index on the embedded server (a full scan per added
message), so each key is its own small document, found by `_id`:

- `<user>:r:<reference digest>` -> `{thread, subject}`: the thread a reference id belongs to;
- `<user>:s:<subject digest>` -> `{thread, updated}`: the latest thread with that subject.

For a reply, finding the thread is one query (`_id: {$in: keys}`) and recording the new keys
one bulk write, which the message store sends alongside the message insert. A message that is
no reply (most mail) needs one bulk write for both (`resolve`). `updated` is epoch
milliseconds, like the messages' `rdate`.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
from collections.abc import Awaitable
from dataclasses import dataclass, field

from wildpy.clock import epoch_ms
from wildpy.mime import ParsedMessage, ThreadHeaders
from wildpy.services.group_commit import GroupCommit
from wildpy.storage.database import Document, new_id
from wildpy.storage.messages import (
    KeyWrite,
    Threads,
    key_if_missing,
    point_subject_key,
    repoint_key,
)

#: how many reference ids a thread lookup uses (WildDuck: 10)
MAX_REFERENCE_IDS = 10
#: a reply found by subject alone only joins a thread active this recently (ms)
SUBJECT_WINDOW_MS = 30 * 24 * 3600 * 1000

# "Re:", "RE :", "Fwd:", "Fw:", "Re[2]:", "AW:", "SV:", "Antw:", "Vs:", "Tr:" and list tags
_PREFIX = re.compile(
    r"^\s*(?:(?:re|fwd?|aw|sv|vs|antw|wg|tr|rif|odp|ynt)\s*(?:\[\d+\]|\(\d+\))?\s*:"
    r"|\[[^\]]{1,64}\])",
    re.IGNORECASE,
)
_SUFFIX = re.compile(r"\s*\(fwd\)\s*$", re.IGNORECASE)


def normalize_subject(subject: str) -> tuple[str, bool]:
    """The subject without reply/forward prefixes and list tags, whitespace collapsed, casefolded;
    and whether a reply/forward marker was removed."""
    text = " ".join(subject.split())
    marked = False
    while True:
        stripped = _SUFFIX.sub("", _PREFIX.sub("", text, count=1)).strip()
        if stripped == text:
            break
        if not text.lstrip().startswith("["):
            marked = True
        text = stripped
    return text.casefold(), marked


def reference_ids(message: ParsedMessage | ThreadHeaders) -> list[str]:
    """Hashed Message-ID, In-Reply-To, Thread-Index and References, de-duplicated, in order."""
    headers = message if isinstance(message, ThreadHeaders) else ThreadHeaders.of(message)
    values: list[str] = []
    if headers.message_id:
        values.append(headers.message_id)
    if headers.in_reply_to:
        values.append(headers.in_reply_to)
    if headers.thread_index is not None:
        # Outlook: the first 22 base64 characters identify the conversation
        values.append(headers.thread_index[:22])
    values.extend(headers.references)
    out: dict[str, None] = {}
    for value in values:
        for token in value.split():
            token = token.strip("<>").strip()
            if token:
                out.setdefault(_digest(token), None)
    return list(out)[:MAX_REFERENCE_IDS]


def _digest(value: str) -> str:
    digest = hashlib.sha1(value.encode("utf-8", "replace"), usedforsecurity=False).digest()
    return base64.b64encode(digest).decode().rstrip("=")


@dataclass(frozen=True)
class ThreadChoice:
    """The thread of a new message, and the key documents to record once it is stored."""

    id: str
    #: reference keys not yet known: inserted pointing at `id`
    new_keys: list[Document] = field(default_factory=list)
    #: the subject key, pointed at `id` (None when the subject is empty)
    subject_key: str | None = None
    #: the keys are stored already (`resolve`): `record` has nothing left to do
    written: bool = False


class ThreadService:
    def __init__(self, threads: Threads) -> None:
        self._threads = threads
        #: the key upserts of concurrent `resolve` calls go out as one bulk write
        self._upserts: GroupCommit[None, list[KeyWrite], set[int]] = GroupCommit(
            self._upsert_groups
        )

    async def choose(self, user_id: str, parsed: ParsedMessage | ThreadHeaders) -> ThreadChoice:
        """The thread for `parsed` (one query); nothing is written until `record`."""
        ids = reference_ids(parsed)
        subject, marked = normalize_subject(parsed.subject)
        is_reply = marked or bool(parsed.in_reply_to) or bool(parsed.references)
        reference_keys = [f"{user_id}:r:{digest}" for digest in ids]
        subject_key = f"{user_id}:s:{_digest(subject)}" if subject else None
        keys = reference_keys + ([subject_key] if subject_key and is_reply else [])
        found = {}
        if keys:
            found = await self._threads.keys(keys)
        thread: str | None = None
        for key in reference_keys:  # in order: own Message-ID, In-Reply-To, then References
            row = found.get(key)
            if row is not None and row.get("subject") == subject:
                thread = str(row["thread"])
                break
        if thread is None and subject_key and is_reply:
            row = found.get(subject_key)
            if row is not None and epoch_ms() - int(row.get("updated", 0)) <= SUBJECT_WINDOW_MS:
                thread = str(row["thread"])
        thread = thread or new_id()
        now = epoch_ms()
        new_keys = [
            {"_id": key, "user": user_id, "thread": thread, "subject": subject, "updated": now}
            for key in reference_keys
            if key not in found
        ]
        return ThreadChoice(thread, new_keys, subject_key)

    def resolve(
        self, user_id: str, parsed: ParsedMessage | ThreadHeaders
    ) -> asyncio.Future[ThreadChoice]:
        """`choose` and `record` in one, in one round trip for a message that is no reply.

        Such a message joins an existing thread only through its own reference ids (its
        Message-ID, a Thread-Index): when a reply to it was stored first, or it is stored a
        second time. That is rare, so its keys are written first, pointing at a new thread
        (reference keys only where missing, `$setOnInsert`), and read back only when one
        already existed; the keys then move to the thread found (two more round trips, rare).
        A reply needs its lookup first: `choose` now, `record` alongside the message insert.
        The keys a choice created go again with `discard`.

        Not a coroutine: the work is under way when this returns (its command goes out as
        soon as the caller yields), so the caller can do CPU work while it travels. Given
        `thread_headers(raw)`, it need not wait for the message to be parsed either.
        """
        subject, marked = normalize_subject(parsed.subject)
        if marked or parsed.in_reply_to or parsed.references:
            return asyncio.ensure_future(self.choose(user_id, parsed))
        reference_keys = [f"{user_id}:r:{digest}" for digest in reference_ids(parsed)]
        subject_key = f"{user_id}:s:{_digest(subject)}" if subject else None
        thread, now = new_id(), epoch_ms()
        fields = {"user": user_id, "thread": thread, "subject": subject, "updated": now}
        operations = [key_if_missing(key, fields) for key in reference_keys]
        if subject_key is not None:
            operations.append(point_subject_key(subject_key, user_id, thread, now))
        upserted = self._upserts.submit(None, operations) if operations else None
        return asyncio.ensure_future(
            self._settle(user_id, upserted, thread, subject, reference_keys, subject_key)
        )

    async def _settle(
        self,
        user_id: str,
        upserted: Awaitable[set[int]] | None,
        thread: str,
        subject: str,
        reference_keys: list[str],
        subject_key: str | None,
    ) -> ThreadChoice:
        """The end of `resolve`: which keys it created, and the thread an existing one names."""
        inserted = await upserted if upserted is not None else set()
        created = [key for index, key in enumerate(reference_keys) if index in inserted]
        existing = [key for key in reference_keys if key not in created]
        if existing:
            found = await self._threads.keys(existing)
            for key in reference_keys:  # in order, as `choose`
                row = found.get(key)
                if row is not None and row.get("subject") == subject:
                    joined = str(row["thread"])
                    await self._join(user_id, joined, thread, created, subject_key)
                    thread = joined
                    break
        new_keys = [{"_id": key, "thread": thread} for key in created]
        return ThreadChoice(thread, new_keys, subject_key, written=True)

    async def _join(
        self,
        user_id: str,
        thread: str,
        provisional: str,
        created: list[str],
        subject_key: str | None,
    ) -> None:
        """Point the keys just written for `provisional` at the existing `thread` instead."""
        operations = [repoint_key(key, provisional, thread) for key in created]
        if subject_key is not None:
            operations.append(point_subject_key(subject_key, user_id, thread, epoch_ms()))
        await self._threads.write(operations)

    async def _upsert_groups(
        self, _: None, groups: list[list[KeyWrite]]
    ) -> list[set[int] | BaseException]:
        """The upserts of several `resolve` calls in one bulk write; for each call, the
        positions of its operations that inserted a document."""
        inserted = await self._threads.upsert([op for group in groups for op in group])
        outcomes: list[set[int] | BaseException] = []
        start = 0
        for group in groups:
            outcomes.append({i - start for i in inserted if start <= i < start + len(group)})
            start += len(group)
        return outcomes

    async def record(self, user_id: str, choice: ThreadChoice) -> None:
        """Store the keys of `choice`: one round trip, as all are updates (a bulk write sends
        inserts and updates as separate commands). A reference key only gets inserted
        (`$setOnInsert`): if a concurrent add created it first, that one stands."""
        if choice.written:
            return
        operations = [
            key_if_missing(doc["_id"], {k: v for k, v in doc.items() if k != "_id"})
            for doc in choice.new_keys
        ]
        if choice.subject_key is not None:
            operations.append(point_subject_key(choice.subject_key, user_id, choice.id, epoch_ms()))
        await self._threads.write(operations)

    async def discard(self, choice: ThreadChoice) -> None:
        """Undo `record` for a message that was not stored after all: its reference keys go
        (those still pointing at its thread); a subject key left behind is harmless."""
        keys = [doc["_id"] for doc in choice.new_keys]
        if keys:  # nothing to do (no round trip) for a choice that created no keys
            await self._threads.remove_keys(keys, choice.id)

    async def drop_older_than(self, cutoff_ms: int) -> int:
        """Forget keys not touched since `cutoff_ms` (WildDuck keeps threads 180 days)."""
        return await self._threads.drop_older_than(cutoff_ms)
