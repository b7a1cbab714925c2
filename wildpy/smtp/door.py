"""Starting and stopping the SMTP and LMTP doors (the host's registry names them smtp and lmtp).

Closing a door stops listening, closes the sessions that wait for a command with `421 4.3.2`,
and lets a session in the middle of DATA store its message and answer first, within
`[host] shutdownTimeout`; what is left after that is cut (its sender has no 250 and retries).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket

from wildpy.config import Config, ReceiveConfig
from wildpy.runtime import Runtime

from .handler import ReceiveHandler, Role
from .protocol import Connections, DoorLmtpProtocol, DoorProtocol


class ReceivingDoor:
    """A running SMTP or LMTP listener."""

    def __init__(self, server: asyncio.Server, connections: Connections, drain_time: float) -> None:
        self._server = server
        self._connections = connections
        self._drain_time = drain_time

    @property
    def addresses(self) -> list[tuple[str, int]]:
        return [
            (str(sock.getsockname()[0]), int(sock.getsockname()[1]))
            for sock in self._server.sockets
        ]

    async def close(self) -> None:
        self._server.close()  # no new connections
        self._connections.closing = True
        for session in list(self._connections.open):
            session.shut_down()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._drain_time):
                await self._connections.idle.wait()
        for session in list(self._connections.open):
            session.abort()
        await self._server.wait_closed()


async def _start(
    runtime: Runtime, config: Config, settings: ReceiveConfig, role: Role
) -> ReceivingDoor:
    name = settings.name or socket.gethostname().lower() or "localhost"
    handler = ReceiveHandler(
        runtime.delivery, role=role, server_name=name, max_recipients=settings.max_recipients
    )
    connections = Connections(settings.max_connections_per_ip)
    protocol = DoorLmtpProtocol if role == "lmtp" else DoorProtocol

    def session() -> DoorProtocol:
        return protocol(
            handler,
            connections=connections,
            data_size_limit=settings.max_size,
            enable_SMTPUTF8=True,
            hostname=name,
            ident="wildpy",
            timeout=settings.idle_timeout,
            # asked per connection: a renewed certificate serves the next one
            tls_context=runtime.tls.context(),
        )

    server = await asyncio.get_running_loop().create_server(session, settings.host, settings.port)
    return ReceivingDoor(server, connections, config.host.shutdown_timeout)


async def start_smtp(runtime: Runtime, config: Config) -> ReceivingDoor:
    return await _start(runtime, config, config.smtp, "smtp")


async def start_lmtp(runtime: Runtime, config: Config) -> ReceivingDoor:
    return await _start(runtime, config, config.lmtp, "lmtp")
