"""User accounts: create, read, list, update, delete (deferred, restorable), passwords, quota.

Input arrives as typed records (account_inputs), output leaves as typed records
(account_records); this module applies the rules: username and address normalisation, password
hashing or imported hashes, tags and metadata encoding, NoUpdates when a change changes nothing.
"""

from __future__ import annotations

import contextlib
import secrets
import string
from dataclasses import dataclass
from datetime import datetime, timedelta

from wildpy import errors, passwords
from wildpy.addressing import (
    default_address_for,
    forward_target,
    parse_address,
    username_view,
    validate_username,
)
from wildpy.clock import utcnow
from wildpy.counters import Counters
from wildpy.fields import decode_metadata, encode_metadata, normalize_tags
from wildpy.storage.accounts import AccessTokens, DeletedUsers, Users
from wildpy.storage.database import AlreadyExists, Document, new_id
from wildpy.storage.listing import ListingCriteria
from wildpy.storage.messages import Messages
from wildpy.storage.pagination import Page, PageRequest

from .account_inputs import NewUser, UserChanges, UserSettings
from .account_records import (
    Account,
    AccountSummary,
    DeletedAccount,
    Deletion,
    QuotaRecount,
    Restoration,
    TemporaryPassword,
    TokenUser,
)
from .addresses import AddressService
from .limits import COUNTER_OF_FIELD, allowed, describe_limits
from .mailboxes import MailboxService

TEMP_PASSWORD_WINDOW = timedelta(hours=24)
#: previous password hashes kept on the account (WildDuck keeps them all)
OLD_PASSWORDS_KEPT = 10


def _summary(user: Document) -> AccountSummary:
    """The listing view of a stored user. A temporary password counts as a password (as in
    WildDuck)."""
    return {
        "id": user["_id"],
        "username": user["username"],
        "name": user.get("name", ""),
        "address": user.get("address", ""),
        "tags": user.get("tags", []),
        "targets": [target["value"] for target in user.get("targets", [])],
        "enabled2fa": user.get("enabled2fa", []),
        "autoreply": bool(user.get("autoreply")),
        "encrypt_messages": bool(user.get("encryptMessages")),
        "encrypt_forwarded": bool(user.get("encryptForwarded")),
        "quota_allowed": allowed(user, "quota"),
        "storage_used": int(user.get("storageUsed", 0)),
        "has_password": bool(user.get("password") or user.get("tempPassword")),
        "activated": user.get("activated", True),
        "disabled": user.get("disabled", False),
        "suspended": user.get("suspended", False),
        "metadata": decode_metadata(user.get("metaData")),
        "internal_data": decode_metadata(user.get("internalData")),
    }


#: the settings that would need PGP encryption of the user's mail, which wildpy does not do yet:
#: refused rather than stored and silently ignored (a client would believe the mail encrypted)
_NOT_ENCRYPTING = "wildpy does not encrypt stored mail yet"


def _refuse_encryption(settings: UserSettings) -> None:
    """400 InputValidationError, naming each field, for a setting that asks for encryption."""
    details: dict[str, str] = {}
    for field, value in (
        ("encryptMessages", settings.encrypt_messages),
        ("encryptForwarded", settings.encrypt_forwarded),
    ):
        if value:
            details[field] = f'"{field}" can not be true: {_NOT_ENCRYPTING}'
    if settings.pub_key and settings.pub_key.strip():
        details["pubKey"] = f'"pubKey" can not be set: {_NOT_ENCRYPTING} ("" clears a key)'
    if details:
        raise errors.InputValidationError(". ".join(details.values()), details=details)


@dataclass(frozen=True)
class UserPage:
    page: Page
    results: list[AccountSummary]


