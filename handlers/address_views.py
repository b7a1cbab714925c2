"""WildDuck's JSON shapes of the address records (reference 5.3): field names, order, defaults."""

from __future__ import annotations

from typing import Any

from wildpy.services.account_records import (
    AddressSummary,
    DomainRename,
    ForwardedAddress,
    RegisteredAddress,
    Resolution,
    StoredAddress,
    UserAddress,
)


def _name(name: str) -> str | bool:
    """WildDuck answers `false` for an address without a display name."""
    return name or False


def _with_meta(
    row: dict[str, Any],
    record: StoredAddress | ForwardedAddress | AddressSummary,
    *,
    meta: bool,
    internal: bool,
) -> dict[str, Any]:
    if meta:
        row["metaData"] = record["metadata"]
    if internal:
        row["internalData"] = record["internal_data"]
    return row


def user_address_body(address: UserAddress, *, meta: bool, internal: bool) -> dict[str, Any]:
    """GET /users/:user/addresses/:address, and a row of GET /users/:user/addresses."""
    row = {
        "id": address["id"],
        "name": _name(address["name"]),
        "address": address["address"],
        "main": address["main"],
        "tags": address["tags"],
        "created": address["created"],
    }
    return _with_meta(row, address, meta=meta, internal=internal)


def forwarded_body(forwarded: ForwardedAddress) -> dict[str, Any]:
    """GET /addresses/forwarded/:address. The forwards counter is not kept (always 0 used)."""
    row = {
        "id": forwarded["id"],
        "name": _name(forwarded["name"]),
        "address": forwarded["address"],
        "targets": [target.value for target in forwarded["targets"]],
        "limits": {"forwards": {"allowed": forwarded["forwards"], "used": 0, "ttl": False}},
        "autoreply": forwarded["autoreply"],
        "tags": forwarded["tags"],
        "forwardedDisabled": forwarded["forwarded_disabled"],
        "created": forwarded["created"],
    }
    return _with_meta(row, forwarded, meta=True, internal=True)


def resolution_body(resolution: Resolution) -> dict[str, Any]:
    """GET /addresses/resolve/:address: the forwarded address, or the user's address."""
    if resolution.forwarded is not None:
        return forwarded_body(resolution.forwarded)
    address = resolution.address
    assert address is not None  # a resolution is one or the other
    row = {
        "id": address["id"],
        "address": address["address"],
        "user": address["user"],
        "tags": address["tags"],
        "created": address["created"],
    }
    return _with_meta(row, address, meta=True, internal=True)


def address_row(address: AddressSummary, *, meta: bool, internal: bool) -> dict[str, Any]:
    """A row of GET /addresses: `user` is false and `targets` given for a forwarded address."""
    forwarded = address["user"] is None
    row: dict[str, Any] = {
        "id": address["id"],
        "name": _name(address["name"]),
        "address": address["address"],
        "user": address["user"] if address["user"] is not None else False,
        "forwarded": forwarded,
        "forwardedDisabled": address["forwarded_disabled"],
        "tags": address["tags"],
    }
    if forwarded:
        row["targets"] = address["targets"]
    return _with_meta(row, address, meta=meta, internal=internal)


def rename_body(rename: DomainRename) -> dict[str, Any]:
    """PUT /addresses/renameDomain (no DKIM keys are kept, so none is ever modified)."""
    return {
        "modifiedAddresses": rename["addresses"],
        "modifiedUsers": rename["users"],
        "modifiedDkim": 0,
        "modifiedAliases": rename["aliases"],
    }


def register_row(entry: RegisteredAddress) -> dict[str, Any]:
    return {"id": entry["id"], "name": _name(entry["name"]), "address": entry["address"]}
