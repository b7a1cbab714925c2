"""Typed inputs of the account services: a new user, changes to a user, addresses, forwards.

`None` means "not given" throughout (a change leaves that field alone). The REST API and the
CLI speak WildDuck's field names; `from_fields` turns such a mapping (already checked by the
REST layer's models, and filtered by the caller's permissions) into these types, so the names
are known in one place. The stored documents use the same names (WildDuck's schema).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, Literal, Self

from .limits import LIMIT_FIELDS

Metadata = Mapping[str, Any] | str
Tags = list[str] | str


@dataclass(frozen=True, kw_only=True)
class Limits:
    """A user's own limits; 0 means the global default (limits.DEFAULT_LIMITS)."""

    quota: int | None = None
    recipients: int | None = None
    forwards: int | None = None
    filters: int | None = None
    imap_max_upload: int | None = None
    imap_max_download: int | None = None
    pop3_max_download: int | None = None
    pop3_max_messages: int | None = None
    imap_max_connections: int | None = None
    received_max: int | None = None


#: Limits attribute -> stored (and WildDuck) field
_LIMIT_NAMES = {
    "quota": "quota",
    "recipients": "recipients",
    "forwards": "forwards",
    "filters": "filters",
    "imap_max_upload": "imapMaxUpload",
    "imap_max_download": "imapMaxDownload",
    "pop3_max_download": "pop3MaxDownload",
    "pop3_max_messages": "pop3MaxMessages",
    "imap_max_connections": "imapMaxConnections",
    "received_max": "receivedMax",
}
if tuple(_LIMIT_NAMES.values()) != LIMIT_FIELDS:
    # a limit added to limits.py must be added here too, or it would silently not be stored
    raise RuntimeError("account_inputs.Limits does not match limits.LIMIT_FIELDS")

#: UserSettings attributes stored as given, -> stored (and WildDuck) field
_PLAIN_NAMES = {
    "language": "language",
    "retention": "retention",
    "spam_level": "spamLevel",
    "upload_sent_messages": "uploadSentMessages",
    "encrypt_messages": "encryptMessages",
    "encrypt_forwarded": "encryptForwarded",
    "pub_key": "pubKey",
    "disabled_scopes": "disabledScopes",
    "from_whitelist": "fromWhitelist",
    "feature_flags": "featureFlags",
    "disabled": "disabled",
    "suspended": "suspended",
    "require_2fa_enabled": "require2faEnabled",
}

#: the other attributes of the inputs -> WildDuck's field
_OTHER_NAMES = {
    "name": "name",
    "password": "password",
    "hashed_password": "hashedPassword",
    "allow_unsafe": "allowUnsafe",
    "targets": "targets",
    "tags": "tags",
    "metadata": "metaData",
    "internal_data": "internalData",
    "username": "username",
    "address": "address",
    "empty_address": "emptyAddress",
    "require_password_change": "requirePasswordChange",
    "add_tags_to_address": "addTagsToAddress",
    "mailboxes": "mailboxes",
    "existing_password": "existingPassword",
    "disable2fa": "disable2fa",
    "main": "main",
    "allow_wildcard": "allowWildcard",
    "forwards": "forwards",
    "forwarded_disabled": "forwardedDisabled",
    "autoreply": "autoreply",
}


