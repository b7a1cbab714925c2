"""Repositories of the users database: users, deleted users, addresses, aliases, tokens.

Each method says what it does for the account services; the MongoDB queries live here and only
here, and every public coroutine goes through the driver-error translation (`Repository`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime

from pymongo import ReturnDocument

from .collection import Collection, Index
from .database import Document
from .listing import ListingCriteria, contains, listing_filter
from .pagination import Page, PageRequest

#: the most addresses one user or one domain is read with (a bound on a runaway account)
MAX_ADDRESSES_OF_USER = 5000
MAX_ADDRESSES_OF_DOMAIN = 100_000


class Users(Collection):
    database = "users"
    name = "users"
    indexes = [
        Index([("unameview", 1)], unique=True),
        Index([("username", 1)]),
        Index([("created", -1)]),
        Index([("tagsview", 1)], sparse=True),
        Index([("address", 1)]),
    ]

    async def by_id(self, user_id: str) -> Document | None:
        return await self.collection.find_one({"_id": user_id})

    async def exists(self, user_id: str) -> bool:
        return await self.collection.find_one({"_id": user_id}, {"_id": 1}) is not None

    async def id_by_username(self, unameview: str) -> str | None:
        """The id of the user whose normalised username (`addressing.username_view`) this is."""
        found = await self.collection.find_one({"unameview": unameview}, {"_id": 1})
        return str(found["_id"]) if found is not None else None

    async def main_address_of(self, user_id: str) -> str | None:
        """The user's main address ('' when it has none), None when there is no such user."""
        found = await self.collection.find_one({"_id": user_id}, {"address": 1})
        return str(found.get("address") or "") if found is not None else None

    async def storage_used_of(self, user_id: str) -> int | None:
        found = await self.collection.find_one({"_id": user_id}, {"storageUsed": 1})
        return int(found.get("storageUsed", 0)) if found is not None else None

    async def set_main_address(self, user_id: str, address: str) -> int:
        result = await self.collection.update_one({"_id": user_id}, {"$set": {"address": address}})
        return result.matched_count

    async def move_main_address(self, user_id: str, old: str, new: str) -> int:
        """Change the user's main address from `old` to `new`, only if it still is `old`."""
        result = await self.collection.update_one(
            {"_id": user_id, "address": old}, {"$set": {"address": new}}
        )
        return result.matched_count

    async def apply_changes(
        self, user_id: str, *, values: Document, increments: Document, removals: Sequence[str]
    ) -> int | None:
        """Set `values`, add `increments`, remove the fields `removals`; the user's authVersion
        afterwards, None when there is no such user."""
        update: Document = {"$set": values}
        if increments:
            update["$inc"] = increments
        if removals:
            update["$unset"] = dict.fromkeys(removals, "")
        found = await self.collection.find_one_and_update(
            {"_id": user_id},
            update,
            projection={"authVersion": 1},
            return_document=ReturnDocument.AFTER,
        )
        return int(found.get("authVersion", 1)) if found is not None else None

    async def set_temp_password(self, user_id: str, temp_password: Document) -> bool:
        result = await self.collection.update_one(
            {"_id": user_id}, {"$set": {"tempPassword": temp_password}}
        )
        return result.matched_count > 0

    async def set_storage_used(self, user_id: str, total: int) -> bool:
        """Store `total` as the user's `storageUsed` (a recount); False when there is no user."""
        result = await self.collection.update_one(
            {"_id": user_id}, {"$set": {"storageUsed": total}}
        )
        return result.matched_count > 0

    async def add_storage_used(self, user_id: str, delta: int) -> bool:
        """Add `delta` bytes (negative: release) to the user's `storageUsed` atomically."""
        result = await self.collection.update_one(
            {"_id": user_id}, {"$inc": {"storageUsed": delta}}
        )
        return result.matched_count > 0

    async def reserve_storage(self, user_id: str, size: int) -> Document | None:
        """Add `size` bytes to `storageUsed` and return the user's `storageUsed` (including
        them) and `quota` as they are after that, in one round trip; None when there is no user.
        """
        return await self.find_one_and_update(
            {"_id": user_id},
            {"$inc": {"storageUsed": size}},
            projection={"storageUsed": 1, "quota": 1},
        )

    async def record_login(self, user_id: str, when: datetime, protocol: str) -> None:
        """Remember the user's last successful login (`lastLogin`)."""
        await self.collection.update_one(
            {"_id": user_id}, {"$set": {"lastLogin": {"time": when, "protocol": protocol}}}
        )

    async def replace_password_hash(self, user_id: str, old_hash: str, new_hash: str) -> bool:
        """Store `new_hash` only if the password hash still is `old_hash` (nobody changed the
        password meanwhile); whether it was replaced."""
        result = await self.collection.update_one(
            {"_id": user_id, "password": old_hash}, {"$set": {"password": new_hash}}
        )
        return result.matched_count > 0

    async def ids_after(self, last_id: str, limit: int) -> list[str]:
        """Up to `limit` user ids after `last_id` in id order ('' from the start): a bounded walk
        over every user."""
        rows = await self.find({"_id": {"$gt": last_id}}, {"_id": 1}, limit=limit)
        return [str(row["_id"]) for row in rows]

    async def remove(self, user_id: str) -> int:
        return (await self.collection.delete_one({"_id": user_id})).deleted_count

    async def page_matching(
        self, criteria: ListingCriteria, paging: PageRequest, *, only_user: str | None = None
    ) -> Page:
        """One page of the users matching `criteria` (text: address or username), by id."""
        owner = {"_id": only_user} if only_user is not None else None
        query = listing_filter(criteria, text_fields=("address", "unameview"), owner=owner)
        return await self.page(query, paging)


