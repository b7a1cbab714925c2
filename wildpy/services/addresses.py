"""Addresses: a user's addresses, forwarded addresses, domain aliases, resolution and listing.

An address document has `user` when it belongs to a user; a forwarded address has none and carries
`targets`. The unique key is `addrview` (addressing.address_view). Resolution goes exact key,
then the domain alias target, then wildcards, each wildcard step in one `$in` query.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from wildpy import errors
from wildpy.addressing import (
    ParsedAddress,
    best_candidate,
    forward_target,
    lookup_view,
    normalize_domain,
    parse_address,
    resolution_candidates,
)
from wildpy.clock import utcnow
from wildpy.fields import decode_metadata, encode_metadata, normalize_tags
from wildpy.storage.accounts import Addresses, AddressRegister, Users
from wildpy.storage.database import AlreadyExists, Document, is_id, new_id
from wildpy.storage.pagination import Page, PageRequest

from .domainaliases import DomainAliasService
from .listing import listing_filter

DEFAULT_FORWARDS = 2000


def _name(document: Mapping[str, Any]) -> str | bool:
    return document.get("name") or False


def _with_meta(
    row: dict[str, Any], document: Mapping[str, Any], meta: bool, internal: bool
) -> dict[str, Any]:
    if meta:
        row["metaData"] = decode_metadata(document.get("metaData"))
    if internal:
        row["internalData"] = decode_metadata(document.get("internalData"))
    return row


class AddressService:
    def __init__(
        self,
        addresses: Addresses,
        aliases: DomainAliasService,
        users: Users,
        register: AddressRegister,
    ) -> None:
        self._addresses = addresses
        self._aliases = aliases
        self._users = users
        self._register = register

    # ------------------------------------------------------------------------------ documents

    @staticmethod
    def _document(parsed: ParsedAddress, **fields: Any) -> Document:
        domain = parsed.domain
        document: Document = {
            "_id": new_id(),
            "address": parsed.address,
            "addrview": parsed.addrview,
            "domain": domain,
            "created": utcnow(),
            "tags": [],
            "tagsview": [],
        }
        document.update({key: value for key, value in fields.items() if value is not None})
        return document

    async def _insert(self, document: Document) -> None:
        try:
            await self._addresses.insert(document)
        except AlreadyExists:
            raise errors.AddressExistsError(details={"address": document["address"]}) from None

    async def _user(self, user_id: str) -> Document:
        user = await self._users.get(user_id, {"address": 1})
        if user is None:
            raise errors.UserNotFound()
        return user

    @staticmethod
    def _tag_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        if fields.get("tags") is not None:
            result["tags"], result["tagsview"] = normalize_tags(fields["tags"])
        for key in ("metaData", "internalData"):
            if fields.get(key) is not None:
                result[key] = encode_metadata(fields[key], key)
        return result

    # ------------------------------------------------------------------------------ user addresses

    async def insert_main_address(self, user_id: str, address: str, *, tags: list[str]) -> None:
        """The address given when the user is created."""
        parsed = parse_address(address)
        tags_, tagsview = normalize_tags(tags)
        await self._insert(self._document(parsed, user=user_id, tags=tags_, tagsview=tagsview))

    async def owner_of(self, address: str) -> str | None:
        """The user owning `address` (through domain aliases, not wildcards), if any."""
        try:
            found = await self._resolve_document(address, allow_wildcard=False)
        except errors.InputValidationError:
            return None
        if found is None or "user" not in found:
            return None
        return str(found["user"])

    async def create_user_address(self, user_id: str, fields: Mapping[str, Any]) -> str:
        user = await self._user(user_id)
        parsed = parse_address(fields["address"], allow_wildcard=bool(fields.get("allowWildcard")))
        main = bool(fields.get("main"))
        if main and parsed.is_wildcard:
            raise errors.InputValidationError(
                "Main address can not contain *",
                details={"address": "Main address can not contain *"},
            )
        document = self._document(
            parsed, user=user_id, name=fields.get("name") or "", **self._tag_fields(fields)
        )
        await self._insert(document)
        if (main or not user.get("address")) and not parsed.is_wildcard:
            await self._users.update_one({"_id": user_id}, {"$set": {"address": parsed.address}})
        return str(document["_id"])

    def _user_address_view(
        self, document: Document, main_address: str, meta: bool, internal: bool
    ) -> dict[str, Any]:
        row = {
            "id": document["_id"],
            "name": _name(document),
            "address": document["address"],
            "main": document["address"] == main_address,
            "tags": document.get("tags", []),
            "created": document["created"],
        }
        return _with_meta(row, document, meta, internal)

    async def list_user_addresses(
        self, user_id: str, *, meta: bool = False, internal: bool = False
    ) -> list[dict[str, Any]]:
        user = await self._user(user_id)
        rows = await self._addresses.find({"user": user_id}, sort=[("addrview", 1)], limit=5000)
        return [self._user_address_view(r, user.get("address", ""), meta, internal) for r in rows]

    async def _find_user_address(self, user_id: str, ident: str) -> Document:
        if is_id(ident):
            query: Document = {"_id": ident.lower(), "user": user_id}
        else:
            try:
                query = {"addrview": parse_address(ident, allow_wildcard=True).addrview}
            except errors.InputValidationError:
                raise errors.AddressNotFound() from None
            query["user"] = user_id
        document = await self._addresses.find_one(query)
        if document is None:
            raise errors.AddressNotFound()
        return document

    async def get_user_address(
        self, user_id: str, ident: str, *, meta: bool = True, internal: bool = False
    ) -> dict[str, Any]:
        user = await self._user(user_id)
        document = await self._find_user_address(user_id, ident)
        return self._user_address_view(document, user.get("address", ""), meta, internal)

    async def update_user_address(
        self, user_id: str, ident: str, fields: Mapping[str, Any]
    ) -> None:
        user = await self._user(user_id)
        try:
            document = await self._find_user_address(user_id, ident)
        except errors.AddressNotFound:
            raise errors.AddressNotFound("Invalid or unknown email address identifier") from None
        is_main = document["address"] == user.get("address")
        if fields.get("main") is False:
            raise errors.InputValidationError(
                "Cannot unset main status", details={"main": "Cannot unset main status"}
            )
        changes: Document = {}
        if fields.get("name") is not None:
            changes["name"] = fields["name"]
        changes.update(self._tag_fields(fields))
        new_address: ParsedAddress | None = None
        if fields.get("address"):
            new_address = parse_address(fields["address"], allow_wildcard=True)
            if new_address.address == document["address"]:
                # the current address given back (a client echoing the record) is no rename
                new_address = None
            elif new_address.is_wildcard or "*" in document["address"]:
                raise errors.ChangeNotAllowed()
        if new_address is not None:
            changes.update(
                address=new_address.address,
                addrview=new_address.addrview,
                domain=new_address.domain,
            )
        becomes_main = bool(fields.get("main")) and not is_main
        if becomes_main and "*" in document["address"]:
            raise errors.WildcardNotPermitted()
        if changes:
            try:
                await self._addresses.update_one({"_id": document["_id"]}, {"$set": changes})
            except AlreadyExists:
                raise errors.AddressExistsError("Address already exists") from None
        if becomes_main or (is_main and new_address is not None):
            main = new_address.address if new_address else document["address"]
            await self._users.update_one({"_id": user_id}, {"$set": {"address": main}})

    async def delete_user_address(self, user_id: str, ident: str) -> None:
        user = await self._user(user_id)
        document = await self._find_user_address(user_id, ident)
        if document["address"] == user.get("address"):
            raise errors.NotPermitted("Can not delete main address")
        await self._addresses.delete_one({"_id": document["_id"]})

    async def remove_all_of_user(self, user_id: str) -> list[Document]:
        """Delete a user's addresses, returning them so a restore can put them back."""
        rows = await self._addresses.find({"user": user_id}, limit=5000)
        await self._addresses.delete_many({"user": user_id})
        return rows

    async def restore_addresses(self, user_id: str, rows: list[Document]) -> list[str]:
        """Put a restored user's addresses back, except those taken in the meantime."""
        recovered = []
        for row in rows:
            try:
                await self._addresses.insert(dict(row, user=user_id))
            except AlreadyExists:
                continue
            recovered.append(str(row["address"]))
        return recovered

    # ------------------------------------------------------------------------------ forwarded

    def _targets(self, values: list[str], own_view: str) -> list[Document]:
        targets = []
        for value in values:
            target = forward_target(value)
            if target.type == "mail" and lookup_view(target.value) == own_view:
                message = f'Can not forward to self "{value}"'
                raise errors.InputValidationError(message, details={"targets": message})
            targets.append({"id": new_id(), "type": target.type, "value": target.value})
        return targets

    @staticmethod
    def _autoreply(given: Mapping[str, Any] | None, current: Mapping[str, Any]) -> Document:
        """`given` merged over `current` key by key; a given autoreply is on unless it says not."""
        merged = dict(current)
        if given is not None:
            for key, value in given.items():
                if isinstance(value, datetime):
                    # stored in UTC: an offset given by the client must not shift the answer
                    value = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
                if value is not None:
                    merged[key] = value
            merged.setdefault("status", True)
        return merged or {"status": False}

    async def create_forwarded(self, fields: Mapping[str, Any]) -> str:
        parsed = parse_address(fields["address"], allow_wildcard=bool(fields.get("allowWildcard")))
        document = self._document(
            parsed,
            name=fields.get("name") or "",
            targets=self._targets(list(fields.get("targets") or []), parsed.addrview),
            forwards=int(fields.get("forwards") or 0),
            autoreply=self._autoreply(fields.get("autoreply"), {}),
            forwardedDisabled=False,
            **self._tag_fields(fields),
        )
        await self._insert(document)
        return str(document["_id"])

    async def _forwarded(self, address_id: str) -> Document:
        document = await self._addresses.get(address_id)
        if document is None or "user" in document:
            raise errors.AddressNotFound()
        return document

    def _forwarded_view(self, document: Document, meta: bool, internal: bool) -> dict[str, Any]:
        row = {
            "id": document["_id"],
            "name": _name(document),
            "address": document["address"],
            "targets": [target["value"] for target in document.get("targets", [])],
            "limits": {
                "forwards": {
                    "allowed": document.get("forwards") or DEFAULT_FORWARDS,
                    "used": 0,
                    "ttl": False,
                }
            },
            "autoreply": document.get("autoreply", {"status": False}),
            "tags": document.get("tags", []),
            "forwardedDisabled": bool(document.get("forwardedDisabled")),
            "created": document["created"],
        }
        return _with_meta(row, document, meta, internal)

    async def get_forwarded(self, address_id: str) -> dict[str, Any]:
        return self._forwarded_view(await self._forwarded(address_id), True, True)

    async def update_forwarded(self, address_id: str, fields: Mapping[str, Any]) -> None:
        document = await self._forwarded(address_id)
        changes: Document = self._tag_fields(fields)
        view = document["addrview"]
        parsed: ParsedAddress | None = None
        if fields.get("address"):
            parsed = parse_address(fields["address"], allow_wildcard=True)
            if parsed.address == document["address"]:
                parsed = None  # the current address given back is no rename
            elif parsed.is_wildcard or "*" in document["address"]:
                # as for user addresses: a wildcard is never renamed, nor made by renaming
                raise errors.ChangeNotAllowed()
        if parsed is not None:
            changes.update(address=parsed.address, addrview=parsed.addrview, domain=parsed.domain)
            view = parsed.addrview
        if fields.get("name") is not None:
            changes["name"] = fields["name"]
        if fields.get("targets") is not None:
            changes["targets"] = self._targets(list(fields["targets"]), view)
        elif parsed is not None:
            # renamed onto one of its own targets: that would forward to itself
            self._targets([target["value"] for target in document.get("targets", [])], view)
        if fields.get("forwards") is not None:
            changes["forwards"] = int(fields["forwards"])
        if fields.get("forwardedDisabled") is not None:
            changes["forwardedDisabled"] = bool(fields["forwardedDisabled"])
        if fields.get("autoreply") is not None:
            changes["autoreply"] = self._autoreply(
                fields["autoreply"], document.get("autoreply", {})
            )
        if not changes:
            raise errors.NoUpdates()
        try:
            await self._addresses.update_one({"_id": address_id}, {"$set": changes})
        except AlreadyExists:
            raise errors.AddressExistsError("Address already exists") from None

    async def delete_forwarded(self, address_id: str) -> None:
        document = await self._forwarded(address_id)
        await self._addresses.delete_one({"_id": document["_id"]})

    # ------------------------------------------------------------------------------ resolving

    async def _resolve_document(self, address: str, *, allow_wildcard: bool) -> Document | None:
        view = lookup_view(address)
        # what is not an address ("a b@d") resolves to nothing, not to the domain's catch-all.
        # Syntax only: "+" and "*" are atext, legal in a recipient's local part (and "*" names
        # a wildcard looked up by its own form); the rules for storing them do not apply here.
        parse_address(view.replace("+", "x").replace("*", "x"))
        local, _, domain = view.rpartition("@")
        found = await self._addresses.find_one({"addrview": view})
        if found is not None:
            return found
        alias_domain = await self._aliases.target_of(domain)
        if alias_domain:
            found = await self._addresses.find_one({"addrview": f"{local}@{alias_domain}"})
            if found is not None:
                return found
        if not allow_wildcard:
            return None
        candidates = resolution_candidates(address, alias_domain)
        rows = await self._addresses.find({"addrview": {"$in": candidates}}, limit=len(candidates))
        best = best_candidate(candidates, (row["addrview"] for row in rows))
        return next((row for row in rows if row["addrview"] == best), None)

    async def resolve(self, ident: str, *, allow_wildcard: bool) -> dict[str, Any]:
        """GET /addresses/resolve/:address: by id, or by address through aliases and wildcards."""
        if is_id(ident):
            document = await self._addresses.get(ident.lower())
        else:
            try:
                document = await self._resolve_document(ident, allow_wildcard=allow_wildcard)
            except errors.InputValidationError:
                document = None
        if document is None:
            raise errors.AddressNotFound()
        if "user" not in document:
            return self._forwarded_view(document, True, True)
        row = {
            "id": document["_id"],
            "address": document["address"],
            "user": document["user"],
            "tags": document.get("tags", []),
            "created": document["created"],
        }
        return _with_meta(row, document, True, True)

    # ------------------------------------------------------------------------------ listing

    async def list_all(
        self,
        paging: PageRequest,
        *,
        query: str | None = None,
        forward: str | None = None,
        tags: str | None = None,
        required_tags: str | None = None,
        only_user: str | None = None,
        meta: bool = False,
        internal: bool = False,
    ) -> tuple[Page, list[dict[str, Any]]]:
        filters = listing_filter(
            text_fields=("address",),
            query=query,
            forward=forward,
            tags=tags,
            required_tags=required_tags,
            owner={"user": only_user} if only_user is not None else None,
        )
        result = await self._addresses.page(filters, paging, field="addrview")
        rows = []
        for document in result.results:
            forwarded = "user" not in document
            row: dict[str, Any] = {
                "id": document["_id"],
                "name": _name(document),
                "address": document["address"],
                "user": document.get("user", False),
                "forwarded": forwarded,
                "forwardedDisabled": bool(document.get("forwardedDisabled")),
                "tags": document.get("tags", []),
            }
            if forwarded:
                row["targets"] = [target["value"] for target in document.get("targets", [])]
            rows.append(_with_meta(row, document, meta, internal))
        return result, rows

    async def rename_domain(self, old_domain: str, new_domain: str) -> dict[str, int]:
        old, new = normalize_domain(old_domain), normalize_domain(new_domain)
        rows = await self._addresses.find({"domain": old}, limit=100_000)
        modified_addresses = modified_users = 0
        for row in rows:
            local = row["address"].rpartition("@")[0]
            view_local = row["addrview"].rpartition("@")[0]
            try:
                changed = await self._addresses.update_one(
                    {"_id": row["_id"]},
                    {
                        "$set": {
                            "address": f"{local}@{new}",
                            "addrview": f"{view_local}@{new}",
                            "domain": new,
                        }
                    },
                )
            except AlreadyExists:
                continue  # the new domain already has this address: leave the old one alone
            modified_addresses += changed
            if "user" in row:
                modified_users += await self._users.update_one(
                    {"_id": row["user"], "address": row["address"]},
                    {"$set": {"address": f"{local}@{new}"}},
                )
        modified_aliases = await self._aliases.retarget(old, new)
        return {
            "modifiedAddresses": modified_addresses,
            "modifiedUsers": modified_users,
            "modifiedDkim": 0,
            "modifiedAliases": modified_aliases,
        }

    async def register(self, user_id: str, query: str, limit: int) -> list[dict[str, Any]]:
        await self._user(user_id)
        # the address itself, not addrview: a query such as "john.d" must find john.doe@...
        pattern = {"$regex": "^" + re.escape(query.lower()), "$options": "i"}
        name_pattern = {"$regex": re.escape(query), "$options": "i"}
        rows = await self._register.find(
            {"user": user_id, "$or": [{"address": pattern}, {"name": name_pattern}]},
            sort=[("updated", -1)],
            limit=limit,
        )
        return [{"id": r["_id"], "name": _name(r), "address": r["address"]} for r in rows]