class UserService:
    def __init__(
        self,
        users: Users,
        deleted_users: DeletedUsers,
        tokens: AccessTokens,
        addresses: AddressService,
        counters: Counters,
        *,
        email_domain: str,
        mailboxes: MailboxService,
        messages: Messages,
    ) -> None:
        self._users = users
        self._deleted = deleted_users
        self._tokens = tokens
        self._addresses = addresses
        self._counters = counters
        self._email_domain = email_domain
        self._mailboxes = mailboxes
        self._messages = messages

    # ------------------------------------------------------------------------------ reading

    async def load(self, user_id: str, projection: Document | None = None) -> Document:
        """The stored user; 404 UserNotFound. (`projection` is for the callers outside the
        account side that still pass one; `require` says "it must exist" without it.)"""
        user = await self._users.get(user_id, projection)
        if user is None:
            raise errors.UserNotFound()
        return user

    async def require(self, user_id: str) -> None:
        """404 UserNotFound unless the user exists."""
        if not await self._users.exists(user_id):
            raise errors.UserNotFound()

    async def get(self, user_id: str, *, known: TokenUser | None = None) -> Account:
        """The user with its settings and limits. `known` is the caller's own user when
        authentication already read it (saves a round trip)."""
        # the record is this package's own: reading its stored form here keeps it in services
        user = known.stored if known is not None and known.id == user_id else None
        if user is None:
            user = await self.load(user_id)
        return {
            **_summary(user),
            "language": user.get("language", ""),
            "retention": user.get("retention") or 0,
            "pub_key": user.get("pubKey", ""),
            "spam_level": user.get("spamLevel", 50),
            "from_whitelist": user.get("fromWhitelist", []),
            "feature_flags": user.get("featureFlags", {}),
            "disabled_scopes": user.get("disabledScopes", []),
            "limits": await describe_limits(self._counters, user),
            "require_2fa_enabled": bool(user.get("require2faEnabled")),
        }

    async def list(
        self,
        paging: PageRequest,
        *,
        query: str | None = None,
        forward: str | None = None,
        tags: str | None = None,
        required_tags: str | None = None,
        only_user: str | None = None,
    ) -> UserPage:
        criteria = ListingCriteria(query, forward, tags, required_tags)
        result = await self._users.page_matching(criteria, paging, only_user=only_user)
        return UserPage(result, [_summary(user) for user in result.results])

    async def resolve(self, username: str) -> str:
        """The id of the user with this username, or owning this address."""
        if "@" in username:
            owner = await self._addresses.owner_of(username)
            if owner is not None:
                return owner
        user_id = await self._users.id_by_username(username_view(username))
        if user_id is None:
            raise errors.UserNotFound()
        return user_id

    # ------------------------------------------------------------------------------ creating

    async def create(self, new: NewUser) -> str:
        """A new user with its main address and default folders; its id."""
        username = validate_username(new.username)
        _refuse_encryption(new)
        user_id = new_id()
        password_hash = await self._password_hash(new)
        address = self._main_address(username, new)
        tags, tagsview = normalize_tags(new.tags or [])
        document: Document = {
            "_id": user_id,
            "username": username,
            "unameview": username_view(username),
            "name": new.name or "",
            "address": address,
            "language": "",
            "password": "",
            "authVersion": 1,
            "storageUsed": 0,
            "targets": [self._target(value) for value in new.targets or []],
            "autoreply": False,
            "enabled2fa": [],
            "spamLevel": 50,
            "retention": 0,
            "disabledScopes": [],
            "fromWhitelist": [],
            "featureFlags": {},
            "tags": tags,
            "tagsview": tagsview,
            "metaData": encode_metadata(new.metadata or {}, "metaData"),
            "internalData": encode_metadata(new.internal_data or {}, "internalData"),
            "activated": True,
            "disabled": False,
            "suspended": False,
            "created": utcnow(),
        }
        document.update(new.stored_values())
        if new.mailboxes:
            document["mailboxNames"] = dict(new.mailboxes)
        if password_hash:
            if new.require_password_change:
                document["tempPassword"] = {
                    "password": password_hash,
                    "created": utcnow(),
                    "validAfter": utcnow(),
                }
            else:
                document["password"] = password_hash
                document["passwordChange"] = utcnow()
        try:
            await self._users.insert(document)
        except AlreadyExists:
            raise errors.UserExistsError(details={"username": username}) from None
        if address:
            try:
                await self._addresses.insert_main_address(
                    user_id, address, tags=tags if new.add_tags_to_address else []
                )
            except Exception:
                # nothing half-made: the account goes again when its address can not be added
                await self._users.remove(user_id)
                raise
        try:
            await self._mailboxes.create_defaults(
                user_id,
                str(document.get("language") or ""),
                new.mailboxes,
                retention=int(document.get("retention") or 0),
            )
        except BaseException:
            # nothing half-made: an account whose folders could not be made goes again; when the
            # database is down this fails too, and the first error is the one to report
            with contextlib.suppress(Exception):
                await self._addresses.remove_all_of_user(user_id)
            with contextlib.suppress(Exception):
                await self._users.remove(user_id)
            raise
        return user_id

    def _main_address(self, username: str, new: NewUser) -> str:
        """The main address to create the user with ('' for none), validated before anything is
        written, so that an unusable address refuses the request instead of leaving a user
        without it."""
        if new.empty_address:
            return ""
        if new.address:
            return parse_address(new.address).address
        try:
            return parse_address(default_address_for(username, self._email_domain)).address
        except errors.InputValidationError:
            # WildDuck stores such an address anyway (a 128-character username, "a:b"), and it
            # can never receive mail; say so instead
            message = (
                f'username "{username}" does not make a valid email address: '
                'give "address", or "emptyAddress": true'
            )
            raise errors.InputValidationError(message, details={"address": message}) from None

    async def _password_hash(self, settings: UserSettings) -> str:
        password: object = settings.password
        if password in (None, False, ""):
            return ""
        if not isinstance(password, str):
            # a mapping from a caller that did not check its types (see `create`)
            raise errors.InputValidationError(details={"password": '"password" must be a string'})
        if settings.hashed_password:
            if not passwords.is_supported_hash(password):
                raise errors.InputValidationError(
                    "Unsupported password hash", details={"password": "unsupported hash format"}
                )
            return password
        if settings.allow_unsafe is False and passwords.is_insecure_password(password):
            raise errors.InsecurePasswordError()
        try:
            return await passwords.hash_password_async(password)
        except Exception as exc:
            raise errors.HashError() from exc

    @staticmethod
    def _target(value: str) -> Document:
        target = forward_target(value)
        return {"id": new_id(), "type": target.type, "value": target.value}

    # ------------------------------------------------------------------------------ updating

    async def update(
        self, user_id: str, change: UserChanges, *, via_token: str | None = None
    ) -> None:
        """Apply `change`; 400 NoUpdates when it changes nothing. `via_token`: the caller's
        token hash, kept valid by a password change."""
        _refuse_encryption(change)
        user = await self.load(user_id)
        changes: Document = {
            key: value for key, value in change.stored_values().items() if user.get(key) != value
        }
        if change.name is not None and change.name != user.get("name"):
            changes["name"] = change.name
        if change.targets is not None:
            targets = [self._target(value) for value in change.targets]
            if [t["value"] for t in targets] != [t["value"] for t in user.get("targets", [])]:
                changes["targets"] = targets
        if change.tags is not None:
            tags, tagsview = normalize_tags(change.tags)
            if tags != user.get("tags", []):
                changes.update(tags=tags, tagsview=tagsview)
        for key, given in (("metaData", change.metadata), ("internalData", change.internal_data)):
            if given is not None:
                encoded = encode_metadata(given, key)
                if encoded != user.get(key):
                    changes[key] = encoded
        if change.disable2fa and user.get("enabled2fa"):
            changes["enabled2fa"] = []

        increments: Document = {}
        unsets: list[str] = []
        password_change = change.password is not None
        if password_change:
            await self._check_existing_password(user, change.existing_password)
            new_hash = await self._password_hash(change)
            changes["password"] = new_hash
            changes["passwordChange"] = utcnow()
            if user.get("password"):
                # kept bounded: the newest OLD_PASSWORDS_KEPT hashes
                history = [item for item in user.get("oldPasswords", []) if isinstance(item, dict)]
                history.append({"date": utcnow(), "hash": user["password"]})
                changes["oldPasswords"] = history[-OLD_PASSWORDS_KEPT:]
            if "tempPassword" in user:
                unsets.append("tempPassword")
            increments["authVersion"] = 1
        elif change.existing_password is not None:
            await self._check_existing_password(user, change.existing_password)
        if changes.get("suspended") is True:
            increments["authVersion"] = 1  # a suspension logs every token out

        if not changes and not unsets:
            raise errors.NoUpdates()
        auth_version = await self._users.apply_changes(
            user_id, values=changes, increments=increments, removals=unsets
        )
        if auth_version is None:
            raise errors.UserNotFound()
        for key in changes:
            prefix = COUNTER_OF_FIELD.get(key)
            if prefix:
                await self._counters.delete(f"{prefix}{user_id}")
        if password_change and via_token is not None:
            await self._tokens.set_auth_version(via_token, auth_version, user=user_id)

    @staticmethod
    async def _check_existing_password(user: Document, existing: str | None) -> None:
        if existing is None:
            return
        if not await passwords.verify_password_async(existing, user.get("password") or ""):
            raise errors.AuthFail()

    async def reset_password(self, user_id: str, valid_after: datetime | None) -> TemporaryPassword:
        """A temporary password, valid 24 hours from `valid_after`; the old one keeps working."""
        alphabet = string.ascii_letters + string.digits
        password = "".join(secrets.choice(alphabet) for _ in range(12))
        start = valid_after or utcnow()
        try:
            hashed = await passwords.hash_password_async(password)
        except Exception as exc:
            raise errors.HashError() from exc
        temp_password = {"password": hashed, "created": utcnow(), "validAfter": start}
        if not await self._users.set_temp_password(user_id, temp_password):
            raise errors.UserNotFound()
        return {"password": password, "valid_after": start}

    async def recalculate_quota(self, user_id: str) -> QuotaRecount:
        previous = await self._users.storage_used_of(user_id)
        if previous is None:
            raise errors.UserNotFound()
        # through the repository, not the driver: a lost database is a 503 here as everywhere
        total = await self._messages.storage_used_by(user_id)
        await self._users.set_storage_used(user_id, total)
        return {"storage_used": total, "previous_storage_used": previous}

    # ------------------------------------------------------------------------------ deleting

    async def delete(self, user_id: str, delete_after: datetime | None) -> Deletion:
        """Move the account aside for deferred deletion; restorable until `delete_after`."""
        user = await self.load(user_id)
        when = delete_after or utcnow()
        addresses = await self._addresses.remove_all_of_user(user_id)
        record = {key: value for key, value in user.items() if key != "_id"}
        record["deleteAfter"] = when
        record["deleteInfo"] = {
            "deletedAt": utcnow(),
            "mainAddress": user.get("address", ""),
            "addresses": addresses,
        }
        await self._deleted.park(user_id, record)
        await self._users.remove(user_id)
        await self._tokens.remove_of_user(user_id)
        return {"user": user_id, "addresses": {"deleted": len(addresses)}, "delete_after": when}

    async def restore_info(self, user_id: str) -> DeletedAccount:
        record = await self._deleted.by_id(user_id)
        if record is None:
            raise errors.AccountNotFound()
        info = record["deleteInfo"]
        return {
            "user": user_id,
            "username": record["username"],
            "storage_used": record.get("storageUsed", 0),
            "tags": record.get("tags", []),
            "deleted": info["deletedAt"],
            "recoverable_addresses": [a["address"] for a in info["addresses"]],
        }

    async def restore(self, user_id: str) -> Restoration:
        record = await self._deleted.by_id(user_id)
        if record is None:
            if await self._users.exists(user_id):
                raise errors.AccountFound()
            raise errors.AccountNotFound()
        info = record.pop("deleteInfo")
        record.pop("deleteAfter", None)
        try:
            await self._users.insert(record)
        except AlreadyExists:
            raise errors.UserExistsError() from None
        recovered = await self._addresses.restore_addresses(user_id, info["addresses"])
        main = info.get("mainAddress", "")
        if main and main not in recovered:
            main = recovered[0] if recovered else ""
            await self._users.set_main_address(user_id, main)
        await self._deleted.remove(user_id)
        return {"user": user_id, "recovered_addresses": len(recovered), "main_address": main}
