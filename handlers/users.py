"""REST routes for users (WildDuck reference 5.1): parse, authorise, one service call, answer."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from aiohttp import web
from pydantic import AfterValidator, BeforeValidator, Field, WithJsonSchema

from wildpy import errors
from wildpy.addressing import validate_username
from wildpy.errors import InputValidationError
from wildpy.services.account_inputs import NewUser, UserChanges

from .auth import permit, permit_listing
from .context import auth, runtime
from .message_params import DateOrFalse
from .openapi import documented
from .responses import ok, page_answer
from .user_views import (
    deletion_body,
    password_body,
    quota_body,
    restore_body,
    restore_info_body,
    user_body,
    user_row,
)
from .validation import Bool, ObjectIdStr, PageParams, Params, read_params

routes = web.RouteTableDef()

LimitInt = Field(None, ge=0, le=2**53)
Text256 = Field(None, max_length=256)
#: a password, or false/'' for "no password" (the length applies to the string only)
Password = Annotated[str, Field(max_length=256)] | Literal[False]


def _public_key(value: str) -> str:
    """An armored PGP public key, or '' to clear it. Only the armor is checked: no PGP library is
    available to test-encrypt with the key, as WildDuck does."""
    if value.strip() and not value.lstrip().startswith("-----BEGIN PGP PUBLIC KEY BLOCK-----"):
        raise ValueError("PGP key validation failed. Not an armored PGP public key")
    return value


def _not_yet(feature: str) -> Any:
    """A WildDuck field for a feature wildpy does not have yet: refused by name when it asks for
    the feature, dropped (None) when it is empty and asks for nothing, never stored and ignored."""

    def refuse(value: object) -> object:
        if value is None or value == "" or value == []:
            return None
        raise ValueError(f"is not supported by wildpy yet ({feature})")

    return BeforeValidator(refuse)


#: only the values that ask for nothing are accepted, so only they are documented
_NOTHING = WithJsonSchema(
    {"anyOf": [{"type": "null"}, {"type": "string", "const": ""}, {"type": "array", "maxItems": 0}]}
)
#: WildDuck's outbound relay of a user, and its S/MIME encryption of stored mail
MtaRelay = Annotated[str | None, _not_yet("no outbound MTA relay per user"), _NOTHING]
SmimeCerts = Annotated[list[str] | None, _not_yet("no S/MIME encryption of stored mail"), _NOTHING]
SmimeOption = Annotated[str | None, _not_yet("no S/MIME encryption of stored mail"), _NOTHING]
#: a flag's value is pydantic's lax bool (0/1, "yes", "off", "t"...), documented as such
_LAX_BOOL = {
    "anyOf": [
        {"type": "boolean"},
        {"type": "integer", "enum": [0, 1]},
        {
            "type": "string",
            "pattern": "^(?:[01]|[tT]|[fF]|[yY]|[nN]|[yY][eE][sS]|[nN][oO]"
            "|[oO][nN]|[oO][fF][fF]|[tT][rR][uU][eE]|[fF][aA][lL][sS][eE])$",
        },
    ]
}
FeatureFlags = Annotated[
    dict[str, bool] | None,
    WithJsonSchema(
        {"anyOf": [{"type": "object", "additionalProperties": _LAX_BOOL}, {"type": "null"}]}
    ),
]


class UserFields(Params):
    """Fields shared by create and update."""

    password: Password | None = None
    hashedPassword: Bool = None
    allowUnsafe: Bool = None
    language: str | None = Field(None, max_length=20)
    retention: int | None = LimitInt
    name: str | None = Text256
    targets: list[str] | None = Field(None, max_length=1000)
    spamLevel: int | None = Field(None, ge=0, le=100)
    quota: int | None = LimitInt
    recipients: int | None = LimitInt
    forwards: int | None = LimitInt
    filters: int | None = LimitInt
    imapMaxUpload: int | None = LimitInt
    imapMaxDownload: int | None = LimitInt
    pop3MaxDownload: int | None = LimitInt
    pop3MaxMessages: int | None = LimitInt
    imapMaxConnections: int | None = LimitInt
    receivedMax: int | None = LimitInt
    fromWhitelist: list[str] | None = Field(None, max_length=1000)
    tags: list[str] | str | None = None
    uploadSentMessages: Bool = None
    disabledScopes: list[Literal["imap", "pop3", "smtp"]] | None = None
    metaData: dict[str, Any] | str | None = None
    internalData: dict[str, Any] | str | None = None
    pubKey: Annotated[str, Field(max_length=65536), AfterValidator(_public_key)] | None = None
    encryptMessages: Bool = None
    encryptForwarded: Bool = None
    featureFlags: FeatureFlags = None
    disabled: Bool = None
    suspended: Bool = None
    #: a flag for the client (WildDuck's): the user is asked to turn a second factor on; it does
    #: not change how authentication works
    require2faEnabled: Bool = None
    mtaRelay: MtaRelay = None
    smimeCerts: SmimeCerts = None
    smimeCipher: SmimeOption = None
    smimeKeyTransport: SmimeOption = None


class MailboxNames(Params):
    sent: str | None = Field(None, max_length=512)
    trash: str | None = Field(None, max_length=512)
    junk: str | None = Field(None, max_length=512)
    drafts: str | None = Field(None, max_length=512)


class CreateUser(UserFields):
    username: str = Field(min_length=1, max_length=128)
    password: Password
    address: str | None = Field(None, max_length=255)
    emptyAddress: Bool = None
    requirePasswordChange: Bool = None
    addTagsToAddress: Bool = None
    mailboxes: MailboxNames | None = None


class UpdateUser(UserFields):
    user: ObjectIdStr
    existingPassword: str | None = Field(None, min_length=1, max_length=256)
    disable2fa: Bool = None
    #: the application's name for the security log (WildDuck's), like `sess` and `ip`
    protocol: str | None = Field(None, min_length=1, max_length=100)


class UserPath(Params):
    user: ObjectIdStr


class ListUsers(PageParams):
    query: str | None = Field(None, max_length=255)
    forward: str | None = Field(None, max_length=255)
    tags: str | None = Field(None, max_length=1024)
    requiredTags: str | None = Field(None, max_length=1024)
    metaData: Bool = None
    internalData: Bool = None


def _username_or_address(value: str) -> str:
    """A username (checked against the username rules) or anything address-shaped."""
    if "@" not in value:
        try:
            validate_username(value)
        except InputValidationError:
            raise ValueError("must be a username or an email address") from None
    return value


class ResolveUser(Params):
    username: Annotated[str, AfterValidator(_username_or_address)] = Field(
        min_length=1, max_length=255
    )


class DeleteUser(Params):
    user: ObjectIdStr
    deleteAfter: DateOrFalse = None


class Logout(Params):
    user: ObjectIdStr
    reason: str | None = Field(None, max_length=128)


class ResetPassword(Params):
    user: ObjectIdStr
    validAfter: DateOrFalse = None


def _fields(params: Params, *exclude: str) -> dict[str, Any]:
    return params.model_dump(exclude_none=True, exclude={"sess", "ip", *exclude})


@routes.get("/users")
@documented(ListUsers)
async def list_users(request: web.Request) -> web.Response:
    params = await read_params(request, ListUsers, body=False)
    permission, only_user = permit_listing(request, "userlisting")
    result = await runtime(request).users.list(
        params.paging,
        query=params.query,
        forward=params.forward,
        tags=params.tags,
        required_tags=params.requiredTags,
        only_user=only_user,
    )
    meta, internal = bool(params.metaData), bool(params.internalData)
    rows = [
        permission.filter(user_row(account, meta=meta, internal=internal))
        for account in result.results
    ]
    return page_answer(result.page, rows, query=params.query or "")


@routes.post("/users")
@documented(
    CreateUser,
    errors.UserExistsError,
    errors.AddressExistsError,
    errors.InsecurePasswordError,
    errors.HashError,
)
async def create_user(request: web.Request) -> web.Response:
    params = await read_params(request, CreateUser)
    permission = permit(request, "create", "users")
    new_user = NewUser.from_fields(permission.filter(_fields(params)))
    user_id = await runtime(request).users.create(new_user)
    return ok(id=user_id)


@routes.get("/users/resolve/{username}")
@documented(ResolveUser, errors.UserNotFound)
async def resolve_user(request: web.Request) -> web.Response:
    params = await read_params(request, ResolveUser, body=False)
    permit(request, "read", "users")
    return ok(id=await runtime(request).users.resolve(params.username))


@routes.get("/users/{user}")
@documented(UserPath, errors.UserNotFound, errors.UserDisabled)
async def get_user(request: web.Request) -> web.Response:
    params = await read_params(request, UserPath, body=False)
    permission = permit(request, "read", "users", owner=params.user)
    user = await runtime(request).users.get(params.user, known=auth(request).token_user)
    return ok(**permission.filter(user_body(user)))


@routes.put("/users/{user}")
@documented(
    UpdateUser,
    errors.UserNotFound,
    errors.NoUpdates,
    errors.AuthFail,
    errors.InsecurePasswordError,
    errors.HashError,
)
async def update_user(request: web.Request) -> web.Response:
    params = await read_params(request, UpdateUser)
    permission = permit(request, "update", "users", owner=params.user)
    caller = auth(request)
    await runtime(request).users.update(
        params.user,
        UserChanges.from_fields(permission.filter(_fields(params, "user", "protocol"))),
        via_token=caller.token_hash if caller.user == params.user else None,
    )
    return ok()


@routes.delete("/users/{user}")
@documented(DeleteUser, errors.UserNotFound)
async def delete_user(request: web.Request) -> web.Response:
    params = await read_params(request, DeleteUser)
    permit(request, "delete", "users")
    delete_after = params.deleteAfter if isinstance(params.deleteAfter, datetime) else None
    return ok(**deletion_body(await runtime(request).users.delete(params.user, delete_after)))


@routes.put("/users/{user}/logout")
@documented(Logout, errors.UserNotFound)
async def logout_user(request: web.Request) -> web.Response:
    params = await read_params(request, Logout)
    permit(request, "read", "users", owner=params.user)
    await runtime(request).users.require(params.user)
    return ok()


@routes.post("/users/{user}/quota/reset")
@documented(UserPath, errors.UserNotFound)
async def recalculate_quota(request: web.Request) -> web.Response:
    params = await read_params(request, UserPath)
    permit(request, "update", "users", owner=params.user)
    return ok(**quota_body(await runtime(request).users.recalculate_quota(params.user)))


@routes.post("/quota/reset")
@documented(Params)
async def recalculate_all_quotas(request: web.Request) -> web.Response:
    """Recount the storage of every user, as a background task; the task's id at once."""
    await read_params(request, Params)
    permit(request, "update", "users")
    return ok(task=await runtime(request).tasks.schedule_quota_reset())


@routes.post("/users/{user}/password/reset")
@documented(ResetPassword, errors.UserNotFound, errors.HashError)
async def reset_password(request: web.Request) -> web.Response:
    params = await read_params(request, ResetPassword)
    permit(request, "update", "users")
    valid_after = params.validAfter if isinstance(params.validAfter, datetime) else None
    temporary = await runtime(request).users.reset_password(params.user, valid_after)
    return ok(**password_body(temporary))


@routes.get("/users/{user}/restore")
@documented(UserPath, errors.AccountNotFound)
async def restore_info(request: web.Request) -> web.Response:
    params = await read_params(request, UserPath, body=False)
    permit(request, "read", "users", owner=params.user)
    return ok(**restore_info_body(await runtime(request).users.restore_info(params.user)))


@routes.post("/users/{user}/restore")
@documented(UserPath, errors.AccountNotFound, errors.AccountFound, errors.UserExistsError)
async def restore_user(request: web.Request) -> web.Response:
    params = await read_params(request, UserPath)
    permit(request, "update", "users", owner=params.user)
    return ok(**restore_body(await runtime(request).users.restore(params.user)))
