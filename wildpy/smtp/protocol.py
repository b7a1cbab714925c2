"""aiosmtpd's SMTP and LMTP protocols with what wildpy's doors add to every connection.

- A session id for the logs and the Received header, and an envelope that keeps the checked
  recipients beside their addresses.
- A connection limit per client IP address: one over it gets `421 4.7.0` before the greeting.
- Whether the session is idle between commands, so that shutdown closes idle sessions at once
  (`421 4.3.2`) and lets one in the middle of DATA finish.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from collections import Counter
from typing import Any

from aiosmtpd import smtp as aiosmtpd_smtp
from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP, Envelope, Session

from wildpy.services.delivery import Recipient

#: aiosmtpd's own replies that say more with wildpy's words (RFC 3463 codes)
_REWORDED = {
    "552 Error: message size exceeds fixed maximum message size": (
        "552 5.3.4 Message too big for this server"
    ),
    "552 Error: Too much mail data": "552 5.3.4 Message too big for this server",
    "500 Line too long (see RFC5321 4.5.3.1.6)": "500 5.5.6 Line too long (RFC 5321 4.5.3.1.6)",
    "250 OK": "250 2.0.0 OK",
    "221 Bye": "221 2.0.0 Bye",
}
#: the enhanced code an error reply of aiosmtpd gets when it has none, by reply code
_DEFAULT_ENHANCED = {
    "500": "5.5.2",
    "501": "5.5.4",
    "502": "5.5.1",
    "503": "5.5.1",
    "530": "5.7.0",
    "554": "5.7.0",
    "555": "5.5.4",
}
#: replies that say the client's command was wrong; after ERROR_LIMIT of them the session ends
_COMMAND_ERRORS = frozenset({"500", "501", "502", "503", "504", "555"})
ERROR_LIMIT = 10
# aiosmtpd closes a session after 5 unknown commands with its own 502; wildpy counts every
# command error instead (above) and answers 421 after ERROR_LIMIT, so aiosmtpd's count must not
# end it first (it reads this module global at each new session)
aiosmtpd_smtp.BOGUS_LIMIT = ERROR_LIMIT + 1

_HAS_ENHANCED = re.compile(r"^\d{3}[ -][245]\.\d{1,3}\.\d{1,3}( |$)")


def with_enhanced_code(line: str) -> str:
    """`line` with an RFC 3463 enhanced status code, as ENHANCEDSTATUSCODES promises (RFC 2034
    3): aiosmtpd's own replies carry none. Greetings, EHLO lines and 354 stay as they are."""
    if line in _REWORDED:
        return _REWORDED[line]
    if _HAS_ENHANCED.match(line):
        return line
    enhanced = _DEFAULT_ENHANCED.get(line[:3])
    if enhanced is None or line[3:4] != " ":
        return line
    return f"{line[:4]}{enhanced} {line[4:]}"


class DoorSession(Session):
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop)
        #: names this connection in logs and in the Received header's id
        self.id = secrets.token_hex(6)


class DoorEnvelope(Envelope):
    def __init__(self) -> None:
        super().__init__()
        #: the recipients accepted at RCPT, in order (rcpt_tos holds their addresses)
        self.recipients: list[Recipient] = []


class Connections:
    """The open connections of one door: per client IP (for the limit) and as a whole (for the
    shutdown)."""

    def __init__(self, per_ip: int) -> None:
        self.per_ip = per_ip
        self.by_ip: Counter[str] = Counter()
        self.open: set[DoorProtocol] = set()
        self.idle = asyncio.Event()
        self.idle.set()
        #: the door is shutting down: sessions close as soon as they are between commands
        self.closing = False

    def add(self, protocol: DoorProtocol, ip: str) -> bool:
        """Count a new connection; False (not counted) when its IP is at the limit."""
        if self.by_ip[ip] >= self.per_ip:
            return False
        self.by_ip[ip] += 1
        self.open.add(protocol)
        self.idle.clear()
        return True

    def remove(self, protocol: DoorProtocol, ip: str) -> None:
        if protocol not in self.open:
            return
        self.open.discard(protocol)
        self.by_ip[ip] -= 1
        if self.by_ip[ip] <= 0:
            del self.by_ip[ip]
        if not self.open:
            self.idle.set()


class DoorProtocol(SMTP):
    """The SMTP protocol of a wildpy door (LMTP below)."""

    def __init__(self, handler: Any, *, connections: Connections, **options: Any) -> None:
        super().__init__(handler, **options)
        self._connections = connections
        self._ip = ""
        #: a command (DATA included) is being handled: shutdown waits for it
        self.busy = False
        #: command errors answered so far (see ERROR_LIMIT)
        self._errors = 0

    def _create_session(self) -> Session:
        return DoorSession(self.loop)

    def _create_envelope(self) -> Envelope:
        return DoorEnvelope()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self.transport is None:  # not the STARTTLS upgrade of a connection counted already
            peer = transport.get_extra_info("peername")
            self._ip = str(peer[0]) if peer else ""
            if not self._connections.add(self, self._ip):
                assert isinstance(transport, asyncio.WriteTransport)
                transport.write(b"421 4.7.0 Too many connections from your address\r\n")
                transport.close()
                return
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        self._connections.remove(self, self._ip)
        if self.session is None:  # refused before the greeting: aiosmtpd never set it up
            return
        super().connection_lost(error)

    async def push(self, status: Any) -> None:
        if isinstance(status, str):
            status = "\r\n".join(with_enhanced_code(line) for line in status.split("\r\n"))
            if status[:3] in _COMMAND_ERRORS:
                self._errors += 1
        await super().push(status)
        if self._errors >= ERROR_LIMIT and self.transport is not None:
            # a client that keeps talking nonsense is not a mail client: end it
            await super().push("421 4.7.0 Too many errors, closing the connection")
            self.transport.close()

    async def smtp_DATA(self, arg: str) -> None:
        self.busy = True
        try:
            await super().smtp_DATA(arg)
        finally:
            self.busy = False
        if self._connections.closing:
            self.shut_down()  # its answer is out: now it may go

    def shut_down(self) -> None:
        """Close this session if it waits for a command; one that is busy finishes first."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return  # ending already (its connection_lost is on its way)
        if isinstance(transport, asyncio.WriteTransport) and not self.busy:
            transport.write(b"421 4.3.2 Service shutting down, try again later\r\n")
            transport.close()

    def abort(self) -> None:
        """Cut the connection at once (shutdown, after the drain time)."""
        if isinstance(self.transport, asyncio.WriteTransport):
            self.transport.abort()


class DoorLmtpProtocol(DoorProtocol, LMTP):
    """LMTP: LHLO instead of EHLO, one answer per recipient after DATA (RFC 2033 4.2)."""
