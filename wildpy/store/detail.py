"""Reading one message to show it, marking it \\Seen when asked (REST GET, IMAP FETCH BODY[]).

Its own part because it both reads and changes: the flags go through `Changer`, so the modseq,
the mailbox's unseen counter and the journal move as for any other flag change.
"""

from __future__ import annotations

from .change import Changer
from .projections import DETAIL_PROJECTION
from .read import Reader
from .records import ReadMessage

SEEN = "\\Seen"


class Opener:
    def __init__(self, reader: Reader, changer: Changer) -> None:
        self._reader = reader
        self._changer = changer

    async def read_message(
        self, user_id: str, mailbox_id: str, uid: int, *, mark_seen: bool = False
    ) -> ReadMessage:
        """The message at `uid` with its detail fields and rendered body; with `mark_seen`
        an unseen one gets \\Seen first (one flag change, journalled). NoSuchMailbox,
        MessageNotFound, MessageGone."""
        doc = await self._reader.get_in_mailbox(user_id, mailbox_id, uid, DETAIL_PROJECTION)
        if mark_seen and doc.get("unseen"):
            change = await self._changer.update_flags(user_id, mailbox_id, uid, add=[SEEN])
            doc.update(unseen=False, flags=change.flags)
        body = await self._reader.body(user_id, doc)
        return ReadMessage(doc, body)
