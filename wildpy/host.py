"""The process host behind `wildpy serve`: one runtime, every door and worker on one event loop.

A *door* is a listener that clients talk to (the REST API today; SMTP, LMTP, submission, IMAP and
POP3 as they arrive); a *worker* does background work (the janitor today; outbound and webhook
delivery later). Each one is a `Service` in `REGISTRY` whose `start(runtime, config)` returns
something with an async `close()`. The host opens the runtime once, starts the doors and then the
workers, and on shutdown closes the doors first (each lets what is in flight finish within
`[host] shutdownTimeout`), then the workers, then the runtime, so no request loses its database
half-way. Every close is bounded: one that overruns is abandoned with a log line, never awaited
forever (mox's serve.go starts and stops its listeners and queue the same way).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from wildpy.config import Config
from wildpy.handlers import server as rest_server
from wildpy.runtime import Runtime, open_runtime
from wildpy.smtp import door as smtp_door
from wildpy.workers import janitor

log = logging.getLogger("wildpy.host")

#: seconds a worker gets to finish its current round when the host stops
WORKER_CLOSE_TIMEOUT = 5.0
#: seconds a door may take beyond the configured drain time before it is abandoned
DOOR_CLOSE_GRACE = 2.0


class Closable(Protocol):
    """What a started door or worker hands back: the host calls `close` once, on shutdown."""

    async def close(self) -> None: ...


Starter = Callable[[Runtime, Config], Awaitable[Closable]]


@dataclass(frozen=True)
class Service:
    """A door or worker the host can run; `enabled` reads its `[section] enabled` key."""

    name: str
    kind: Literal["door", "worker"]
    start: Starter
    enabled: Callable[[Config], bool]


#: every door and worker, in start order; `wildpy serve --only` names entries of this
REGISTRY: tuple[Service, ...] = (
    Service("api", "door", rest_server.start, lambda config: config.api.enabled),
    Service("smtp", "door", smtp_door.start_smtp, lambda config: config.smtp.enabled),
    Service("lmtp", "door", smtp_door.start_lmtp, lambda config: config.lmtp.enabled),
    Service("janitor", "worker", janitor.start, lambda config: config.janitor.enabled),
)


class HostError(Exception):
    """A request the host cannot carry out (an unknown or disabled service), in one line."""


def select(
    config: Config, only: Sequence[str] | None, registry: Sequence[Service] = REGISTRY
) -> list[Service]:
    """The services to run: those named in `only` (each must exist and be enabled), else every
    enabled one."""
    if only is None:
        return [service for service in registry if service.enabled(config)]
    known = {service.name: service for service in registry}
    unknown = [name for name in only if name not in known]
    if unknown:
        raise HostError(f"unknown service {unknown[0]!r}; services: {', '.join(known)}")
    disabled = [name for name in only if not known[name].enabled(config)]
    if disabled:
        raise HostError(f"service {disabled[0]!r} is disabled in the configuration")
    wanted = set(only)
    return [service for service in registry if service.name in wanted]


@dataclass
class Host:
    """The running services of this process; `open_host` builds and tears it down."""

    runtime: Runtime
    #: started doors and workers by service name, in start order
    started: dict[str, Closable] = field(default_factory=dict)


@contextlib.asynccontextmanager
async def open_host(config: Config, services: Sequence[Service]) -> AsyncIterator[Host]:
    """Open the runtime, start `services` (doors before workers), yield, then stop them all.

    A service that fails to start stops the ones already started before the error propagates.
    """
    async with open_runtime(config) as runtime:
        host = Host(runtime)
        try:
            for kind in ("door", "worker"):
                for service in services:
                    if service.kind == kind:
                        host.started[service.name] = await service.start(runtime, config)
                        log.debug("%s %s started", kind, service.name)
            yield host
        finally:
            await _stop(host, services, config)


async def _stop(host: Host, services: Sequence[Service], config: Config) -> None:
    kinds = {service.name: service.kind for service in services}
    door_timeout = config.host.shutdown_timeout + DOOR_CLOSE_GRACE
    for kind, timeout in (("door", door_timeout), ("worker", WORKER_CLOSE_TIMEOUT)):
        closing = {
            name: started for name, started in host.started.items() if kinds.get(name) == kind
        }
        # the doors close together: each drains its own connections within the same deadline
        await asyncio.gather(*(_close(name, item, timeout) for name, item in closing.items()))


async def _close(name: str, item: Closable, seconds: float) -> None:
    try:
        async with asyncio.timeout(seconds):
            await item.close()
    except TimeoutError:
        log.error("%s did not stop within %.0f s; abandoned", name, seconds)
    except Exception:  # one service failing to close must not keep the others open
        log.exception("%s failed to stop cleanly", name)
    else:
        log.debug("%s stopped", name)


async def run(
    config: Config,
    services: Sequence[Service],
    *,
    started: Callable[[Host], None] | None = None,
) -> None:
    """Run `services` until SIGTERM or SIGINT, then shut down in order (`wildpy serve`)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        async with open_host(config, services) as host:
            if started is not None:
                started(host)
            await stop.wait()
            log.debug("shutting down")
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
