"""WildDuck's JSON shapes of the user records (reference 5.1): field names, order, defaults."""

from __future__ import annotations

from typing import Any

from wildpy.services.account_records import (
    Account,
    AccountSummary,
    DeletedAccount,
    Deletion,
    QuotaRecount,
    Restoration,
    TemporaryPassword,
)


def _state(account: AccountSummary) -> dict[str, Any]:
    return {
        "hasPasswordSet": account["has_password"],
        "activated": account["activated"],
        "disabled": account["disabled"],
        "suspended": account["suspended"],
    }


def user_body(account: Account) -> dict[str, Any]:
    """GET /users/:id."""
    return {
        "id": account["id"],
        "username": account["username"],
        "name": account["name"],
        "address": account["address"],
        "language": account["language"],
        "retention": account["retention"] or False,
        "enabled2fa": account["enabled2fa"],
        "autoreply": account["autoreply"],
        "encryptMessages": account["encrypt_messages"],
        "encryptForwarded": account["encrypt_forwarded"],
        "pubKey": account["pub_key"],
        "spamLevel": account["spam_level"],
        # no PGP library to read the key with (see handlers/users._public_key)
        "keyInfo": False,
        "metaData": account["metadata"],
        "internalData": account["internal_data"],
        "targets": account["targets"],
        "limits": account["limits"],
        "tags": account["tags"],
        "fromWhitelist": account["from_whitelist"],
        "featureFlags": account["feature_flags"],
        "disabledScopes": account["disabled_scopes"],
        **_state(account),
        # WildDuck answers it after the state flags
        "require2faEnabled": account["require_2fa_enabled"],
    }


def user_row(account: AccountSummary, *, meta: bool, internal: bool) -> dict[str, Any]:
    """A row of GET /users; `metaData`/`internalData` only when asked for."""
    row: dict[str, Any] = {
        "id": account["id"],
        "username": account["username"],
        "name": account["name"],
        "address": account["address"],
        "tags": account["tags"],
        "targets": account["targets"],
        "enabled2fa": account["enabled2fa"],
        "autoreply": account["autoreply"],
        "encryptMessages": account["encrypt_messages"],
        "encryptForwarded": account["encrypt_forwarded"],
        "quota": {"allowed": account["quota_allowed"], "used": account["storage_used"]},
        **_state(account),
    }
    if meta:
        row["metaData"] = account["metadata"]
    if internal:
        row["internalData"] = account["internal_data"]
    return row


def deletion_body(deletion: Deletion) -> dict[str, Any]:
    """DELETE /users/:id: the deferred deletion is WildDuck's task, named by the user's id."""
    return {
        "code": "TaskScheduled",
        "user": deletion["user"],
        "addresses": {"deleted": deletion["addresses"]["deleted"]},
        "deleteAfter": deletion["delete_after"],
        "task": deletion["user"],
    }


def quota_body(recount: QuotaRecount) -> dict[str, Any]:
    return {
        "storageUsed": recount["storage_used"],
        "previousStorageUsed": recount["previous_storage_used"],
    }


def password_body(temporary: TemporaryPassword) -> dict[str, Any]:
    return {"password": temporary["password"], "validAfter": temporary["valid_after"]}


def restore_info_body(deleted: DeletedAccount) -> dict[str, Any]:
    return {
        "user": deleted["user"],
        "username": deleted["username"],
        "storageUsed": deleted["storage_used"],
        "tags": deleted["tags"],
        "deleted": deleted["deleted"],
        "recoverableAddresses": deleted["recoverable_addresses"],
    }


def restore_body(restored: Restoration) -> dict[str, Any]:
    addresses = {"recovered": restored["recovered_addresses"], "main": restored["main_address"]}
    return {"code": "RequestProcessed", "user": restored["user"], "addresses": addresses}
