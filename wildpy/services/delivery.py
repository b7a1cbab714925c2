"""Delivering received mail to local users: who a recipient is, whether they may receive now, and
storing each copy. The SMTP and LMTP doors call this (filters, forwarding, autoreplies and spam
routing join here as they arrive); it knows nothing of the protocol.

A recipient is checked when the sender names it (RCPT TO), so that an unknown, disabled or full
mailbox is refused before the message travels: unknown 550 5.1.1, disabled or suspended 550
5.2.1, over quota 452 4.2.2, over the user's `receivedMax` per minute 451 4.7.1 (each error's
SMTP reply in the catalogue). The quota is checked again by `add_message` when the copy is
stored, since other mail may have filled it meanwhile.
"""

from __future__ import annotations

from dataclasses import dataclass

from wildpy import errors
from wildpy.counters import Counters
from wildpy.storage.accounts import Users

from .addresses import AddressService
from .limits import allowed
from .mailboxes import MailboxService
from .messages import AddedMessage, MessageService

#: the user fields a recipient check reads
_RECIPIENT_FIELDS = {"disabled": 1, "suspended": 1, "quota": 1, "storageUsed": 1, "receivedMax": 1}
#: the window of the `receivedMax` limit, in seconds (WildDuck: messages per minute)
RECEIVED_WINDOW = 60


@dataclass(frozen=True)
class Recipient:
    """An accepted recipient: the address as the sender gave it, and the user who owns it."""

    address: str
    user: str


class DeliveryService:
    def __init__(
        self,
        addresses: AddressService,
        users: Users,
        mailboxes: MailboxService,
        messages: MessageService,
        counters: Counters,
    ) -> None:
        self._addresses = addresses
        self._users = users
        self._mailboxes = mailboxes
        self._messages = messages
        self._counters = counters

    async def check_recipient(self, address: str) -> Recipient:
        """The owner of `address`, if they can receive mail now; a catalogue error otherwise.

        Counts one message against the user's `receivedMax`: a sender that names a recipient
        is about to send to it, and counting here keeps a flood out before its data arrives.
        """
        user_id = await self._owner(address)
        user = await self._users.get(user_id, _RECIPIENT_FIELDS)
        if user is None:
            raise errors.UserNotFound()
        if user.get("disabled") or user.get("suspended"):
            raise errors.UserDisabled()
        quota = allowed(user, "quota")
        used = int(user.get("storageUsed", 0))
        if used >= quota:
            raise errors.OverQuotaError(details={"allowed": quota, "used": used})
        state = await self._counters.limited_increment(
            f"rl:rcpt:{user_id}", 1, allowed(user, "receivedMax"), RECEIVED_WINDOW
        )
        if not state.allowed:
            raise errors.RateLimitedError("Too many messages for this recipient, try again later")
        return Recipient(address=address, user=user_id)

    async def deliver(self, recipient: Recipient, message: bytes) -> AddedMessage:
        """Store one copy in the recipient's INBOX; it is durable when this returns."""
        inbox = await self._mailboxes.inbox(recipient.user)
        return await self._messages.add_message(recipient.user, inbox["_id"], message)

    async def withdraw(self, recipient: Recipient, added: AddedMessage) -> None:
        """Remove a copy stored for a delivery that failed as a whole (SMTP answers once for
        every recipient, so a 451 must leave no copy behind)."""
        await self._messages.delete(recipient.user, added.mailbox, added.uid, archive=False)

    async def _owner(self, address: str) -> str:
        try:
            resolution = await self._addresses.resolve_recipient(address, allow_wildcard=True)
        except errors.InputValidationError:
            raise errors.AddressNotFound() from None  # not an address: nobody here has it
        if resolution.user is None:
            # a forwarded address: its copies go out through the outbound spool, which the
            # issue "Receiving mail" section 3 builds; until then the sender retries later
            raise errors.StoreError("Forwarded addresses do not take mail yet, try again later")
        return resolution.user
