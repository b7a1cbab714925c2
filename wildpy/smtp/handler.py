"""The aiosmtpd handler of the receiving doors: checks recipients, stores each copy, and renders
every catalogue error as its SMTP reply in one place (`reply_for`).

SMTP answers a message once for all its recipients, so 250 means every copy is stored; when one
copy fails, the copies already stored are withdrawn and the sender gets the failure (it retries
them all). LMTP answers once per recipient (RFC 2033 4.2), so each copy stands on its own.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from aiosmtpd.smtp import SMTP, Envelope, Session

from wildpy.clock import utcnow
from wildpy.errors import WildpyError
from wildpy.services.delivery import DeliveryService, Recipient
from wildpy.services.messages import AddedMessage

from .protocol import DoorEnvelope, DoorSession
from .trace import trace_headers

log = logging.getLogger("wildpy.smtp")

Role = Literal["smtp", "lmtp"]

#: aiosmtpd's reply when a hook raises; never the exception's text (error-contract.md)
INTERNAL_REPLY = "451 4.3.0 InternalError: Temporary server error, try again later"


def reply_for(error: WildpyError) -> str:
    """The SMTP reply of a catalogue error (451 4.3.0 for one that has none)."""
    return error.smtp_response() or INTERNAL_REPLY


class ReceiveHandler:
    def __init__(
        self, delivery: DeliveryService, *, role: Role, server_name: str, max_recipients: int
    ) -> None:
        self._delivery = delivery
        self._role = role
        self._server_name = server_name
        self._max_recipients = max_recipients

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, responses: Any
    ) -> list[str]:
        # aiosmtpd reads commands one by one, so pipelined ones work (RFC 2920); its replies
        # from here on carry enhanced status codes (RFC 2034)
        session.host_name = hostname
        extensions = ["250-PIPELINING", "250-ENHANCEDSTATUSCODES"]
        return [*responses[:-1], *extensions, responses[-1]]

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        limit = server.data_size_limit
        for option in mail_options:
            name, _, value = option.partition("=")
            if name.upper() == "SIZE" and value.isdigit() and limit and int(value) > limit:
                return f"552 5.3.4 Message too big, at most {limit} bytes"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 Sender OK"

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        assert isinstance(envelope, DoorEnvelope)
        if len(envelope.rcpt_tos) >= self._max_recipients:
            return "452 4.5.3 Too many recipients"
        try:
            recipient = await self._delivery.check_recipient(address)
        except WildpyError as exc:
            return reply_for(exc)
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        envelope.recipients.append(recipient)
        return "250 2.1.5 Recipient OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        assert isinstance(envelope, DoorEnvelope) and isinstance(session, DoorSession)
        content = envelope.original_content or b""
        if self._role == "lmtp":
            replies = [
                await self._deliver_one(session, envelope, recipient, content)
                for recipient in envelope.recipients
            ]
            return "\r\n".join(reply for reply, _ in replies)
        stored: list[tuple[Recipient, AddedMessage]] = []
        for recipient in envelope.recipients:
            reply, added = await self._deliver_one(session, envelope, recipient, content)
            if added is None:
                await self._withdraw(stored)
                return reply
            stored.append((recipient, added))
        return f"250 2.0.0 OK queued as {session.id}"

    async def _deliver_one(
        self, session: DoorSession, envelope: DoorEnvelope, recipient: Recipient, content: bytes
    ) -> tuple[str, AddedMessage | None]:
        headers = trace_headers(
            mail_from=envelope.mail_from or "",
            recipient=recipient.address,
            helo=session.host_name or "",
            peer_ip=_peer_ip(session),
            server_name=self._server_name,
            protocol=self._protocol_name(session),
            queue_id=session.id,
            now=utcnow(),
        )
        try:
            added = await self._delivery.deliver(recipient, headers + content)
        except WildpyError as exc:
            log.info("[%s] %s not delivered: %s", session.id, recipient.address, exc.code())
            return reply_for(exc), None
        except Exception:
            log.exception("[%s] delivery to %s failed", session.id, recipient.address)
            return INTERNAL_REPLY, None
        log.info("[%s] delivered to %s uid %d", session.id, recipient.address, added.uid)
        return f"250 2.0.0 <{recipient.address}> OK {session.id}", added

    async def _withdraw(self, stored: list[tuple[Recipient, AddedMessage]]) -> None:
        for recipient, added in stored:
            try:
                await self._delivery.withdraw(recipient, added)
            except Exception:  # the sender gets its failure anyway; the copy stays, logged
                log.exception("copy %s of a failed delivery could not be withdrawn", added.id)

    def _protocol_name(self, session: DoorSession) -> str:
        # RFC 3848 protocol types for the Received header
        base = "LMTP" if self._role == "lmtp" else ("ESMTP" if session.extended_smtp else "SMTP")
        return base + ("S" if session.ssl is not None else "")

    async def handle_exception(self, error: Exception) -> str:
        # aiosmtpd's default would send the exception's text to the peer
        log.error("SMTP session failed", exc_info=error)
        return INTERNAL_REPLY


def _peer_ip(session: Session) -> str:
    peer = session.peer
    if isinstance(peer, tuple) and peer:
        return str(peer[0])
    return str(peer or "unknown")
