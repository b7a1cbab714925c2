"""Access control: who is calling (the token middleware) and may they do this (`permit`).

The token comes from `?accessToken=`, `X-Access-Token` or `Authorization: Bearer`. The root token
from the configuration is compared in constant time without touching the database; any other
token is looked up (hashed) by the token service.
"""

from __future__ import annotations

import hmac

from aiohttp import web
from aiohttp.typedefs import Handler

from wildpy.errors import InvalidToken, MissingPrivileges, UserDisabled
from wildpy.roles import Action, Permission

from .context import AUTH_KEY, CONFIG, AuthContext, auth, runtime

#: routes anyone may call: they reveal nothing about the data
PUBLIC_PATHS = frozenset({"/errors", "/health", "/openapi.json"})


def token_of(request: web.Request) -> str | None:
    token = request.query.get("accessToken") or request.headers.get("X-Access-Token")
    if token:
        return token.strip()
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path in PUBLIC_PATHS:
        return await handler(request)
    request[AUTH_KEY] = await identify(request)
    return await handler(request)


async def identify(request: web.Request) -> AuthContext:
    token = token_of(request)
    if not token:
        raise InvalidToken()
    root_token = request.app[CONFIG].api.access_token
    # header bytes that are not UTF-8 arrive as surrogates: they compare unequal, never raise
    presented = token.encode("utf-8", "surrogateescape")
    if root_token and hmac.compare_digest(presented, root_token.encode()):
        return AuthContext(role="root", user="root")
    rt = runtime(request)
    identity = await rt.tokens.identify(token)
    if identity is None or not rt.roles.exists(identity.role):
        raise InvalidToken()
    token_user = identity.token_user
    if token_user is not None and token_user.disabled:
        raise UserDisabled()
    return AuthContext(identity.role, identity.user, identity.token_hash, token_user)


def permit(
    request: web.Request, action: Action, resource: str, owner: str | None = None
) -> Permission:
    """The caller's permission for `action` on `resource`, owned by `owner`; 403 if none."""
    caller = auth(request)
    own = owner is not None and caller.user == owner
    permission = runtime(request).roles.can(caller.role, action, resource, own=own)
    if not permission.granted:
        raise MissingPrivileges()
    return permission


def permit_listing(request: web.Request, resource: str) -> tuple[Permission, str | None]:
    """Permission to list `resource`, and the only owner to list when the caller may read its own
    things but not anybody's (a user token listing users sees itself)."""
    caller = auth(request)
    permission = runtime(request).roles.can(caller.role, "read", resource, own=False)
    if permission.granted:
        return permission, None
    return permit(request, "read", resource, owner=caller.user), caller.user
