"""Typed application keys and the per-request authentication context."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web

from wildpy.config import Config
from wildpy.runtime import Runtime
from wildpy.services.account_records import TokenUser

CONFIG = web.AppKey("config", Config)
RUNTIME = web.AppKey("runtime", Runtime)


@dataclass
class AuthContext:
    """Who is calling: a role, and the user id (or `root`, or a provisioned token's name)."""

    role: str
    user: str
    token_hash: str | None = None
    #: the caller's user when a user token was checked against it (saves a round trip)
    token_user: TokenUser | None = field(default=None, repr=False)

    @property
    def is_user_token(self) -> bool:
        return self.token_user is not None


AUTH_KEY = web.RequestKey("auth", AuthContext)
REQUEST_ID_KEY = web.RequestKey("request_id", str)


def runtime(request: web.Request) -> Runtime:
    return request.app[RUNTIME]


def auth(request: web.Request) -> AuthContext:
    try:
        return request[AUTH_KEY]
    except KeyError:
        raise RuntimeError("auth middleware did not run for this route") from None


def request_id(request: web.Request) -> str:
    return str(request.get(REQUEST_ID_KEY, "-"))