class DeletedUsers(Collection):
    """Users waiting for deferred deletion; restorable until `deleteInfo.deleteAfter`."""

    database = "users"
    name = "deletedusers"
    indexes = [Index([("deleteAfter", 1)])]

    async def by_id(self, user_id: str) -> Document | None:
        return await self.collection.find_one({"_id": user_id})

    async def ids_due(self, now: datetime, limit: int) -> list[str]:
        """Up to `limit` ids of the deleted users whose restore window ended by `now`."""
        rows = await self.find({"deleteAfter": {"$lte": now}}, {"_id": 1}, limit=limit)
        return [str(row["_id"]) for row in rows]

    async def park(self, user_id: str, record: Document) -> None:
        """Keep `record` (the user without its `_id`) as the deleted user `user_id`."""
        await self.collection.update_one({"_id": user_id}, {"$set": record}, upsert=True)

    async def remove(self, user_id: str) -> int:
        return (await self.collection.delete_one({"_id": user_id})).deleted_count


class Addresses(Collection):
    database = "users"
    name = "addresses"
    indexes = [
        Index([("addrview", 1)], unique=True),
        Index([("user", 1)]),
        Index([("tagsview", 1)], sparse=True),
        Index([("domain", 1)]),
    ]

    async def by_id(self, address_id: str) -> Document | None:
        return await self.collection.find_one({"_id": address_id})

    async def by_addrview(self, addrview: str) -> Document | None:
        return await self.collection.find_one({"addrview": addrview})

    async def with_addrviews(self, addrviews: Sequence[str]) -> list[Document]:
        """The addresses whose `addrview` is one of `addrviews` (one `$in` query)."""
        if not addrviews:
            return []
        return await self.find({"addrview": {"$in": list(addrviews)}}, limit=len(addrviews))

    async def user_address_by_id(self, user_id: str, address_id: str) -> Document | None:
        return await self.collection.find_one({"_id": address_id, "user": user_id})

    async def user_address_by_addrview(self, user_id: str, addrview: str) -> Document | None:
        return await self.collection.find_one({"addrview": addrview, "user": user_id})

    async def of_user(self, user_id: str, *, by_address: bool = False) -> list[Document]:
        """The user's addresses, by `addrview` or else in creation (id) order."""
        sort = [("addrview", 1)] if by_address else None
        return await self.find({"user": user_id}, sort=sort, limit=MAX_ADDRESSES_OF_USER)

    async def in_domain(self, domain: str) -> list[Document]:
        return await self.find({"domain": domain}, limit=MAX_ADDRESSES_OF_DOMAIN)

    async def change(self, address_id: str, values: Document) -> int:
        """Set `values` on the address; the number matched (0 or 1). A taken `addrview` raises
        AlreadyExists."""
        result = await self.collection.update_one({"_id": address_id}, {"$set": values})
        return result.matched_count

    async def remove(self, address_id: str) -> int:
        return (await self.collection.delete_one({"_id": address_id})).deleted_count

    async def remove_of_user(self, user_id: str) -> int:
        return (await self.collection.delete_many({"user": user_id})).deleted_count

    async def page_matching(
        self, criteria: ListingCriteria, paging: PageRequest, *, only_user: str | None = None
    ) -> Page:
        """One page of the addresses matching `criteria` (text: the address), by `addrview`."""
        owner = {"user": only_user} if only_user is not None else None
        query = listing_filter(criteria, text_fields=("address",), owner=owner)
        return await self.page(query, paging, field="addrview")