def _attributes(
    cls: type[Any], given: Mapping[str, Any], extra: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The keyword arguments of `cls` for the WildDuck-named `given` (unknown names refused:
    a field the REST model has and this module misses must not vanish silently)."""
    attributes = {f.name for f in fields(cls)}
    by_wildduck = {
        wildduck: attribute
        for attribute, wildduck in {**_OTHER_NAMES, **_PLAIN_NAMES, **(extra or {})}.items()
        if attribute in attributes
    }
    kwargs: dict[str, Any] = {}
    for key, value in given.items():
        if key not in by_wildduck:
            raise TypeError(f"{cls.__name__} has no field for {key!r}")
        kwargs[by_wildduck[key]] = value
    return kwargs


@dataclass(frozen=True, kw_only=True)
class UserSettings:
    """What a new user is given and a change may change."""

    name: str | None = None
    #: a new password; False or '' for none
    password: str | Literal[False] | None = None
    #: `password` is a hash to store as it is (an import)
    hashed_password: bool = False
    #: False: refuse a password known to be insecure
    allow_unsafe: bool | None = None
    targets: list[str] | None = None
    tags: Tags | None = None
    metadata: Metadata | None = None
    internal_data: Metadata | None = None
    language: str | None = None
    retention: int | None = None
    spam_level: int | None = None
    upload_sent_messages: bool | None = None
    encrypt_messages: bool | None = None
    encrypt_forwarded: bool | None = None
    pub_key: str | None = None
    disabled_scopes: list[str] | None = None
    from_whitelist: list[str] | None = None
    feature_flags: Mapping[str, bool] | None = None
    disabled: bool | None = None
    suspended: bool | None = None
    #: the user is flagged as having to turn a second factor on (told to clients, not enforced)
    require_2fa_enabled: bool | None = None
    limits: Limits = field(default_factory=Limits)

    def stored_values(self) -> dict[str, Any]:
        """The given settings that are stored as they are, under their stored names."""
        values = {
            stored: getattr(self, attribute)
            for attribute, stored in _PLAIN_NAMES.items()
            if getattr(self, attribute) is not None
        }
        for attribute, stored in _LIMIT_NAMES.items():
            if getattr(self.limits, attribute) is not None:
                values[stored] = getattr(self.limits, attribute)
        return values

    @classmethod
    def from_fields(cls, given: Mapping[str, Any]) -> Self:
        """From WildDuck's field names (the REST body, the CLI's options)."""
        limit_keys = {stored: attribute for attribute, stored in _LIMIT_NAMES.items()}
        limits = {limit_keys[k]: v for k, v in given.items() if k in limit_keys}
        rest = {k: v for k, v in given.items() if k not in limit_keys}
        return cls(**_attributes(cls, rest), limits=Limits(**limits))


@dataclass(frozen=True, kw_only=True)
class NewUser(UserSettings):
    username: str
    #: the main address; None for the default (username@emailDomain)
    address: str | None = None
    #: create the user without any address
    empty_address: bool = False
    #: the password is temporary: it must be changed at the first login
    require_password_change: bool = False
    #: give the main address the user's tags
    add_tags_to_address: bool = False
    #: names of the special folders (sent, trash, junk, drafts) instead of the defaults
    mailboxes: Mapping[str, str] | None = None


@dataclass(frozen=True, kw_only=True)
class UserChanges(UserSettings):
    #: the current password, which must be right for the change to happen
    existing_password: str | None = None
    #: turn every second factor off
    disable2fa: bool = False


@dataclass(frozen=True, kw_only=True)
class AddressSettings:
    name: str | None = None
    tags: Tags | None = None
    metadata: Metadata | None = None
    internal_data: Metadata | None = None

    @classmethod
    def from_fields(cls, given: Mapping[str, Any]) -> Self:
        """From WildDuck's field names (the REST body)."""
        return cls(**_attributes(cls, given))


@dataclass(frozen=True, kw_only=True)
class NewUserAddress(AddressSettings):
    address: str
    #: make it the user's main address
    main: bool = False
    #: allow `*` in it (a wildcard address)
    allow_wildcard: bool = False


@dataclass(frozen=True, kw_only=True)
class UserAddressChanges(AddressSettings):
    #: a new address (a rename)
    address: str | None = None
    #: True makes it the main address; False is refused (a main address is replaced, not unset)
    main: bool | None = None


@dataclass(frozen=True, kw_only=True)
class Autoreply:
    """An autoreply of a forwarded address; a given one is on unless `status` says otherwise."""

    status: bool | None = None
    #: when it starts and ends; False clears the date
    start: datetime | Literal[False] | None = None
    end: datetime | Literal[False] | None = None
    name: str | None = None
    subject: str | None = None
    text: str | None = None
    html: str | None = None

    def given(self) -> dict[str, Any]:
        """The given fields by their stored names (which are these), in this order."""
        return {
            f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None
        }


@dataclass(frozen=True, kw_only=True)
class ForwardedSettings(AddressSettings):
    targets: list[str] | None = None
    #: forwards allowed a day, 0 for the default
    forwards: int | None = None
    autoreply: Autoreply | None = None

    @classmethod
    def from_fields(cls, given: Mapping[str, Any]) -> Self:
        kwargs = _attributes(cls, given)
        if isinstance(kwargs.get("autoreply"), Mapping):
            kwargs["autoreply"] = Autoreply(**kwargs["autoreply"])
        return cls(**kwargs)


@dataclass(frozen=True, kw_only=True)
class NewForwarded(ForwardedSettings):
    address: str
    allow_wildcard: bool = False


@dataclass(frozen=True, kw_only=True)
class ForwardedChanges(ForwardedSettings):
    address: str | None = None
    forwarded_disabled: bool | None = None
