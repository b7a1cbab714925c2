"""Password authentication (POST /authenticate, POST /preauth) with login rate limits.

Unknown users and wrong passwords get the same `AuthFailed`, after the same amount of hashing
work, so the answer tells nothing about which accounts exist. A disabled or suspended account is
only reported once the password was right. Imported hashes are upgraded on a successful login.
Every attempt reserves its place on the account, client and global limits before its password is
checked (`login_limits`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from wildpy import errors, passwords
from wildpy.addressing import lookup_view, username_view
from wildpy.clock import utcnow
from wildpy.config import LimitsConfig
from wildpy.counters import Counters
from wildpy.errors import LimitState
from wildpy.storage.accounts import Users
from wildpy.storage.database import Document

from .login_limits import ACCOUNT_FAILURES, LoginLimits
from .tokens import TokenService
from .users import TEMP_PASSWORD_WINDOW, UserService

log = logging.getLogger("wildpy.auth")

SCOPES = ("master", "imap", "pop3", "smtp")

# verified against when the user does not exist, so both paths cost one KDF
_DUMMY_HASH = passwords.hash_password("wildpy-timing-equaliser")


def _login_key(username: str) -> str:
    """The canonical form of a login name that names no account (its limit's counter)."""
    name = username.strip()
    if "@" in name:
        try:
            return lookup_view(name)
        except errors.InputValidationError:
            return name.lower()
    return username_view(name)


def _account_key(user: Document) -> str:
    return str(user.get("unameview") or username_view(user["username"]))


@dataclass(frozen=True)
class Login:
    """Who may log in with a scope (POST /preauth), or just did (POST /authenticate)."""

    id: str
    username: str
    address: str
    scope: str
    #: the second factors to pass next (enabled2fa), for the master scope only; else empty
    require_2fa: list[str]


@dataclass(frozen=True)
class LoginOutcome(Login):
    """A successful password login."""

    #: WildDuck's client hint: the account wants a second factor enabled (the login stands)
    require_2fa_enabled: bool
    #: the temporary password was used: the client should make the user set a new one
    require_password_change: bool


@dataclass(frozen=True)
class Authenticated:
    user: Document
    scope: str
    require_password_change: bool
    limit: LimitState


class AuthService:
    def __init__(
        self,
        users: Users,
        user_service: UserService,
        tokens: TokenService,
        counters: Counters,
        *,
        limits: LimitsConfig | None = None,
    ) -> None:
        self._users = users
        self._user_service = user_service
        self._tokens = tokens
        self._limits = LoginLimits(counters, limits or LimitsConfig())

    async def _find(self, username: str) -> Document | None:
        try:
            user_id = await self._user_service.resolve(username)
        except (errors.UserNotFound, errors.InputValidationError):
            return None
        return await self._users.get(user_id)

    async def preauth(self, username: str, scope: str) -> Login:
        user = await self._find(username)
        if user is None or user.get("disabled") or user.get("suspended"):
            raise errors.AuthFailed()
        if scope in user.get("disabledScopes", []):
            raise errors.InvalidAuthScope()
        return self._describe(user, scope)

    async def authenticate(
        self, username: str, password: str, scope: str, *, client_ip: str | None = None
    ) -> Authenticated:
        user = await self._find(username)
        # one counter per account, whichever of its names is used (its unameview is as unique as
        # its id), and one per login name that names no account: both allow the same, so neither
        # the answer nor the limit tells which accounts exist
        account = _account_key(user) if user is not None else _login_key(username)
        reservation = await self._limits.reserve(account, client_ip)
        try:
            if user is None:
                await passwords.verify_password_async(password, _DUMMY_HASH)
                raise errors.AuthFailed()
            temporary = await self._check_password(user, password)
        except errors.AuthFailed as failure:
            failure.limit = reservation.limit  # the reserved place is the failure
            raise
        except Exception:  # neither a failed nor a successful login: the place is given back
            await reservation.cancel()
            raise
        await reservation.succeeded()
        if user.get("disabled") or user.get("suspended"):
            raise errors.UserDisabled()
        if scope in user.get("disabledScopes", []):
            raise errors.InvalidAuthScope()
        if not temporary and passwords.needs_rehash(user["password"]):
            await self._upgrade_hash(user, password)
        await self._users.record_login(user["_id"], utcnow(), "API")
        return Authenticated(
            user, scope, temporary, LimitState(ACCOUNT_FAILURES, ACCOUNT_FAILURES, 0)
        )

    async def _check_password(self, user: Document, password: str) -> bool:
        """Whether the temporary password was used; AuthFailed when no password matches."""
        temporary = await self._check_temp_password(user, password)
        if not temporary and not await passwords.verify_password_async(
            password, user.get("password") or ""
        ):
            raise errors.AuthFailed()
        return temporary

    async def _check_temp_password(self, user: Document, password: str) -> bool:
        temp = user.get("tempPassword")
        if not isinstance(temp, dict) or not temp.get("password"):
            return False
        if not await passwords.verify_password_async(password, temp["password"]):
            return False
        now = utcnow()
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
        await self._users.replace_password_hash(user["_id"], user["password"], upgraded)

    async def issue_token(self, authenticated: Authenticated) -> str:
        user = authenticated.user
        return await self._tokens.create_user_token(user["_id"], int(user.get("authVersion", 1)))

    @staticmethod
    def _describe(user: Document, scope: str) -> Login:
        enabled = user.get("enabled2fa") or []
        return Login(
            id=user["_id"],
            username=user["username"],
            address=user.get("address", ""),
            scope=scope,
            require_2fa=list(enabled) if scope == "master" else [],
        )

    def outcome(self, authenticated: Authenticated) -> LoginOutcome:
        """What the caller of a successful login is told."""
        login = self._describe(authenticated.user, authenticated.scope)
        return LoginOutcome(
            **vars(login),
            # a flag for the client only, as in WildDuck: the login succeeds either way
            require_2fa_enabled=bool(authenticated.user.get("require2faEnabled")),
            require_password_change=authenticated.require_password_change,
        )
