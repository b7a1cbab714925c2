"""Requests in flight, counted so that the REST door can let them finish before it shuts down.

aiohttp's own graceful shutdown (`BaseRunner.cleanup`) stops reading from every connection before
it waits for the handlers, so a request whose body is still arriving (an upload) would wait for
bytes that are never read and be cut at the timeout. The door therefore stops listening, ends the
open `/updates` streams, and waits here until the count of requests in flight reaches zero (or the
drain time is up) before aiohttp closes the connections.
"""

from __future__ import annotations

import asyncio

from aiohttp import web
from aiohttp.typedefs import Handler


class InFlight:
    """How many requests this application is answering; `idle` is set when none."""

    def __init__(self) -> None:
        self.count = 0
        self.idle = asyncio.Event()
        self.idle.set()

    def begin(self) -> None:
        self.count += 1
        self.idle.clear()

    def end(self) -> None:
        self.count -= 1
        if self.count == 0:
            self.idle.set()


IN_FLIGHT = web.AppKey("in_flight", InFlight)


def install(app: web.Application) -> None:
    app[IN_FLIGHT] = InFlight()


@web.middleware
async def in_flight_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    counter = request.app[IN_FLIGHT]
    counter.begin()
    try:
        return await handler(request)
    finally:
        counter.end()
