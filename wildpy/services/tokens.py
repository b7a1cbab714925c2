"""Access tokens: user tokens from /authenticate and provisioned role tokens from the CLI.

A token is 20 random bytes as 40 hex characters (WildDuck's form). Only its SHA-256 is stored.
User tokens slide (each use extends them by the TTL, written at most once a minute to spare
round trips) up to a maximum lifetime, and die when the user's `authVersion` moves past theirs
(password change, suspension). `expires` and `lifetimeEnd` are Unix times in whole seconds.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import Any

from wildpy.clock import utcnow
from wildpy.storage.accounts import AccessTokens, Users
from wildpy.storage.database import is_id

from .account_records import TokenUser

_TOKEN = re.compile(r"^[0-9a-f]{40}$")

# sliding expiry is rewritten only when it moved by more than this (seconds), so most requests
# only read; a tenth of the TTL when that is less, or a short TTL would never slide
_SLIDE_GRANULARITY = 60


@dataclass(frozen=True)
class TokenIdentity:
    role: str
    user: str
    token_hash: str
    #: the user, when the token belongs to a user
    token_user: TokenUser | None


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenService:
    def __init__(self, tokens: AccessTokens, users: Users, *, ttl: int, lifetime: int) -> None:
        self._tokens = tokens
        self._users = users
        self._ttl = ttl
        self._lifetime = lifetime
        self._slide_granularity = min(_SLIDE_GRANULARITY, ttl // 10)

    async def create_user_token(self, user_id: str, auth_version: int) -> str:
        token = secrets.token_hex(20)
        created = utcnow()
        start = int(created.timestamp())
        await self._tokens.insert(
            {
                "_id": hash_token(token),
                "user": user_id,
                "role": "user",
                "created": created,
                "expires": start + self._ttl,
                "lifetimeEnd": start + self._lifetime,
                "authVersion": auth_version,
            }
        )
        return token

    async def provision(self, role: str, user: str, description: str = "") -> str:
        """A role token that does not expire (for services and operators)."""
        token = secrets.token_hex(20)
        document: dict[str, Any] = {
            "_id": hash_token(token),
            "user": user,
            "role": role,
            "created": utcnow(),
        }
        if description:
            document["description"] = description
        await self._tokens.insert(document)
        return token

    async def identify(self, token: str) -> TokenIdentity | None:
        """Who holds `token`, or None when it is unknown, expired or outdated."""
        if not _TOKEN.match(token):
            return None
        token_hash = hash_token(token)
        record = await self._tokens.by_hash(token_hash)
        if record is None:
            return None
        moment = int(utcnow().timestamp())
        expires = record.get("expires")
        if expires is not None and (expires <= moment or record["lifetimeEnd"] <= moment):
            await self._tokens.remove(token_hash)
            return None
        user_document = None
        if record["role"] == "user" or is_id(record["user"]):
            user_document = await self._users.by_id(record["user"])
            if user_document is None:
                return None
            if "authVersion" in record and record["authVersion"] < user_document.get(
                "authVersion", 1
            ):
                return None
        if expires is not None:
            slid = min(moment + self._ttl, record["lifetimeEnd"])
            if slid - expires > self._slide_granularity:
                await self._tokens.slide(token_hash, slid)
        token_user = None
        if user_document is not None:
            token_user = TokenUser(
                str(user_document["_id"]), bool(user_document.get("disabled")), user_document
            )
        return TokenIdentity(record["role"], record["user"], token_hash, token_user)

    async def revoke(self, token_hash: str) -> bool:
        return await self._tokens.remove(token_hash) > 0

    async def reissue(self, token_hash: str, auth_version: int) -> None:
        """Keep the token that changed the password valid at the new authVersion."""
        await self._tokens.set_auth_version(token_hash, auth_version)

    async def purge_expired(self) -> int:
        return await self._tokens.remove_expired(int(utcnow().timestamp()))
