"""The error contract at the HTTP edge: envelope, statuses, request ids, bad input of every kind."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT_TOKEN, Api, assert_error, make_config

from wildpy.app import create_app
from wildpy.errors import catalogue, error_class
from wildpy.runtime import open_runtime

# error-contract.md, "Status rules", verbatim
CONTRACT_STATUSES = {
    400: "InputValidationError EmptyMessage InsecurePasswordError NoUpdates WildcardNotPermitted",
    401: "InvalidToken AuthFailed",
    403: "MissingPrivileges InvalidAuthScope UserDisabled TooMany OverQuotaError ChangeNotAllowed "
    "DisallowedMailboxMethod MessageRejected DroppedByPolicy",
    404: "UserNotFound AddressNotFound AspNotFound DkimNotFound AliasNotFound FilterNotFound "
    "NoSuchMailbox MessageNotFound FileNotFound ChallengeNotFound CredentialsNotFound "
    "WebhookNotFound CertNotFound RestoreTaskNotFound",
    405: "MethodNotAllowed",
    409: "UserExistsError AddressExistsError AliasExists MailboxExistsError TotpEnabled "
    "TotpDisabled CustomEnabled CustomDisabled WebAuthnDisabled DeleteInProgress",
    413: "PayloadTooLarge",
    429: "RateLimitedError DownloadRateLimited UploadRateLimited",
    500: "InternalError HashError KeyGenerateError QRError InternalConfigError UserUpdateFail "
    "StoreError ERRCOMPOSE",
    503: "InternalDatabaseError",
}

FIFTY_TWO = [
    "InvalidToken",
    "MissingPrivileges",
    "InputValidationError",
    "InternalDatabaseError",
    "InternalError",
    "UserNotFound",
    "UserExistsError",
    "AddressExistsError",
    "AddressNotFound",
    "ChangeNotAllowed",
    "WildcardNotPermitted",
    "AspNotFound",
    "InvalidAuthScope",
    "AuthFailed",
    "DkimNotFound",
    "AliasExists",
    "AliasNotFound",
    "FilterNotFound",
    "NoSuchMailbox",
    "MailboxExistsError",
    "MessageNotFound",
    "OverQuotaError",
    "EmptyMessage",
    "FileNotFound",
    "InsecurePasswordError",
    "ERRCOMPOSE",
    "KeyGenerateError",
    "InternalConfigError",
    "HashError",
    "UserUpdateFail",
    "TotpEnabled",
    "QRError",
    "TotpDisabled",
    "RateLimitedError",
    "WebAuthnDisabled",
    "CustomEnabled",
    "CustomDisabled",
    "ChallengeNotFound",
    "CredentialsNotFound",
    "NoUpdates",
    "TooMany",
    "WebhookNotFound",
    "CertNotFound",
    "UserDisabled",
    "MessageRejected",
    "StoreError",
    "DroppedByPolicy",
    "DisallowedMailboxMethod",
    "DeleteInProgress",
    "RestoreTaskNotFound",
    "DownloadRateLimited",
    "UploadRateLimited",
]


def test_catalogue_has_every_contract_code_with_its_status() -> None:
    assert len(FIFTY_TWO) == 52
    codes = catalogue()
    for status, names in CONTRACT_STATUSES.items():
        for name in names.split():
            assert codes[name].status == status, name
    for name in FIFTY_TWO:
        cls = error_class(name)
        assert cls.message, name
        assert cls.imap.startswith(("NO", "BAD")), name


def test_protocol_mapping_of_the_contract() -> None:
    assert (
        error_class("OverQuotaError")().imap_response().startswith("NO [OVERQUOTA] OverQuotaError:")
    )
    assert error_class("OverQuotaError").smtp == "452 4.2.2"
    assert error_class("AuthFailed").smtp == "535 5.7.8"
    assert error_class("UserNotFound").smtp == "550 5.1.1"
    assert error_class("InternalDatabaseError").imap == "NO [UNAVAILABLE]"
    # an internal fault never puts its text on the wire
    fault = error_class("InternalError")("boom at /srv/x.py line 3")
    assert "boom" not in (fault.smtp_response() or "")


async def test_errors_route_lists_the_catalogue(api: Api) -> None:
    status, body = await api.as_token(None).get("/errors")
    assert status == 200
    listed = {entry["code"]: entry for entry in body["errors"]}
    assert set(listed) == set(catalogue())
    assert listed["UserNotFound"] == {
        "code": "UserNotFound",
        "status": 404,
        "message": "This user does not exist",
        "imap": "NO",
        "smtp": "550 5.1.1",
        "retryable": False,
    }
    assert listed["InternalDatabaseError"]["retryable"] is True


async def test_unknown_route_wrong_method_and_request_ids(api: Api) -> None:
    response = await api.client.get(
        "/no/such/route", headers={"X-Request-Id": "abc-123", "X-Access-Token": ROOT_TOKEN}
    )
    body = await response.json()
    assert_error(response.status, body, 404, "ResourceNotFound")
    assert body["requestId"] == "abc-123"
    assert response.headers["X-Request-Id"] == "abc-123"
    status, body = await api.call("PATCH", "/users")
    assert_error(status, body, 405, "MethodNotAllowed")
    assert "GET" in body["details"]["allowed"]
    # a request id is generated when none (or a hostile one) is sent
    response = await api.client.get("/errors", headers={"X-Request-Id": "bad id\twith junk"})
    assert len(response.headers["X-Request-Id"]) == 32


async def test_invalid_json_utf8_and_body_shapes(api: Api) -> None:
    json_headers = {"Content-Type": "application/json"}
    status, body = await api.post("/users", data=b'{"username": ', headers=json_headers)
    assert_error(status, body, 400, "InvalidContent")
    status, body = await api.post("/users", data=b'{"username": "\xff\xfe"}', headers=json_headers)
    assert_error(status, body, 400, "InvalidContent")
    assert "UTF-8" in body["error"]
    status, body = await api.post("/users", data=b"[1, 2, 3]", headers=json_headers)
    assert_error(status, body, 400, "InvalidContent")


async def test_validation_details_per_field(api: Api) -> None:
    status, body = await api.post(
        "/users", {"username": "", "password": 5, "quota": "lots", "unknownField": 1}
    )
    assert_error(status, body, 400, "InputValidationError")
    details = body["details"]
    assert {"username", "password", "quota", "unknownField"} <= set(details)
    assert "not allowed" in details["unknownField"]
    status, body = await api.get("/users/not-an-id")
    assert_error(status, body, 400, "InputValidationError")
    assert "user" in body["details"]
    status, body = await api.get("/users", params={"limit": "9999"})
    assert_error(status, body, 400, "InputValidationError")
    status, body = await api.get("/users", params={"next": "not base64 !"})
    assert_error(status, body, 400, "InputValidationError")
    status, body = await api.get("/users", params={"next": "e30"})  # "{}" is no cursor
    assert_error(status, body, 400, "InputValidationError")


async def test_oversized_body_gets_413(mongo_uri: str, tmp_path: Path, aiohttp_client: Any) -> None:
    config = make_config(mongo_uri, tmp_path, api={"maxBodySize": 4096})
    async with open_runtime(config) as runtime:
        client = await aiohttp_client(create_app(config, runtime=runtime))
        api = Api(client)
        big = {"username": "big", "password": "x" * 10_000}
        status, body = await api.post("/users", big)
        assert_error(status, body, 413, "PayloadTooLarge")
        assert body["details"]["limit"] == 4096
        status, _ = await api.get("/users")  # and the server goes on
        assert status == 200
        await runtime.database.drop_all()


async def test_crash_answers_500_without_internals(
    mongo_uri: str, tmp_path: Path, aiohttp_client: Any
) -> None:
    """A fault nobody planned for (here: the roles file vanished mid-flight) is a clean 500."""
    for debug in (False, True):
        config = make_config(mongo_uri, tmp_path, api={"debug": debug})
        async with open_runtime(config) as runtime:
            runtime.roles._grants = None  # type: ignore[assignment]  # a broken internal state
            client = await aiohttp_client(create_app(config, runtime=runtime))
            status, body = await Api(client).get("/users")
            assert_error(status, body, 500, "InternalError")
            assert ("details" in body) is debug
            assert "Traceback" not in str(body)
            await runtime.database.drop_all()


async def test_burst_of_concurrent_requests_all_answered(api: Api) -> None:
    status, body = await api.post("/users", {"username": "burst", "password": "burst pass 1"})
    assert status == 200
    user_id = body["id"]
    paths = [f"/users/{user_id}", "/users/000000000000000000000000", "/users/zzz", "/nowhere"]

    async def one(index: int) -> int:
        response = await api.client.get(
            paths[index % len(paths)], headers={"X-Access-Token": ROOT_TOKEN}
        )
        await response.read()
        return response.status

    statuses = await asyncio.gather(*(one(i) for i in range(2000)))
    assert sorted(set(statuses)) == [200, 400, 404]
    status, _ = await api.get(f"/users/{user_id}")
    assert status == 200


@pytest.mark.parametrize("header", ["X-Access-Token", "Authorization", "query"])
async def test_wrong_tokens_in_every_transport(api: Api, header: str) -> None:
    anonymous = api.as_token(None)
    if header == "query":
        status, body = await anonymous.get("/users", params={"accessToken": "f" * 40})
    elif header == "Authorization":
        status, body = await anonymous.get(
            "/users", headers={"Authorization": "Bearer " + "f" * 40}
        )
    else:
        status, body = await anonymous.get("/users", headers={header: "not-a-token"})
    assert_error(status, body, 401, "InvalidToken")
