"""GET /users/:user/updates: a user's journal as server-sent events (WildDuck reference 5.1).

Each journal event goes out as `data: <JSON>` with `id: <journal id>`, so a client that reconnects
with `Last-Event-ID` (header, or query as WildDuck also takes it) resumes after the last event it
saw. After events that change a mailbox's counts (EXISTS, EXPUNGE, a FETCH with the \\Seen state) a
COUNTERS event follows with the mailbox's totals, as WildDuck sends. The stream opens with a
`: wildpy [<user>]` comment (WildDuck sends one too), a `: idling N` comment every 15 s keeps
proxies from closing a quiet stream, and it ends after 30 minutes (clients reconnect).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web
from pydantic import Field

from wildpy import errors
from wildpy.errors import WildpyError
from wildpy.services.events import (
    COMMANDS,
    ChangeEvent,
    CountersChanged,
    FlagsChanged,
    MailboxCreated,
    MailboxDeleted,
    MailboxRenamed,
    MessageAdded,
    MessageExpunged,
)

from .auth import permit
from .context import runtime
from .openapi import documented
from .responses import encode
from .validation import ObjectIdStr, Params, read_params, validate

log = logging.getLogger("wildpy.api.updates")

routes = web.RouteTableDef()

#: seconds between `: idling` comments on a quiet stream
IDLE_COMMENT_EVERY = 15.0
#: seconds after which the stream is closed
STREAM_LIFETIME = 30 * 60.0
#: the longest wait between two checks that the client is still there
_CHECK_EVERY = 1.0

#: set when the application shuts down, so open streams end instead of holding shutdown up
CLOSING = web.AppKey("updates_closing", asyncio.Event)


def install(app: web.Application) -> None:
    """Let the application end open streams on shutdown."""
    app[CLOSING] = asyncio.Event()
    app.on_shutdown.append(_close_streams)


def end_streams(app: web.Application) -> None:
    """End every open stream of `app` (each client gets a clean end and reconnects elsewhere)."""
    app[CLOSING].set()


async def _close_streams(app: web.Application) -> None:
    end_streams(app)


class Updates(Params):
    user: ObjectIdStr
    last_event_id: ObjectIdStr | None = Field(None, alias="Last-Event-ID")


class LastEventHeader(Params):
    last_event_id: ObjectIdStr = Field(alias="Last-Event-ID")


def event_data(event: ChangeEvent) -> dict[str, Any]:
    """What a client sees of an event: WildDuck's journal entry without its internal fields
    (user, modseq, the \\Seen state but in COUNTERS), in WildDuck's key order."""
    if isinstance(event, CountersChanged):
        return {
            "command": "COUNTERS",
            "mailbox": event.mailbox,
            "total": event.total,
            "unseen": event.unseen,
        }
    data: dict[str, Any] = {"mailbox": event.mailbox, "command": COMMANDS[type(event)]}
    if isinstance(event, MessageAdded | FlagsChanged | MessageExpunged):
        data["uid"] = event.uid
        data["message"] = event.message
    if isinstance(event, MessageAdded | FlagsChanged):
        data["flags"] = list(event.flags)
    if isinstance(event, MessageAdded):
        if event.idate is not None:
            data["idate"] = event.idate
        if event.thread is not None:
            data["thread"] = event.thread
    if isinstance(event, MailboxCreated | MailboxRenamed | MailboxDeleted):
        data["path"] = event.path
    return data


def format_event(event_id: str, data: dict[str, Any]) -> str:
    """One server-sent event: every line of the JSON prefixed `data: `, then the id."""
    return "data: " + encode(data).replace("\n", "\ndata: ") + f"\nid: {event_id}\n\n"


def _resume_point(request: web.Request, params: Updates) -> str | None:
    if params.last_event_id is not None:
        return params.last_event_id
    header = request.headers.get("Last-Event-ID")
    if not header:
        return None
    return validate(LastEventHeader, {"Last-Event-ID": header}).last_event_id


@routes.get("/users/{user}/updates")
@documented(Updates, errors.UserNotFound)
async def updates(request: web.Request) -> web.StreamResponse:
    params = await read_params(request, Updates, body=False)
    permit(request, "read", "users", owner=params.user)
    rt = runtime(request)
    await rt.users.require(params.user)  # 404 before the stream starts
    # the starting point is fixed before the client sees the stream open: nothing after it is lost
    changes = await rt.journal.subscribe(
        params.user, after=_resume_point(request, params), counters=True
    )

    response = web.StreamResponse(headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    response.content_type = "text/event-stream"
    response.charset = "utf-8"
    await response.prepare(request)
    stop = request.app[CLOSING]
    loop = asyncio.get_running_loop()
    ends = loop.time() + STREAM_LIFETIME
    quiet_since = loop.time()
    idles = 0
    try:
        # a first comment sends the headers on their way: the client knows the stream is open
        await response.write(f": wildpy [{params.user}]\n\n".encode())
        while not stop.is_set() and request.transport is not None:
            now = loop.time()
            if now >= ends or request.transport.is_closing():
                break
            wait = min(ends - now, quiet_since + IDLE_COMMENT_EVERY - now, _CHECK_EVERY)
            events = await changes.next(max(wait, 0.0), stop)
            if events:
                await response.write(_render(events))
                quiet_since = loop.time()
            elif loop.time() - quiet_since >= IDLE_COMMENT_EVERY:
                idles += 1
                await response.write(f": idling {idles}\n\n".encode())
                quiet_since = loop.time()
    except ConnectionResetError:
        pass  # the client went away
    except WildpyError as exc:
        # the headers are out, so no error body: end the stream, the client resumes later
        log.warning("updates stream for %s ended: %s", params.user, exc.code())
    return response


def _render(events: list[ChangeEvent]) -> bytes:
    return "".join(format_event(event.id, event_data(event)) for event in events).encode()
