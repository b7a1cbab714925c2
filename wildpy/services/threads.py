"""Conversation threads: which thread a new message joins (reference section 6.3, `threads`).

As WildDuck: a message joins the thread that shares one of its reference ids (Message-ID,
In-Reply-To, References, Thread-Index; stored as SHA-1 base64 digests) *and* its normalised
subject, so that a reused References header on an unrelated subject starts a new thread.
Fallback: a reply (a "Re:"-style subject, In-Reply-To or References) whose references match
nothing, because the message it answers is not stored here, joins the most recently updated
thread with the same normalised subject, if that thread was active within `SUBJECT_WINDOW_MS`.

`updated` is epoch milliseconds, not a date: the embedded server stores a datetime written by
`$set` as a string, which then no longer compares as a date.
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
from dataclasses import dataclass

from wildpy.mime import ParsedMessage
from wildpy.storage.database import Document, new_id
from wildpy.storage.messages import Threads

#: how many reference ids a thread lookup uses (WildDuck: 10)
MAX_REFERENCE_IDS = 10
#: a reply found by subject alone only joins a thread active this recently (ms)
SUBJECT_WINDOW_MS = 30 * 24 * 3600 * 1000

# "Re:", "RE :", "Fwd:", "Fw:", "Re[2]:", "AW:", "SV:", "Antw:", "Vs:", "Tr:" and list tags
_PREFIX = re.compile(
    r"^\s*(?:(?:re|fwd?|aw|sv|vs|antw|wg|tr|rif|odp|ynt)\s*(?:\[\d+\]|\(\d+\))?\s*:|\[[^\]]{1,64}\])",
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


def reference_ids(parsed: ParsedMessage) -> list[str]:
    """Hashed Message-ID, In-Reply-To, Thread-Index and References, de-duplicated, in order."""
    values: list[str] = []
    if parsed.message_id:
        values.append(parsed.message_id)
    if parsed.in_reply_to:
        values.append(parsed.in_reply_to)
    thread_index = parsed.root.last_header("thread-index")
    if thread_index is not None:
        # Outlook: the first 22 base64 characters identify the conversation
        values.append(thread_index.text()[:22])
    values.extend(parsed.references)
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
    """The thread of a new message; `new` is the document to insert when the thread is new."""

    id: str
    new: Document | None = None


class ThreadService:
    def __init__(self, threads: Threads) -> None:
        self._threads = threads

    async def choose(self, user_id: str, parsed: ParsedMessage) -> ThreadChoice:
        """Find the thread for `parsed` (updating it), or describe a new one without storing it.

        The new thread's document is stored by `create`, which the message store runs alongside
        the message insert to save a round trip.
        """
        ids = reference_ids(parsed)
        subject, marked = normalize_subject(parsed.subject)
        now = time.time_ns() // 1_000_000
        update: Document = {"$set": {"updated": now}}
        if ids:
            update["$addToSet"] = {"ids": {"$each": ids}}
            found = await self._threads.find_one_and_update(
                {"user": user_id, "ids": {"$in": ids}, "subject": subject},
                update,
                projection={"_id": 1},
            )
            if found is not None:
                return ThreadChoice(str(found["_id"]))
        is_reply = marked or bool(parsed.in_reply_to) or bool(parsed.references)
        if is_reply and subject:
            found = await self._threads.touch_latest(
                {"user": user_id, "subject": subject, "updated": {"$gte": now - SUBJECT_WINDOW_MS}},
                update,
            )
            if found is not None:
                return ThreadChoice(str(found["_id"]))
        thread_id = new_id()
        return ThreadChoice(
            thread_id,
            {"_id": thread_id, "user": user_id, "subject": subject, "ids": ids, "updated": now},
        )

    async def create(self, choice: ThreadChoice) -> None:
        if choice.new is not None:
            await self._threads.insert(choice.new)

    async def discard(self, choice: ThreadChoice) -> None:
        """Undo `create` (the message that needed the thread was not stored)."""
        if choice.new is not None:
            await self._threads.delete_one({"_id": choice.id})
