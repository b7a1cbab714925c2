"""`create_app(config)`: the aiohttp application; the runtime starts in its cleanup context."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from wildpy.config import Config
from wildpy.handlers import (
    addresses,
    archive,
    authentication,
    domainaliases,
    drain,
    files,
    mailboxes,
    messages,
    meta,
    openapi,
    search,
    updates,
    users,
)
from wildpy.handlers.auth import auth_middleware
from wildpy.handlers.context import CONFIG, RUNTIME
from wildpy.handlers.drain import in_flight_middleware
from wildpy.handlers.http_edge import protocol_logger
from wildpy.handlers.middleware import error_middleware, request_id_middleware
from wildpy.runtime import Runtime, open_runtime

ROUTE_TABLES = (
    meta.routes,
    openapi.routes,
    users.routes,
    authentication.routes,
    addresses.routes,
    domainaliases.routes,
    files.routes,
    mailboxes.routes,
    messages.routes,
    search.routes,
    archive.routes,
    updates.routes,
)


def create_app(config: Config, *, runtime: Runtime | None = None) -> web.Application:
    """The REST API. With `runtime` given, the caller owns its lifecycle (CLI, tests, benches)."""
    app = web.Application(
        # order matters: the request id exists before any error is rendered, and errors raised
        # by the auth middleware are rendered by the error middleware
        # counted first, so a request is in flight until its last middleware is done
        middlewares=[
            in_flight_middleware,
            request_id_middleware,
            error_middleware,
            auth_middleware,
        ],
        client_max_size=config.api.max_body_size,
        handler_args={"logger": protocol_logger()},  # parser errors logged without credentials
    )
    app[CONFIG] = config
    for table in ROUTE_TABLES:
        app.router.add_routes(table)
    updates.install(app)
    drain.install(app)
    if runtime is not None:
        app[RUNTIME] = runtime
    else:
        app.cleanup_ctx.append(_runtime_context)
    return app


async def _runtime_context(app: web.Application) -> AsyncIterator[None]:
    async with open_runtime(app[CONFIG]) as runtime:
        app[RUNTIME] = runtime
        yield
