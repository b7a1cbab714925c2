"""Addresses: a user's addresses, forwarded addresses, domain aliases, resolution and listing.

An address document has `user` when it belongs to a user; a forwarded address has none and carries
`targets`. The unique key is `addrview` (addressing.address_view). Resolution goes exact key,
then the domain alias target, then wildcards, each wildcard step in one `$in` query; it answers
a `Resolution` (the owner or the forward targets, and why) that SMTP and REST both use.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, cast

from wildpy import errors
from wildpy.addressing import (
    ForwardTarget,
    ParsedAddress,
    TargetType,
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
from wildpy.storage.listing import ListingCriteria
from wildpy.storage.pagination import Page, PageRequest

from .account_inputs import (
    AddressSettings,
    Autoreply,
    ForwardedChanges,
    NewForwarded,
    NewUserAddress,
    UserAddressChanges,
)
from .account_records import (
    AddressSummary,
    DomainRename,
    ForwardedAddress,
    MatchReason,
    RegisteredAddress,
    Resolution,
    StoredAddress,
    UserAddress,
)
from .domainaliases import DomainAliasService

DEFAULT_FORWARDS = 2000


def _taken(address: str) -> errors.AddressExistsError:
    """What creating an address that is already stored answers."""
    return errors.AddressExistsError(details={"address": address})


def _stored_address(document: Document) -> StoredAddress:
    return {
        "id": document["_id"],
        "name": document.get("name") or "",
        "address": document["address"],
        "user": document["user"],
        "tags": document.get("tags", []),
        "created": document["created"],
        "metadata": decode_metadata(document.get("metaData")),
        "internal_data": decode_metadata(document.get("internalData")),
    }


def _user_address(document: Document, main_address: str) -> UserAddress:
    return {**_stored_address(document), "main": document["address"] == main_address}


def _stored_targets(document: Document) -> list[ForwardTarget]:
    return [
        ForwardTarget(cast(TargetType, target.get("type", "mail")), target["value"])
        for target in document.get("targets", [])
    ]


def _forwarded_address(document: Document) -> ForwardedAddress:
    return {
        "id": document["_id"],
        "name": document.get("name") or "",
        "address": document["address"],
        "targets": _stored_targets(document),
        "forwards": document.get("forwards") or DEFAULT_FORWARDS,
        "autoreply": document.get("autoreply", {"status": False}),
        "tags": document.get("tags", []),
        "forwarded_disabled": bool(document.get("forwardedDisabled")),
        "created": document["created"],
        "metadata": decode_metadata(document.get("metaData")),
        "internal_data": decode_metadata(document.get("internalData")),
    }


def _summary(document: Document) -> AddressSummary:
    return {
        "id": document["_id"],
        "name": document.get("name") or "",
        "address": document["address"],
        "user": document.get("user"),
        "forwarded_disabled": bool(document.get("forwardedDisabled")),
        "tags": document.get("tags", []),
        "targets": [target["value"] for target in document.get("targets", [])],
        "metadata": decode_metadata(document.get("metaData")),
        "internal_data": decode_metadata(document.get("internalData")),
    }


def _resolution(document: Document, reason: MatchReason) -> Resolution:
    if "user" in document:
        return Resolution(reason, document["address"], address=_stored_address(document))
    return Resolution(reason, document["address"], forwarded=_forwarded_address(document))


def _wildcard_reason(addrview: str, domain: str) -> MatchReason:
    """Which kind of wildcard `addrview` (a match of `resolution_candidates`) is."""
    matched_domain = addrview.rpartition("@")[2]
    if matched_domain == "*":
        return "any_domain"
    return "wildcard" if matched_domain == domain else "alias_wildcard"


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
            raise _taken(document["address"]) from None

    @staticmethod
    def _new_address(address: str, *, allow_wildcard: bool, main: bool = False) -> ParsedAddress:
        """The checks of a new address's form, the same for creating it and for asking whether
        it could be created (`check_new_address`), so that the two answers can not drift."""
        parsed = parse_address(address, allow_wildcard=allow_wildcard)
        if main and parsed.is_wildcard:
            raise errors.InputValidationError(
                "Main address can not contain *",
                details={"address": "Main address can not contain *"},
            )
        return parsed

    async def check_new_address(self, address: str, *, allow_wildcard: bool) -> ParsedAddress:
        """Whether `address` could be created now, as a user's or a forwarded address: its
        stored form, or the error creating it would raise (its form; AddressExistsError when an
        address or a forwarded address holds it). Nothing is written."""
        parsed = self._new_address(address, allow_wildcard=allow_wildcard)
        if await self._addresses.by_addrview(parsed.addrview) is not None:
            raise _taken(parsed.address)
        return parsed

    async def _main_address(self, user_id: str) -> str:
        """The user's main address ('' for none); 404 UserNotFound."""
        main_address = await self._users.main_address_of(user_id)
        if main_address is None:
            raise errors.UserNotFound()
        return main_address

    @staticmethod
    def _tag_fields(settings: AddressSettings) -> dict[str, Any]:
        """The stored tags and metadata of what `settings` gives."""
        result: dict[str, Any] = {}
        if settings.tags is not None:
            result["tags"], result["tagsview"] = normalize_tags(settings.tags)
        for key, given in (
            ("metaData", settings.metadata),
            ("internalData", settings.internal_data),
        ):
            if given is not None:
                result[key] = encode_metadata(given, key)
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
            resolution = await self.resolve_recipient(address, allow_wildcard=False)
        except (errors.InputValidationError, errors.AddressNotFound):
            return None
        return resolution.user

    async def create_user_address(self, user_id: str, new: NewUserAddress) -> str:
        main_address = await self._main_address(user_id)
        main = new.main
        parsed = self._new_address(new.address, allow_wildcard=new.allow_wildcard, main=main)
        document = self._document(
            parsed, user=user_id, name=new.name or "", **self._tag_fields(new)
        )
        await self._insert(document)
        if (main or not main_address) and not parsed.is_wildcard:
            await self._users.set_main_address(user_id, parsed.address)
        return str(document["_id"])

    async def list_user_addresses(self, user_id: str) -> list[UserAddress]:
        """The user's addresses, by address."""
        main_address = await self._main_address(user_id)
        rows = await self._addresses.of_user(user_id, by_address=True)
        return [_user_address(row, main_address) for row in rows]

    async def _find_user_address(self, user_id: str, ident: str) -> Document:
        """The user's address with id or address `ident`; 404 AddressNotFound."""
        if is_id(ident):
            document = await self._addresses.user_address_by_id(user_id, ident.lower())
        else:
            try:
                addrview = parse_address(ident, allow_wildcard=True).addrview
            except errors.InputValidationError:
                raise errors.AddressNotFound() from None
            document = await self._addresses.user_address_by_addrview(user_id, addrview)
        if document is None:
            raise errors.AddressNotFound()
        return document

    async def get_user_address(self, user_id: str, ident: str) -> UserAddress:
        main_address = await self._main_address(user_id)
        document = await self._find_user_address(user_id, ident)
        return _user_address(document, main_address)

    async def update_user_address(
        self, user_id: str, ident: str, change: UserAddressChanges
    ) -> None:
        main_address = await self._main_address(user_id)
        try:
            document = await self._find_user_address(user_id, ident)
        except errors.AddressNotFound:
            raise errors.AddressNotFound("Invalid or unknown email address identifier") from None
        is_main = document["address"] == main_address
        if change.main is False:
            raise errors.InputValidationError(
                "Cannot unset main status", details={"main": "Cannot unset main status"}
            )
        changes: Document = {}
        if change.name is not None:
            changes["name"] = change.name
        changes.update(self._tag_fields(change))
        new_address: ParsedAddress | None = None
        if change.address:
            new_address = parse_address(change.address, allow_wildcard=True)
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
        becomes_main = bool(change.main) and not is_main
        if becomes_main and "*" in document["address"]:
            raise errors.WildcardNotPermitted()
        if changes:
            try:
                await self._addresses.change(document["_id"], changes)
            except AlreadyExists:
                raise errors.AddressExistsError("Address already exists") from None
        if becomes_main or (is_main and new_address is not None):
            main = new_address.address if new_address else document["address"]
            await self._users.set_main_address(user_id, main)

    async def delete_user_address(self, user_id: str, ident: str) -> None:
        main_address = await self._main_address(user_id)
        document = await self._find_user_address(user_id, ident)
        if document["address"] == main_address:
            raise errors.NotPermitted("Can not delete main address")
        await self._addresses.remove(document["_id"])

    async def remove_all_of_user(self, user_id: str) -> list[Document]:
        """Delete a user's addresses, returning them so a restore can put them back."""
        rows = await self._addresses.of_user(user_id)
        await self._addresses.remove_of_user(user_id)
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
    def _autoreply(given: Autoreply | None, current: Mapping[str, Any]) -> Document:
        """`given` merged over `current` key by key; a given autoreply is on unless it says not."""
        merged = dict(current)
        if given is not None:
            for key, value in given.given().items():
                if isinstance(value, datetime):
                    # stored in UTC: an offset given by the client must not shift the answer
                    value = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
                if value is not None:
                    merged[key] = value
            merged.setdefault("status", True)
        return merged or {"status": False}

    async def create_forwarded(self, new: NewForwarded) -> str:
        parsed = self._new_address(new.address, allow_wildcard=new.allow_wildcard)
        document = self._document(
            parsed,
            name=new.name or "",
            targets=self._targets(list(new.targets or []), parsed.addrview),
            forwards=int(new.forwards or 0),
            autoreply=self._autoreply(new.autoreply, {}),
            forwardedDisabled=False,
            **self._tag_fields(new),
        )
        await self._insert(document)
        return str(document["_id"])

    async def _forwarded(self, address_id: str) -> Document:
        document = await self._addresses.by_id(address_id)
        if document is None or "user" in document:
            raise errors.AddressNotFound()
        return document

    async def get_forwarded(self, address_id: str) -> ForwardedAddress:
        return _forwarded_address(await self._forwarded(address_id))

    async def update_forwarded(self, address_id: str, change: ForwardedChanges) -> None:
        document = await self._forwarded(address_id)
        changes: Document = self._tag_fields(change)
        view = document["addrview"]
        parsed: ParsedAddress | None = None
        if change.address:
            parsed = parse_address(change.address, allow_wildcard=True)
            if parsed.address == document["address"]:
                parsed = None  # the current address given back is no rename
            elif parsed.is_wildcard or "*" in document["address"]:
                # as for user addresses: a wildcard is never renamed, nor made by renaming
                raise errors.ChangeNotAllowed()
        if parsed is not None:
            changes.update(address=parsed.address, addrview=parsed.addrview, domain=parsed.domain)
            view = parsed.addrview
        if change.name is not None:
            changes["name"] = change.name
        if change.targets is not None:
            changes["targets"] = self._targets(list(change.targets), view)
        elif parsed is not None:
            # renamed onto one of its own targets: that would forward to itself
            self._targets([target["value"] for target in document.get("targets", [])], view)
        if change.forwards is not None:
            changes["forwards"] = int(change.forwards)
        if change.forwarded_disabled is not None:
            changes["forwardedDisabled"] = bool(change.forwarded_disabled)
        if change.autoreply is not None:
            changes["autoreply"] = self._autoreply(change.autoreply, document.get("autoreply", {}))
        if not changes:
            raise errors.NoUpdates()
        try:
            await self._addresses.change(address_id, changes)
        except AlreadyExists:
            raise errors.AddressExistsError("Address already exists") from None

    async def delete_forwarded(self, address_id: str) -> None:
        document = await self._forwarded(address_id)
        await self._addresses.remove(document["_id"])

    # ------------------------------------------------------------------------------ resolving

    async def resolve_recipient(self, address: str, *, allow_wildcard: bool = True) -> Resolution:
        """Where mail to `address` goes, and why: its own address, the same local part at the
        domain its domain is an alias of, then (with `allow_wildcard`) the best wildcard.
        404 AddressNotFound when nothing matches; 400 InputValidationError for what is not an
        address at all."""
        view = lookup_view(address)
        # what is not an address ("a b@d") resolves to nothing, not to the domain's catch-all.
        # Syntax only: "+" and "*" are atext, legal in a recipient's local part (and "*" names
        # a wildcard looked up by its own form); the rules for storing them do not apply here.
        parse_address(view.replace("+", "x").replace("*", "x"))
        local, _, domain = view.rpartition("@")
        found = await self._addresses.by_addrview(view)
        if found is not None:
            return _resolution(found, "exact")
        alias_domain = await self._aliases.target_of(domain)
        if alias_domain:
            found = await self._addresses.by_addrview(f"{local}@{alias_domain}")
            if found is not None:
                return _resolution(found, "domain_alias")
        if allow_wildcard:
            candidates = resolution_candidates(address, alias_domain)
            rows = await self._addresses.with_addrviews(candidates)
            best = best_candidate(candidates, (row["addrview"] for row in rows))
            match = next((row for row in rows if row["addrview"] == best), None)
            if match is not None:
                return _resolution(match, _wildcard_reason(match["addrview"], domain))
        raise errors.AddressNotFound()

    async def resolve(self, ident: str, *, allow_wildcard: bool) -> Resolution:
        """An address by its id, or by address as `resolve_recipient` finds it (REST's
        GET /addresses/resolve/:address); what is not an address is not found."""
        if is_id(ident):
            document = await self._addresses.by_id(ident.lower())
            if document is None:
                raise errors.AddressNotFound()
            return _resolution(document, "id")
        try:
            return await self.resolve_recipient(ident, allow_wildcard=allow_wildcard)
        except errors.InputValidationError:
            raise errors.AddressNotFound() from None

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
    ) -> tuple[Page, list[AddressSummary]]:
        criteria = ListingCriteria(query, forward, tags, required_tags)
        result = await self._addresses.page_matching(criteria, paging, only_user=only_user)
        return result, [_summary(document) for document in result.results]

    async def rename_domain(self, old_domain: str, new_domain: str) -> DomainRename:
        old, new = normalize_domain(old_domain), normalize_domain(new_domain)
        rows = await self._addresses.in_domain(old)
        modified_addresses = modified_users = 0
        for row in rows:
            local = row["address"].rpartition("@")[0]
            view_local = row["addrview"].rpartition("@")[0]
            try:
                changed = await self._addresses.change(
                    row["_id"],
                    {"address": f"{local}@{new}", "addrview": f"{view_local}@{new}", "domain": new},
                )
            except AlreadyExists:
                continue  # the new domain already has this address: leave the old one alone
            modified_addresses += changed
            if "user" in row:
                modified_users += await self._users.move_main_address(
                    row["user"], row["address"], f"{local}@{new}"
                )
        modified_aliases = await self._aliases.retarget(old, new)
        return {
            "addresses": modified_addresses,
            "users": modified_users,
            "aliases": modified_aliases,
        }

    async def register(self, user_id: str, query: str, limit: int) -> list[RegisteredAddress]:
        """The user's recent correspondents whose address starts with, or whose name contains,
        `query`; most recent first."""
        if not await self._users.exists(user_id):
            raise errors.UserNotFound()
        rows = await self._register.search(user_id, query, limit)
        return [
            {"id": r["_id"], "name": r.get("name") or "", "address": r["address"]} for r in rows
        ]
