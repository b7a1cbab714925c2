"""REST routes for addresses (WildDuck reference 5.3): user, forwarded, resolve, listing."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from aiohttp import web
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema

from wildpy import errors
from wildpy.services.account_inputs import (
    ForwardedChanges,
    NewForwarded,
    NewUserAddress,
    UserAddressChanges,
)

from .address_views import (
    address_row,
    forwarded_body,
    register_row,
    rename_body,
    resolution_body,
    user_address_body,
)
from .auth import permit, permit_listing
from .context import runtime
from .message_params import DATE_OR_FALSE_STRICT_SCHEMA, parse_date
from .openapi import documented
from .responses import ok, page_answer
from .validation import Bool, ObjectIdStr, PageParams, Params, read_params

routes = web.RouteTableDef()
# path segments that carry an address use {address:[^/]+}: aiohttp's default segment pattern
# refuses "{" and "}", which are legal in a local part (RFC 5322 atext)

Metadata = dict[str, Any] | str | None


def _optional_date(value: object) -> object:
    if value is None or value is False or value == "":
        return False if value == "" else value
    return parse_date(value)  # epoch milliseconds, as Joi.date(): `0` is 1970, not "clear"


#: a date, or false / "" to clear it (WildDuck: Joi.date().empty('').allow(false))
OptionalDate = Annotated[
    datetime | Literal[False] | None,
    BeforeValidator(_optional_date),
    WithJsonSchema(DATE_OR_FALSE_STRICT_SCHEMA),
]
#: the daily forward limit; MongoDB stores at most a 64-bit integer
Forwards = Field(None, ge=0, le=2**53)


class AddressFields(Params):
    name: str | None = Field(None, max_length=128)
    tags: list[str] | str | None = None
    metaData: Metadata = None
    internalData: Metadata = None


class CreateUserAddress(AddressFields):
    user: ObjectIdStr
    address: str = Field(min_length=3, max_length=255)
    main: Bool = None
    allowWildcard: Bool = None


class UserAddressPath(Params):
    user: ObjectIdStr
    address: str = Field(min_length=1, max_length=255)


class UserAddressQuery(Params):
    user: ObjectIdStr
    metaData: Bool = None
    internalData: Bool = None


class UpdateUserAddress(AddressFields):
    user: ObjectIdStr
    id: ObjectIdStr
    address: str | None = Field(None, max_length=255)
    main: Bool = None


class Autoreply(BaseModel):
    """The nested autoreply object: its own keys only (`sess`/`ip` belong to the request)."""

    model_config = ConfigDict(extra="forbid")

    status: Bool = None
    start: OptionalDate = None
    end: OptionalDate = None
    name: str | None = Field(None, max_length=128)
    subject: str | None = Field(None, max_length=2048)
    text: str | None = Field(None, max_length=128 * 1024)
    html: str | None = Field(None, max_length=128 * 1024)


class CreateForwarded(AddressFields):
    address: str = Field(min_length=3, max_length=255)
    targets: list[str] | None = Field(None, max_length=1000)
    forwards: int | None = Forwards
    allowWildcard: Bool = None
    autoreply: Autoreply | None = None


class UpdateForwarded(AddressFields):
    id: ObjectIdStr
    address: str | None = Field(None, max_length=255)
    targets: list[str] | None = Field(None, max_length=1000)
    forwards: int | None = Forwards
    autoreply: Autoreply | None = None
    forwardedDisabled: Bool = None


class ForwardedPath(Params):
    address: ObjectIdStr


class ResolveAddress(Params):
    address: str = Field(min_length=1, max_length=255)
    allowWildcard: Bool = None


class CheckAddress(Params):
    address: str = Field(min_length=3, max_length=255)
    allowWildcard: Bool = None


class ListAddresses(PageParams):
    query: str | None = Field(None, max_length=255)
    forward: str | None = Field(None, max_length=255)
    tags: str | None = Field(None, max_length=1024)
    requiredTags: str | None = Field(None, max_length=1024)
    metaData: Bool = None
    internalData: Bool = None


class RenameDomain(Params):
    oldDomain: str = Field(min_length=1, max_length=255)
    newDomain: str = Field(min_length=1, max_length=255)


class Register(Params):
    user: ObjectIdStr
    query: str = Field(min_length=1, max_length=255)
    limit: int = Field(20, ge=1, le=250)


def _fields(params: Params, *exclude: str) -> dict[str, Any]:
    return params.model_dump(exclude_none=True, exclude={"sess", "ip", *exclude})


# ---------------------------------------------------------------------------------- listing


@routes.get("/addresses")
@documented(ListAddresses)
async def list_addresses(request: web.Request) -> web.Response:
    params = await read_params(request, ListAddresses, body=False)
    permission, only_user = permit_listing(request, "addresslisting")
    page, addresses = await runtime(request).addresses.list_all(
        params.paging,
        query=params.query,
        forward=params.forward,
        tags=params.tags,
        required_tags=params.requiredTags,
        only_user=only_user,
    )
    meta, internal = bool(params.metaData), bool(params.internalData)
    rows = [
        permission.filter(address_row(address, meta=meta, internal=internal))
        for address in addresses
    ]
    return page_answer(page, rows, query=params.query or "")


@routes.get("/addresses/resolve/{address:[^/]+}")
@documented(ResolveAddress, errors.AddressNotFound)
async def resolve_address(request: web.Request) -> web.Response:
    params = await read_params(request, ResolveAddress, body=False)
    permit(request, "read", "addresses")
    resolution = await runtime(request).addresses.resolve(
        params.address, allow_wildcard=bool(params.allowWildcard)
    )
    return ok(**resolution_body(resolution))


@routes.get("/addresses/check/{address:[^/]+}")
@documented(CheckAddress, errors.AddressExistsError)
async def check_address(request: web.Request) -> web.Response:
    """Whether the address could be created now (a preflight: nothing is created); when not,
    the error creating it would answer."""
    params = await read_params(request, CheckAddress, body=False)
    permit(request, "read", "addresses")
    parsed = await runtime(request).addresses.check_new_address(
        params.address, allow_wildcard=bool(params.allowWildcard)
    )
    return ok(address=parsed.address)


@routes.put("/addresses/renameDomain")
@documented(RenameDomain)
async def rename_domain(request: web.Request) -> web.Response:
    params = await read_params(request, RenameDomain)
    permit(request, "update", "addresses")
    rename = await runtime(request).addresses.rename_domain(params.oldDomain, params.newDomain)
    return ok(**rename_body(rename))


# ---------------------------------------------------------------------------------- forwarded


@routes.post("/addresses/forwarded")
@documented(CreateForwarded, errors.AddressExistsError)
async def create_forwarded(request: web.Request) -> web.Response:
    params = await read_params(request, CreateForwarded)
    permission = permit(request, "create", "addresses")
    return ok(
        id=await runtime(request).addresses.create_forwarded(
            NewForwarded.from_fields(permission.filter(_fields(params)))
        )
    )


@routes.get("/addresses/forwarded/{address}")
@documented(ForwardedPath, errors.AddressNotFound)
async def get_forwarded(request: web.Request) -> web.Response:
    params = await read_params(request, ForwardedPath, body=False)
    permission = permit(request, "read", "addresses")
    forwarded = await runtime(request).addresses.get_forwarded(params.address)
    return ok(**permission.filter(forwarded_body(forwarded)))


@routes.put("/addresses/forwarded/{id}")
@documented(
    UpdateForwarded,
    errors.AddressNotFound,
    errors.AddressExistsError,
    errors.ChangeNotAllowed,
    errors.NoUpdates,
)
async def update_forwarded(request: web.Request) -> web.Response:
    params = await read_params(request, UpdateForwarded)
    permission = permit(request, "update", "addresses")
    await runtime(request).addresses.update_forwarded(
        params.id, ForwardedChanges.from_fields(permission.filter(_fields(params, "id")))
    )
    return ok()


@routes.delete("/addresses/forwarded/{address}")
@documented(ForwardedPath, errors.AddressNotFound)
async def delete_forwarded(request: web.Request) -> web.Response:
    params = await read_params(request, ForwardedPath)
    permit(request, "delete", "addresses")
    await runtime(request).addresses.delete_forwarded(params.address)
    return ok()


# ---------------------------------------------------------------------------------- user addresses


@routes.post("/users/{user}/addresses")
@documented(CreateUserAddress, errors.UserNotFound, errors.AddressExistsError)
async def create_user_address(request: web.Request) -> web.Response:
    params = await read_params(request, CreateUserAddress)
    permission = permit(request, "create", "addresses", owner=params.user)
    address_id = await runtime(request).addresses.create_user_address(
        params.user, NewUserAddress.from_fields(permission.filter(_fields(params, "user")))
    )
    return ok(id=address_id)


@routes.get("/users/{user}/addresses")
@documented(UserAddressQuery, errors.UserNotFound)
async def list_user_addresses(request: web.Request) -> web.Response:
    params = await read_params(request, UserAddressQuery, body=False)
    permission = permit(request, "read", "addresses", owner=params.user)
    addresses = await runtime(request).addresses.list_user_addresses(params.user)
    meta = bool(params.metaData)
    internal = bool(params.internalData) and permission.allows_attribute("internalData")
    return ok(results=[user_address_body(row, meta=meta, internal=internal) for row in addresses])


@routes.get("/users/{user}/addressregister")
@documented(Register, errors.UserNotFound)
async def address_register(request: web.Request) -> web.Response:
    params = await read_params(request, Register, body=False)
    permit(request, "read", "addresses", owner=params.user)
    entries = await runtime(request).addresses.register(params.user, params.query, params.limit)
    return ok(results=[register_row(entry) for entry in entries])


@routes.get("/users/{user}/addresses/{address:[^/]+}")
@documented(UserAddressPath, errors.UserNotFound, errors.AddressNotFound)
async def get_user_address(request: web.Request) -> web.Response:
    params = await read_params(request, UserAddressPath, body=False)
    permission = permit(request, "read", "addresses", owner=params.user)
    address = await runtime(request).addresses.get_user_address(params.user, params.address)
    internal = permission.allows_attribute("internalData")
    return ok(**user_address_body(address, meta=True, internal=internal))


@routes.put("/users/{user}/addresses/{id}")
@documented(
    UpdateUserAddress,
    errors.UserNotFound,
    errors.AddressNotFound,
    errors.AddressExistsError,
    errors.ChangeNotAllowed,
    errors.WildcardNotPermitted,
)
async def update_user_address(request: web.Request) -> web.Response:
    params = await read_params(request, UpdateUserAddress)
    permission = permit(request, "update", "addresses", owner=params.user)
    await runtime(request).addresses.update_user_address(
        params.user,
        params.id,
        UserAddressChanges.from_fields(permission.filter(_fields(params, "user", "id"))),
    )
    return ok()


@routes.delete("/users/{user}/addresses/{address:[^/]+}")
@documented(UserAddressPath, errors.UserNotFound, errors.AddressNotFound, errors.NotPermitted)
async def delete_user_address(request: web.Request) -> web.Response:
    params = await read_params(request, UserAddressPath)
    permit(request, "delete", "addresses", owner=params.user)
    await runtime(request).addresses.delete_user_address(params.user, params.address)
    return ok()
