"""REST routes for mailboxes (WildDuck reference 5.5): list, create, get or resolve, update, delete.

Path rules and WildDuck's exact messages live in `wildpy.mailbox_paths`, applied by the service,
so IMAP will refuse the same paths with the same words.
"""

from __future__ import annotations

import re
from typing import Annotated

from aiohttp import web
from pydantic import BeforeValidator, Field, WithJsonSchema

from wildpy import errors
from wildpy.errors import InputValidationError
from wildpy.mailbox_paths import MAX_PATH_LENGTH

from .auth import permit
from .context import runtime
from .mailbox_views import mailbox_view
from .openapi import documented
from .responses import ok
from .validation import OBJECT_ID_SCHEMA, Bool, ObjectIdStr, Params, read_params

routes = web.RouteTableDef()


_ID = re.compile(r"^[0-9a-f]{24}$")


def _blank_is_none(value: object) -> object:
    return None if value == "" else value


def _id_or_resolve(value: object) -> object:
    if isinstance(value, str) and (value == "resolve" or _ID.match(value.lower())):
        return value if value == "resolve" else value.lower()
    raise ValueError('must be a valid id (24 hex characters) or "resolve"')


#: WildDuck's `Joi.number().empty('').min(0)`: an empty string means "not given"
Retention = Annotated[Annotated[int, Field(ge=0, le=2**53)] | None, BeforeValidator(_blank_is_none)]
MailboxPath = Annotated[str, Field(min_length=1, max_length=MAX_PATH_LENGTH)]
MailboxOrResolve = Annotated[
    str,
    BeforeValidator(_id_or_resolve),
    WithJsonSchema({"anyOf": [OBJECT_ID_SCHEMA, {"type": "string", "const": "resolve"}]}),
]


class UserPath(Params):
    user: ObjectIdStr


class ListMailboxes(UserPath):
    specialUse: Bool = None
    showHidden: Bool = None
    counters: Bool = None
    sizes: Bool = None


class CreateMailbox(UserPath):
    path: MailboxPath
    hidden: Bool = None
    retention: Retention = None
    encryptMessages: Bool = None


class GetMailbox(UserPath):
    mailbox: MailboxOrResolve
    path: MailboxPath | None = None


class MailboxRef(UserPath):
    mailbox: ObjectIdStr


class UpdateMailbox(MailboxRef):
    path: MailboxPath | None = None
    retention: Retention = None
    subscribed: Bool = None
    hidden: Bool = None
    encryptMessages: Bool = None


@routes.get("/users/{user}/mailboxes")
@documented(ListMailboxes, errors.UserNotFound)
async def list_mailboxes(request: web.Request) -> web.Response:
    params = await read_params(request, ListMailboxes, body=False)
    permit(request, "read", "mailboxes", owner=params.user)
    mailboxes = await runtime(request).mailboxes.listing(
        params.user,
        special_use_only=bool(params.specialUse),
        show_hidden=bool(params.showHidden),
    )
    counters, sizes = bool(params.counters), bool(params.sizes)
    return ok(results=[mailbox_view(m, counters=counters, sizes=sizes) for m in mailboxes])


@routes.post("/users/{user}/mailboxes")
@documented(
    CreateMailbox, errors.UserNotFound, errors.MailboxExistsError, errors.DisallowedMailboxMethod
)
async def create_mailbox(request: web.Request) -> web.Response:
    params = await read_params(request, CreateMailbox)
    permit(request, "create", "mailboxes", owner=params.user)
    mailbox_id = await runtime(request).mailboxes.create(
        params.user,
        params.path,
        hidden=bool(params.hidden),
        retention=params.retention,
        encrypt_messages=bool(params.encryptMessages),
    )
    return ok(id=mailbox_id)


@routes.get("/users/{user}/mailboxes/{mailbox}")
@documented(GetMailbox, errors.UserNotFound, errors.NoSuchMailbox)
async def get_mailbox(request: web.Request) -> web.Response:
    params = await read_params(request, GetMailbox, body=False)
    permit(request, "read", "mailboxes", owner=params.user)
    service = runtime(request).mailboxes
    if params.mailbox == "resolve":
        if params.path is None:
            raise InputValidationError('"path" is required', details={"path": '"path" is required'})
        mailbox = await service.describe(params.user, path=params.path)
    else:
        mailbox = await service.describe(params.user, params.mailbox)
    return ok(**mailbox_view(mailbox, counters=True, sizes=True))


@routes.put("/users/{user}/mailboxes/{mailbox}")
@documented(
    UpdateMailbox,
    errors.NoSuchMailbox,
    errors.MailboxExistsError,
    errors.DisallowedMailboxMethod,
    errors.NoUpdates,
)
async def update_mailbox(request: web.Request) -> web.Response:
    params = await read_params(request, UpdateMailbox)
    permit(request, "update", "mailboxes", owner=params.user)
    changes = params.model_dump(exclude_none=True, exclude={"user", "mailbox", "sess", "ip"})
    await runtime(request).mailboxes.update(params.user, params.mailbox, changes)
    return ok()


@routes.delete("/users/{user}/mailboxes/{mailbox}")
@documented(MailboxRef, errors.NoSuchMailbox, errors.DisallowedMailboxMethod)
async def delete_mailbox(request: web.Request) -> web.Response:
    params = await read_params(request, MailboxRef)
    permit(request, "delete", "mailboxes", owner=params.user)
    await runtime(request).mailboxes.delete(params.user, params.mailbox)
    return ok()
