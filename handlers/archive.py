"""Deleted (archived) messages: list them and restore them (WildDuck reference 5.6).

Unlike WildDuck, the listing answers with `success`, and a single message is restored by the
archived id the listing shows (reference section 12, items 9 and 10). A date-range restore runs
inline and reports what it did instead of scheduling a task.
"""

from __future__ import annotations

from datetime import datetime

from aiohttp import web

from wildpy import errors

from .auth import permit
from .context import runtime
from .message_params import IncludeHeaders, Order, RequiredDate
from .message_views import listing_item, parse_include_headers
from .openapi import documented
from .responses import ok, page_answer
from .validation import ObjectIdStr, PageParams, Params, read_params

routes = web.RouteTableDef()


class ListArchived(PageParams):
    user: ObjectIdStr
    includeHeaders: IncludeHeaders = None
    order: Order = "desc"


class RestoreMessage(Params):
    user: ObjectIdStr
    message: ObjectIdStr
    mailbox: ObjectIdStr | None = None


class RestoreRange(Params):
    user: ObjectIdStr
    start: RequiredDate
    end: RequiredDate


@routes.get("/users/{user}/archived/messages")
@documented(ListArchived, errors.UserNotFound)
async def list_archived(request: web.Request) -> web.Response:
    """The user's deleted messages that can still be restored, most recently deleted first."""
    params = await read_params(request, ListArchived, body=False)
    permit(request, "read", "messages", owner=params.user)
    headers = parse_include_headers(params.includeHeaders)
    page = await runtime(request).message_api.archive.page(
        params.user, params.paging, ascending=params.order == "asc", headers=bool(headers)
    )
    rows = [listing_item(row, headers=headers, ident=row["_id"]) for row in page.results]
    return page_answer(page, rows)


@routes.post("/users/{user}/archived/messages/{message}/restore")
@documented(
    RestoreMessage,
    errors.MessageNotFound,
    errors.MessageGone,
    errors.NoSuchMailbox,
    errors.OverQuotaError,
    errors.StoreError,
)
async def restore_message(request: web.Request) -> web.Response:
    """Restore one archived message, into `mailbox` or the mailbox it was deleted from."""
    params = await read_params(request, RestoreMessage)
    permit(request, "update", "messages", owner=params.user)
    added = await runtime(request).message_api.archive.restore(
        params.user, params.message, params.mailbox
    )
    return ok(mailbox=added.mailbox, id=added.uid)


@routes.post("/users/{user}/archived/restore")
@documented(RestoreRange, errors.UserNotFound)
async def restore_range(request: web.Request) -> web.Response:
    """Restore every message deleted between `start` and `end`, each into its own mailbox."""
    params = await read_params(request, RestoreRange)
    permit(request, "update", "messages", owner=params.user)
    rt = runtime(request)
    await rt.users.require(params.user)
    start, end = _required(params.start, "start"), _required(params.end, "end")
    report = await rt.message_api.archive.restore_range(params.user, start, end)
    return ok(restored=report.restored, errors=report.failed)


def _required(value: datetime | None, name: str) -> datetime:
    if value is None:
        message = f'"{name}" is required'
        raise errors.InputValidationError(message, details={name: message})
    return value
