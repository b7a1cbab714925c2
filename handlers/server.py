"""The REST door: `create_app(config, runtime)` on an aiohttp `AppRunner` and `TCPSite`.

Its connections answer aiohttp's own parser errors in the JSON envelope (http_edge.py). Closing
it stops listening at once, ends the open `/updates` streams, and lets every request in flight
finish within `[host] shutdownTimeout`, also one whose body is still arriving (drain.py says why
aiohttp's own shutdown would cut that one); only then are the connections closed.
"""

from __future__ import annotations

import asyncio
import contextlib

from aiohttp import web

from wildpy.app import create_app
from wildpy.config import Config
from wildpy.runtime import Runtime

from . import updates
from .drain import IN_FLIGHT
from .http_edge import ApiAppRunner
from .middleware import AccessLogger

#: seconds aiohttp gets, after the drain, to finish writing the last answers
_FINAL_WRITE_TIMEOUT = 1.0


class RestDoor:
    """The running REST API of this process."""

    def __init__(self, runner: web.AppRunner, app: web.Application, drain_time: float) -> None:
        self._runner = runner
        self._app = app
        self._drain_time = drain_time

    @property
    def addresses(self) -> list[tuple[str, int]]:
        """Where it listens, as (host, port): the real port when the configured one is 0."""
        return [(str(address[0]), int(address[1])) for address in self._runner.addresses]

    async def close(self) -> None:
        for site in list(self._runner.sites):
            await site.stop()  # no new connections from here on
        updates.end_streams(self._app)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._app[IN_FLIGHT].idle.wait(), self._drain_time)
        await self._runner.cleanup()


async def start(runtime: Runtime, config: Config) -> RestDoor:
    app = create_app(config, runtime=runtime)
    runner = ApiAppRunner(
        app,
        access_log_class=AccessLogger,
        shutdown_timeout=_FINAL_WRITE_TIMEOUT,
        # the host owns the signals: it closes every door, not only this one
        handle_signals=False,
    )
    await runner.setup()
    try:
        await web.TCPSite(runner, config.api.host, config.api.port).start()
    except BaseException:
        await runner.cleanup()
        raise
    return RestDoor(runner, app, config.host.shutdown_timeout)
