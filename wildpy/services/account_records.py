"""Typed records of the account services: users, addresses, aliases, as every door sees them.

The names are wildpy's own (snake_case), not WildDuck's JSON fields: `handlers/` renders these as
WildDuck answers, SMTP reads `Resolution`, the CLI prints them. The account views are TypedDicts
(plain dicts at run time, so a caller may print them as JSON); `Resolution` and `TokenUser`
are dataclasses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, TypedDict

from wildpy.addressing import ForwardTarget


class AccountSummary(TypedDict):
    """A user as a listing shows it."""

    id: str
    username: str
    name: str
    #: the main address, '' for none
    address: str
    tags: list[str]
    #: the forward targets' values
    targets: list[str]
    enabled2fa: list[str]
    autoreply: bool
    encrypt_messages: bool
    encrypt_forwarded: bool
    #: the quota in bytes (the user's own or the global default) and the bytes stored
    quota_allowed: int
    storage_used: int
    #: a password or a temporary password is set
    has_password: bool
    activated: bool
    disabled: bool
    suspended: bool
    metadata: dict[str, Any]
    internal_data: dict[str, Any]


class Account(AccountSummary):
    """A user with its settings and the state of its limits."""

    language: str
    #: message retention in milliseconds, 0 for none
    retention: int
    pub_key: str
    spam_level: int
    from_whitelist: list[str]
    feature_flags: dict[str, bool]
    disabled_scopes: list[str]
    #: every limit: allowed, used and (for windowed ones) the seconds left in the window
    limits: dict[str, Any]
    #: flagged as having to turn a second factor on (WildDuck's require2faEnabled)
    require_2fa_enabled: bool


class TemporaryPassword(TypedDict):
    password: str
    #: valid for 24 hours from this moment
    valid_after: datetime


class QuotaRecount(TypedDict):
    storage_used: int
    previous_storage_used: int


class AddressCount(TypedDict):
    deleted: int


class Deletion(TypedDict):
    """A user moved aside for deferred deletion."""

    user: str
    addresses: AddressCount
    delete_after: datetime


class DeletedAccount(TypedDict):
    """A user waiting for deferred deletion, still restorable."""

    user: str
    username: str
    storage_used: int
    tags: list[str]
    deleted: datetime
    recoverable_addresses: list[str]


class Restoration(TypedDict):
    user: str
    recovered_addresses: int
    #: the main address after the restore, '' for none
    main_address: str


class StoredAddress(TypedDict):
    """An address of a user."""

    id: str
    #: the display name, '' for none
    name: str
    address: str
    user: str
    tags: list[str]
    created: datetime
    metadata: dict[str, Any]
    internal_data: dict[str, Any]


class UserAddress(StoredAddress):
    """An address of a user, read along with the user's main address."""

    #: it is the user's main address
    main: bool


class ForwardedAddress(TypedDict):
    """An address of nobody that forwards to its targets."""

    id: str
    name: str
    address: str
    targets: list[ForwardTarget]
    #: forwards allowed a day (its own limit or the default)
    forwards: int
    #: the stored autoreply: status, start, end, name, subject, text, html
    autoreply: dict[str, Any]
    tags: list[str]
    forwarded_disabled: bool
    created: datetime
    metadata: dict[str, Any]
    internal_data: dict[str, Any]


class AddressSummary(TypedDict):
    """An address as the listing of all addresses shows it."""

    id: str
    name: str
    address: str
    #: the owner, None for a forwarded address
    user: str | None
    forwarded_disabled: bool
    tags: list[str]
    #: the forward targets' values (forwarded addresses only)
    targets: list[str]
    metadata: dict[str, Any]
    internal_data: dict[str, Any]


class RegisteredAddress(TypedDict):
    """A recent correspondent of a user."""

    id: str
    name: str
    address: str


class DomainRename(TypedDict):
    addresses: int
    users: int
    aliases: int


class DomainAlias(TypedDict):
    id: str
    alias: str
    domain: str
    created: datetime


class DomainAliasSummary(TypedDict):
    id: str
    alias: str
    domain: str


#: why an address resolved to what it did:
#: - "id": it was looked up by its id;
#: - "exact": its own address (after normalisation: case, dots, `+label`);
#: - "domain_alias": the same local part at the domain the recipient's domain is an alias of;
#: - "wildcard": a wildcard at the recipient's domain (`*@d`, `prefix*@d`, `*suffix@d`);
#: - "alias_wildcard": such a wildcard at the domain the recipient's domain is an alias of;
#: - "any_domain": a `local@*` address, the local part at any domain.
MatchReason = Literal["id", "exact", "domain_alias", "wildcard", "alias_wildcard", "any_domain"]


@dataclass(frozen=True)
class TokenUser:
    """The user a token belongs to, as read when the token was checked.

    A door reads `id` and `disabled`; it hands the record back to `UserService.get` to describe
    the caller's own account without reading it again (the stored form stays inside services).
    """

    id: str
    disabled: bool
    #: the stored user, for `UserService` only
    stored: dict[str, Any] = field(repr=False, compare=False)


@dataclass(frozen=True)
class Resolution:
    """Where mail to an address goes: to its owner, or to the targets of a forwarded address."""

    reason: MatchReason
    #: the stored address that matched (the wildcard itself for a wildcard match)
    matched: str
    #: the matched address of a user, or None
    address: StoredAddress | None = None
    #: the matched forwarded address, or None
    forwarded: ForwardedAddress | None = None

    @property
    def user(self) -> str | None:
        """The user the mail is delivered to, None for a forwarded address."""
        return self.address["user"] if self.address is not None else None

    @property
    def targets(self) -> list[ForwardTarget]:
        """Where a forwarded address sends the mail (empty for a user's address)."""
        return list(self.forwarded["targets"]) if self.forwarded is not None else []
