"""Routes about the server itself: the error catalogue and a health check."""

from __future__ import annotations

from aiohttp import web

from wildpy import errors
from wildpy.errors import catalogue

from .context import runtime
from .openapi import documented
from .responses import ok

routes = web.RouteTableDef()


@routes.get("/errors")
@documented(None)
async def list_errors(request: web.Request) -> web.Response:
    """The whole error catalogue: code, status, message, IMAP and SMTP replies, retryable."""
    entries = [
        {
            "code": code,
            "status": cls.status,
            "message": cls.message,
            "imap": cls.imap,
            "smtp": cls.smtp,
            "retryable": cls.retryable,
        }
        for code, cls in sorted(catalogue().items())
    ]
    return ok(errors=entries)


@routes.get("/health")
@documented(None, errors.InternalDatabaseError)
async def health(request: web.Request) -> web.Response:
    """200 when the database answers, 503 InternalDatabaseError when it does not."""
    await runtime(request).database.ping()
    return ok()
