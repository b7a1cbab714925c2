"""Changing messages: flags and moves, each conditional on the state it was computed from."""

from __future__ import annotations

from collections.abc import Iterable

from wildpy import errors
from wildpy.clock import epoch_ms, utcnow
from wildpy.services.events import FlagsChanged, MessageAdded, MessageMoved

from .documents import flag_fields, normalize_flags
from .parts import StorePart, StoreParts
from .read import Reader
from .records import FlagChange, MovedMessage


class Changer(StorePart):
    def __init__(self, parts: StoreParts, reader: Reader) -> None:
        super().__init__(parts)
        self._reader = reader

    async def update_flags(
        self,
        user_id: str,
        mailbox_id: str,
        uid: int,
        *,
        add: Iterable[str] = (),
        remove: Iterable[str] = (),
        replace: Iterable[str] | None = None,
    ) -> FlagChange:
        """Set (`replace`), add or remove flags; a new modseq when anything changed."""
        return await self._shield.run(
            self._update_flags(user_id, mailbox_id, uid, add, remove, replace)
        )

    async def _update_flags(
        self,
        user_id: str,
        mailbox_id: str,
        uid: int,
        add: Iterable[str],
        remove: Iterable[str],
        replace: Iterable[str] | None,
    ) -> FlagChange:
        added, removed = normalize_flags(add), {f.lower() for f in normalize_flags(remove)}
        replacement = normalize_flags(replace) if replace is not None else None
        for _ in range(self.settings.max_attempts):
            doc = await self._reader.get(
                user_id, mailbox_id, uid, {"flags": 1, "modseq": 1, "unseen": 1}
            )
            old = list(doc.get("flags", []))
            new = list(replacement) if replacement is not None else old
            new = normalize_flags([*(f for f in new if f.lower() not in removed), *added])
            if {f.lower() for f in new} == {f.lower() for f in old}:
                return FlagChange(doc["_id"], uid, int(doc["modseq"]), old, changed=False)
            fields = flag_fields(new)
            delta = int(fields["unseen"]) - int(bool(doc.get("unseen")))
            modseq = await self._mailboxes.next_modseq(mailbox_id, user_id, unseen=delta)
            if modseq is None:
                raise errors.NoSuchMailbox()
            read = {"_id": doc["_id"], "mailbox": mailbox_id, "uid": uid, "modseq": doc["modseq"]}
            changed = await self._messages.set_flags(read, fields, modseq)
            if changed:
                await self._journal.record_events(
                    user_id,
                    [
                        FlagsChanged(
                            user=user_id,
                            mailbox=mailbox_id,
                            uid=uid,
                            message=doc["_id"],
                            modseq=modseq,
                            flags=tuple(new),
                            unseen=fields["unseen"],
                        )
                    ],
                )
                return FlagChange(doc["_id"], uid, modseq, new, changed=True)
            # changed by someone else since we read it: give the unseen delta back, read again
            if delta:
                await self._mailboxes.add_unseen(mailbox_id, -delta)
        raise errors.StoreError("Message is changing too fast, try again")

    async def move(self, user_id: str, mailbox_id: str, uid: int, target_id: str) -> MovedMessage:
        """Move a message to another mailbox under a new uid (IMAP MOVE, REST moveTo)."""
        return await self._shield.run(self._move(user_id, mailbox_id, uid, target_id))

    async def _move(self, user_id: str, mailbox_id: str, uid: int, target_id: str) -> MovedMessage:
        for _ in range(self.settings.max_attempts):
            doc = await self._reader.get(
                user_id, mailbox_id, uid, {"modseq": 1, "size": 1, "unseen": 1, "flags": 1}
            )
            size, unseen = int(doc["size"]), int(bool(doc.get("unseen")))
            target = await self._mailboxes.allocate_uids(
                target_id, user_id, unseen=unseen, size=size
            )
            if target is None:
                raise errors.NoSuchMailbox()
            new_uid, new_modseq = int(target["uidNext"]), int(target.get("modifyIndex", 0)) + 1
            retention = int(target.get("retention") or 0)
            rdate = epoch_ms(utcnow()) + retention if retention else None
            read = {"_id": doc["_id"], "mailbox": mailbox_id, "uid": uid, "modseq": doc["modseq"]}
            moved = await self._messages.move_to(read, target_id, new_uid, new_modseq, rdate)
            if not moved:
                await self._mailboxes.count_out(target_id, unseen=unseen, size=size)
                continue
            source_modseq = await self._mailboxes.remove_messages(
                mailbox_id, unseen=unseen, size=size
            )
            await self._journal.record_events(
                user_id,
                [
                    MessageMoved(
                        user=user_id,
                        mailbox=mailbox_id,
                        uid=uid,
                        message=doc["_id"],
                        modseq=source_modseq,
                        target=target_id,
                        target_uid=new_uid,
                    ),
                    MessageAdded(
                        user=user_id,
                        mailbox=target_id,
                        uid=new_uid,
                        message=doc["_id"],
                        modseq=new_modseq,
                        flags=tuple(doc.get("flags", [])),
                        unseen=bool(unseen),
                    ),
                ],
            )
            return MovedMessage(doc["_id"], mailbox_id, uid, target_id, new_uid, new_modseq)
        raise errors.StoreError("Message is changing too fast, try again")
