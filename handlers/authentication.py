"""REST routes for authentication (WildDuck reference 5.2): preauth, authenticate, tokens."""

from __future__ import annotations

from typing import Any, Literal

from aiohttp import web
from pydantic import Field

from wildpy import errors
from wildpy.errors import InputValidationError, MissingPrivileges
from wildpy.services.auth import Login, LoginOutcome
from wildpy.services.login_limits import client_key

from .auth import permit, permit_listing
from .context import auth, runtime
from .openapi import documented
from .responses import json_response, limit_headers, ok
from .validation import Bool, Params, read_params

routes = web.RouteTableDef()

Scope = Literal["master", "imap", "pop3", "smtp"]


def _login_body(login: Login) -> dict[str, Any]:
    """WildDuck's fields of a (pre)authentication answer, in its order."""
    return {
        "id": login.id,
        "username": login.username,
        "address": login.address,
        "scope": login.scope,
        # WildDuck: the list of second factors when there are any, else false
        "require2fa": login.require_2fa or False,
    }


def _outcome_body(outcome: LoginOutcome) -> dict[str, Any]:
    return {
        **_login_body(outcome),
        "require2faEnabled": outcome.require_2fa_enabled,
        "requirePasswordChange": outcome.require_password_change,
    }


class Preauth(Params):
    username: str = Field(min_length=1, max_length=255)
    scope: Scope = "master"


class Authenticate(Preauth):
    password: str = Field(min_length=1, max_length=256)
    protocol: str = Field("API", max_length=100)
    appId: str | None = Field(None, max_length=256)
    token: Bool = None


@routes.post("/preauth")
@documented(Preauth, errors.AuthFailed, errors.InvalidAuthScope)
async def preauth(request: web.Request) -> web.Response:
    params = await read_params(request, Preauth)
    permit(request, "create", "authentication")
    return ok(**_login_body(await runtime(request).auth.preauth(params.username, params.scope)))


@routes.post("/authenticate")
@documented(
    Authenticate,
    errors.AuthFailed,
    errors.UserDisabled,
    errors.InvalidAuthScope,
    errors.RateLimitedError,
    errors.TempPasswordNotYetValid,
)
async def authenticate(request: web.Request) -> web.Response:
    params = await read_params(request, Authenticate)
    permission = permit(request, "create", "authentication")
    if params.token:
        if not permission.allows_attribute("token"):
            raise MissingPrivileges("This role can not request tokens")
        if params.scope != "master":
            message = "Tokens can only be issued for the master scope"
            raise InputValidationError(message, details={"token": message})
    service = runtime(request).auth
    # the client a webmail names (`ip`) is the one to limit; otherwise, or when `ip` is no
    # address (which would escape the per-client limit), whoever connects
    client_ip = params.ip if client_key(params.ip) else request.remote
    result = await service.authenticate(
        params.username, params.password, params.scope, client_ip=client_ip
    )
    body = _outcome_body(service.outcome(result))
    if params.token:
        body["token"] = await service.issue_token(result)
    return json_response(body, headers=limit_headers(result.limit))


@routes.delete("/authenticate")
@documented(None)
async def invalidate_token(request: web.Request) -> web.Response:
    caller = auth(request)
    if caller.token_hash is not None:
        await runtime(request).tokens.revoke(caller.token_hash)
    return ok()


@routes.get("/authenticated")
@documented(Params)
async def is_authenticated(request: web.Request) -> web.Response:
    """Whether the token is valid (WildDuck's isUserAuthenticated): a bad or expired token never
    gets here (401 InvalidToken); a token whose role may not read authentication gets 403."""
    await read_params(request, Params, body=False)
    # WildDuck: readAny for the admin roles, readOwn for a user's own token
    permit_listing(request, "authentication")
    return ok()
