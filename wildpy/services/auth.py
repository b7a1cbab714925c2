"""Password authentication (POST /authenticate, POST /preauth) with per-user rate limiting.

Unknown users and wrong passwords get the same `AuthFailed`, after the same amount of hashing
work, so the answer tells nothing about which accounts exist. A disabled or suspended account is
only reported once the password was right. Imported hashes are upgraded on a successful login.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from wildpy import errors, passwords
from wildpy.addressing import lookup_view, username_view
from wildpy.counters import Counters
from wildpy.errors import LimitState
from wildpy.storage.accounts import Users
from wildpy.storage.database import Document

from .tokens import TokenService
from .users import TEMP_PASSWORD_WINDOW, UserService

log = logging.getLogger("wildpy.auth")

AUTH_FAILURES = 12
AUTH_WINDOW = 120
SCOPES = ("master", "imap", "pop3", "smtp")

# verified against when the user does not exist, so both paths cost one KDF
_DUMMY_HASH = passwords.hash_password("wildpy-timing-equaliser")


def _login_key(username: str) -> str:
    """The canonical form of a login name: the spellings that reach one account share a key."""
    name = username.strip()
    if "@" in name:
        try:
            return lookup_view(name)
        except errors.InputValidationError:
            return name.lower()
    return username_view(name)


@dataclass(frozen=True)
class Authenticated:
    user: Document
    scope: str
    require_password_change: bool
    limit: LimitState


class AuthService:
    def __init__(
        self, users: Users, user_service: UserService, tokens: TokenService, counters: Counters
    ) -> None:
        self._users = users
        self._user_service = user_service
        self._tokens = tokens
        self._counters = counters

    async def _find(self, username: str) -> Document | None:
        try:
            user_id = await self._user_service.resolve(username)
        except (errors.UserNotFound, errors.InputValidationError):
            return None
        return await self._users.get(user_id)

    async def preauth(self, username: str, scope: str) -> dict[str, Any]:
        user = await self._find(username)
        if user is None or user.get("disabled") or user.get("suspended"):
            raise errors.AuthFailed()
        if scope in user.get("disabledScopes", []):
            raise errors.InvalidAuthScope()
        return self._describe(user, scope)

    async def authenticate(self, username: str, password: str, scope: str) -> Authenticated:
        # failures are counted per login name, whether or not it exists, so neither the answer
        # nor the rate limit tells which accounts exist
        counter = f"auth:{_login_key(username)}"
        [state] = await self._counters.read([counter])
        if state.value >= AUTH_FAILURES:
            refused = errors.RateLimitedError(
                "Authentication was rate limited",
                details={"limit": AUTH_FAILURES, "window": AUTH_WINDOW, "retry_after": state.ttl},
            )
            refused.limit = LimitState(AUTH_FAILURES, 0, state.ttl or AUTH_WINDOW)
            raise refused
        user = await self._find(username)
        if user is None:
            await passwords.verify_password_async(password, _DUMMY_HASH)
            raise await self._failed(counter)
        user_id = user["_id"]
        temporary = await self._check_temp_password(user, password)
        if not temporary and not await passwords.verify_password_async(
            password, user.get("password") or ""
        ):
            raise await self._failed(counter)
        await self._counters.delete(counter)
        if user.get("disabled") or user.get("suspended"):
            raise errors.UserDisabled()
        if scope in user.get("disabledScopes", []):
            raise errors.InvalidAuthScope()
        if not temporary and passwords.needs_rehash(user["password"]):
            await self._upgrade_hash(user, password)
        await self._users.update_one(
            {"_id": user_id},
            {"$set": {"lastLogin": {"time": datetime.now(UTC), "protocol": "API"}}},
        )
        return Authenticated(user, scope, temporary, LimitState(AUTH_FAILURES, AUTH_FAILURES, 0))

    async def _failed(self, counter: str) -> errors.AuthFailed:
        state = await self._counters.limited_increment(counter, 1, 0, AUTH_WINDOW)
        failure = errors.AuthFailed()
        failure.limit = LimitState(
            AUTH_FAILURES, AUTH_FAILURES - state.value, state.ttl or AUTH_WINDOW
        )
        return failure

    async def _check_temp_password(self, user: Document, password: str) -> bool:
        temp = user.get("tempPassword")
        if not isinstance(temp, dict) or not temp.get("password"):
            return False
        if not await passwords.verify_password_async(password, temp["password"]):
            return False
        now = datetime.now(UTC)
        if temp["validAfter"] > now:
            raise errors.TempPasswordNotYetValid()
        return bool(temp["validAfter"] + TEMP_PASSWORD_WINDOW > now)

    async def _upgrade_hash(self, user: Document, password: str) -> None:
        try:
            upgraded = await passwords.hash_password_async(password)
        except Exception:  # an upgrade is an improvement, never a reason to refuse a login
            log.warning("could not upgrade password hash of user %s", user["_id"])
            return
        # only if nobody changed the password meanwhile
        await self._users.update_one(
            {"_id": user["_id"], "password": user["password"]}, {"$set": {"password": upgraded}}
        )

    async def issue_token(self, authenticated: Authenticated) -> str:
        user = authenticated.user
        return await self._tokens.create_user_token(user["_id"], int(user.get("authVersion", 1)))

    @staticmethod
    def _describe(user: Document, scope: str) -> dict[str, Any]:
        enabled = user.get("enabled2fa") or []
        return {
            "id": user["_id"],
            "username": user["username"],
            "address": user.get("address", ""),
            "scope": scope,
            "require2fa": list(enabled) if enabled and scope == "master" else False,
        }

    def response(self, authenticated: Authenticated) -> dict[str, Any]:
        body = self._describe(authenticated.user, authenticated.scope)
        # a flag for the client only, as in WildDuck: the login succeeds either way
        body["require2faEnabled"] = bool(authenticated.user.get("require2faEnabled"))
        body["requirePasswordChange"] = authenticated.require_password_change
        return body
