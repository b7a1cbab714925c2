"""Repositories of the users database: users, deleted users, addresses, aliases, tokens."""

from __future__ import annotations

from .collection import Collection, Index


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


class DeletedUsers(Collection):
    """Users waiting for deferred deletion; restorable until `deleteInfo.deleteAfter`."""

    database = "users"
    name = "deletedusers"
    indexes = [Index([("deleteAfter", 1)])]


class Addresses(Collection):
    database = "users"
    name = "addresses"
    indexes = [
        Index([("addrview", 1)], unique=True),
        Index([("user", 1)]),
        Index([("tagsview", 1)], sparse=True),
        Index([("domain", 1)]),
    ]


class DomainAliases(Collection):
    database = "users"
    name = "domainaliases"
    indexes = [Index([("alias", 1)], unique=True), Index([("domain", 1)])]


class AccessTokens(Collection):
    """Access tokens, keyed by the SHA-256 of the token: the token itself is never stored."""

    database = "users"
    name = "accesstokens"
    indexes = [Index([("user", 1)]), Index([("expires", 1)], sparse=True)]


class AddressRegister(Collection):
    """Recent correspondents of each user, for autocomplete."""

    database = "mail"
    name = "addressregister"
    indexes = [
        Index([("user", 1), ("addrview", 1)], unique=True),
        Index([("user", 1), ("updated", -1)]),
    ]


class AuthLog(Collection):
    database = "users"
    name = "authlog"
    # no ("_id", ...) in compound indexes: nx-27017 then refuses every insert
    indexes = [Index([("user", 1)]), Index([("expires", 1)])]