class DomainAliases(Collection):
    database = "users"
    name = "domainaliases"
    indexes = [Index([("alias", 1)], unique=True), Index([("domain", 1)])]

    async def by_id(self, alias_id: str) -> Document | None:
        return await self.collection.find_one({"_id": alias_id})

    async def target_of(self, alias: str) -> str | None:
        """The domain `alias` is an alias of, if it is one."""
        found = await self.collection.find_one({"alias": alias}, {"domain": 1})
        return str(found["domain"]) if found is not None else None

    async def id_of(self, alias: str) -> str | None:
        found = await self.collection.find_one({"alias": alias}, {"_id": 1})
        return str(found["_id"]) if found is not None else None

    async def retarget(self, old_domain: str, new_domain: str) -> int:
        """Point the aliases of `old_domain` at `new_domain`; how many changed."""
        result = await self.collection.update_many(
            {"domain": old_domain}, {"$set": {"domain": new_domain}}
        )
        return result.modified_count

    async def remove(self, alias_id: str) -> int:
        return (await self.collection.delete_one({"_id": alias_id})).deleted_count

    async def page_matching(self, query: str | None, paging: PageRequest) -> Page:
        """One page of the aliases whose alias or domain contains `query`, by alias."""
        return await self.page(contains(("alias", "domain"), query) or {}, paging, field="alias")


class AccessTokens(Collection):
    """Access tokens, keyed by the SHA-256 of the token: the token itself is never stored."""

    database = "users"
    name = "accesstokens"
    indexes = [Index([("user", 1)]), Index([("expires", 1)], sparse=True)]

    async def by_hash(self, token_hash: str) -> Document | None:
        return await self.collection.find_one({"_id": token_hash})

    async def slide(self, token_hash: str, expires: int) -> None:
        await self.collection.update_one({"_id": token_hash}, {"$set": {"expires": expires}})

    async def set_auth_version(
        self, token_hash: str, auth_version: int, *, user: str | None = None
    ) -> None:
        """Keep the token valid at `auth_version` (only if it is `user`'s, when given)."""
        query: Document = {"_id": token_hash}
        if user is not None:
            query["user"] = user
        await self.collection.update_one(query, {"$set": {"authVersion": auth_version}})

    async def remove(self, token_hash: str) -> int:
        return (await self.collection.delete_one({"_id": token_hash})).deleted_count

    async def remove_of_user(self, user_id: str) -> int:
        return (await self.collection.delete_many({"user": user_id})).deleted_count

    async def remove_expired(self, now: int) -> int:
        """Delete the tokens that expired before `now` (Unix seconds)."""
        return (await self.collection.delete_many({"expires": {"$lt": now}})).deleted_count


class AddressRegister(Collection):
    """Recent correspondents of each user, for autocomplete."""

    database = "mail"
    name = "addressregister"
    indexes = [
        Index([("user", 1), ("addrview", 1)], unique=True),
        Index([("user", 1), ("updated", -1)]),
    ]

    async def drop_of_user(self, user_id: str) -> int:
        return await self.delete_many({"user": user_id})

    async def search(self, user_id: str, text: str, limit: int) -> list[Document]:
        """The user's correspondents whose address starts with `text` or whose name contains
        it (both case-insensitively), most recent first."""
        # the address itself, not addrview: a query such as "john.d" must find john.doe@...
        pattern = {"$regex": "^" + re.escape(text.lower()), "$options": "i"}
        name_pattern = {"$regex": re.escape(text), "$options": "i"}
        return await self.find(
            {"user": user_id, "$or": [{"address": pattern}, {"name": name_pattern}]},
            sort=[("updated", -1)],
            limit=limit,
        )


class AuthLog(Collection):
    database = "users"
    name = "authlog"
    # no ("_id", ...) in compound indexes: nx-27017 then refuses every insert
    indexes = [Index([("user", 1)]), Index([("expires", 1)])]
