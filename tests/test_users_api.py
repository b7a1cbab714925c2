"""End-to-end tests of the user routes (WildDuck reference 5.1): real HTTP, the real database.

Every test talks to the production app through aiohttp's test client; the database is the
embedded server. State that would need waiting (counters, temporary password windows) is
arranged by writing the stored documents directly, never by sleeping.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import argon2
import bcrypt
import pytest
from conftest import Api, assert_error
from passlib.hash import des_crypt, md5_crypt, sha256_crypt, sha512_crypt

from wildpy.runtime import Runtime

GIB = 1024**3
PASSWORD = "correct horse battery 42"

LIMIT_FIELDS = {
    "quota": GIB,
    "recipients": 2000,
    "forwards": 2000,
    "filters": 400,
    "imapMaxUpload": 10 * GIB,
    "imapMaxDownload": 10 * GIB,
    "pop3MaxDownload": 10 * GIB,
    "pop3MaxMessages": 250,
    "imapMaxConnections": 15,
    "receivedMax": 60,
}

USER_KEYS = {
    "success",
    "id",
    "username",
    "name",
    "address",
    "language",
    "retention",
    "enabled2fa",
    "autoreply",
    "encryptMessages",
    "encryptForwarded",
    "pubKey",
    "spamLevel",
    "keyInfo",
    "metaData",
    "internalData",
    "targets",
    "limits",
    "tags",
    "fromWhitelist",
    "featureFlags",
    "disabledScopes",
    "hasPasswordSet",
    "activated",
    "disabled",
    "suspended",
    "require2faEnabled",
}

LISTING_KEYS = {
    "id",
    "username",
    "name",
    "address",
    "tags",
    "targets",
    "enabled2fa",
    "autoreply",
    "encryptMessages",
    "encryptForwarded",
    "quota",
    "hasPasswordSet",
    "activated",
    "disabled",
    "suspended",
}


def uname(prefix: str = "u") -> str:
    return f"{prefix}{uuid.uuid4().hex[:12]}"


async def create(api: Api, **fields: Any) -> str:
    body = {"username": uname(), "password": PASSWORD, **fields}
    status, answer = await api.post("/users", body)
    assert status == 200, answer
    assert answer["success"] is True and set(answer) == {"success", "id"}
    return str(answer["id"])


async def get_user(api: Api, user_id: str) -> dict[str, Any]:
    status, body = await api.get(f"/users/{user_id}")
    assert status == 200, body
    return body


async def login(api: Api, username: str, password: str) -> tuple[int, dict[str, Any]]:
    return await api.post("/authenticate", {"username": username, "password": password})


async def count_users(api: Api, **params: str) -> int:
    status, body = await api.get("/users", params={"limit": "1", **params})
    assert status == 200, body
    return int(body["total"])


# ------------------------------------------------------------------------------------ creating


async def test_create_defaults_and_user_shape(api: Api, runtime: Runtime) -> None:
    username = uname("Shape")
    status, body = await api.post("/users", {"username": username, "password": PASSWORD})
    assert status == 200, body
    user = await get_user(api, body["id"])
    assert set(user) == USER_KEYS
    assert user["id"] == body["id"]
    assert user["username"] == username.lower()  # usernames are stored lowercased
    assert user["address"] == f"{username.lower()}@example.com"
    assert user["name"] == ""
    assert user["retention"] is False
    assert user["spamLevel"] == 50
    assert user["keyInfo"] is False
    assert user["metaData"] == {} and user["internalData"] == {}
    assert user["tags"] == [] and user["targets"] == [] and user["disabledScopes"] == []
    assert user["enabled2fa"] == [] and user["autoreply"] is False
    assert (user["hasPasswordSet"], user["activated"]) == (True, True)
    assert (user["disabled"], user["suspended"]) == (False, False)

    limits = user["limits"]
    assert set(limits) == {
        "quota",
        "recipients",
        "forwards",
        "received",
        "filters",
        "imapUpload",
        "imapDownload",
        "pop3Download",
        "pop3MaxMessages",
        "imapMaxConnections",
    }
    assert limits["quota"] == {"allowed": GIB, "used": 0}
    for key, allowed in [
        ("recipients", 2000),
        ("forwards", 2000),
        ("received", 60),
        ("imapUpload", 10 * GIB),
        ("imapDownload", 10 * GIB),
        ("pop3Download", 10 * GIB),
    ]:
        assert limits[key] == {"allowed": allowed, "used": 0, "ttl": False}, key
    assert limits["filters"] == {"allowed": 400, "used": 0}
    assert limits["pop3MaxMessages"] == {"allowed": 250}
    assert limits["imapMaxConnections"] == {"allowed": 15, "used": 0}

    # the password is stored hashed (argon2id), never as given
    stored = await runtime.repositories.users.get(body["id"])
    assert stored is not None
    assert stored["password"].startswith("$argon2id$")
    assert PASSWORD not in json.dumps(stored, default=str)


async def test_create_with_every_account_field(api: Api, runtime: Runtime) -> None:
    username = uname("full")
    address = f"{username}.main@example.org"
    fields: dict[str, Any] = {
        "username": username,
        "password": PASSWORD,
        "address": address.upper(),
        "name": "Full Name",
        "language": "et",
        "retention": 86_400_000,
        "targets": ["forward@example.net", "smtp://mx.example.net:25", "https://hook.example/in"],
        "spamLevel": 80,
        "fromWhitelist": ["*@trusted.example", "boss@example.com"],
        "tags": ["Beta", "alpha", "beta", " gamma ", "ALPHA"],
        "addTagsToAddress": True,
        "uploadSentMessages": True,
        "mailboxes": {"sent": "Saadetud", "trash": "Prügi", "junk": "Rämps", "drafts": "Mustandid"},
        "disabledScopes": ["pop3", "smtp"],
        "metaData": {"plan": "gold", "n": 3},
        "internalData": json.dumps({"crm": 12}),
        "encryptMessages": False,
        "encryptForwarded": "no",
        "featureFlags": {"indexing": True},
        "sess": "session-1",
        "ip": "192.0.2.1",
        **{key: index + 1 for index, key in enumerate(LIMIT_FIELDS)},
    }
    status, body = await api.post("/users", fields)
    assert status == 200, body
    user_id = body["id"]
    user = await get_user(api, user_id)
    assert user["address"] == address.lower()
    assert user["name"] == "Full Name"
    assert user["language"] == "et"
    assert user["retention"] == 86_400_000
    assert user["targets"] == fields["targets"]
    assert user["spamLevel"] == 80
    assert user["fromWhitelist"] == fields["fromWhitelist"]
    assert user["tags"] == ["alpha", "Beta", "gamma"]  # trimmed, deduped, sorted, first case wins
    assert user["disabledScopes"] == ["pop3", "smtp"]
    assert user["metaData"] == {"plan": "gold", "n": 3}
    assert user["internalData"] == {"crm": 12}
    assert (user["encryptMessages"], user["encryptForwarded"]) == (False, False)
    assert user["featureFlags"] == {"indexing": True}

    limits = user["limits"]
    assert limits["quota"]["allowed"] == 1
    assert limits["recipients"]["allowed"] == 2
    assert limits["forwards"]["allowed"] == 3
    assert limits["filters"]["allowed"] == 4
    assert limits["imapUpload"]["allowed"] == 5
    assert limits["imapDownload"]["allowed"] == 6
    assert limits["pop3Download"]["allowed"] == 7
    assert limits["pop3MaxMessages"]["allowed"] == 8
    assert limits["imapMaxConnections"]["allowed"] == 9
    assert limits["received"]["allowed"] == 10

    stored = await runtime.repositories.users.get(user_id)
    assert stored is not None
    assert stored["tagsview"] == ["alpha", "beta", "gamma"]
    assert stored["uploadSentMessages"] is True
    assert isinstance(stored["metaData"], str)  # stored as JSON strings, as WildDuck does
    assert json.loads(stored["internalData"]) == {"crm": 12}
    assert "sess" not in stored and "ip" not in stored

    # the main address exists, carries the tags (addTagsToAddress) and resolves to the user
    status, body = await api.get(f"/users/resolve/{address}")
    assert (status, body.get("id")) == (200, user_id), body
    address_row = await runtime.repositories.addresses.find_one({"user": user_id})
    assert address_row is not None and address_row["address"] == address.lower()
    assert address_row["tags"] == ["alpha", "Beta", "gamma"]

    # the folders carry the names given (WildDuck loses them, reference 12.4)
    folders = await runtime.repositories.mailboxes.find({"user": user_id})
    assert {row["path"]: row.get("specialUse") for row in folders} == {
        "INBOX": None,
        "Saadetud": "\\Sent",
        "Prügi": "\\Trash",
        "Rämps": "\\Junk",
        "Mustandid": "\\Drafts",
    }

    # the account works with the password it was given
    status, body = await login(api, username, PASSWORD)
    assert status == 200, body


async def test_create_without_optional_flags(api: Api, runtime: Runtime) -> None:
    # emptyAddress: no main address at all
    user_id = await create(api, emptyAddress=True)
    user = await get_user(api, user_id)
    assert user["address"] == ""
    assert await runtime.repositories.addresses.count({"user": user_id}) == 0

    # an email-form username is its own address
    name = f"{uname()}@Example.NET"
    user_id = await create(api, username=name)
    user = await get_user(api, user_id)
    assert user["username"] == name.lower()
    assert user["address"] == name.lower()

    # no password at all (false and the empty string): nothing can log in
    for empty in (False, ""):
        username = uname()
        user_id = await create(api, username=username, password=empty)
        user = await get_user(api, user_id)
        assert user["hasPasswordSet"] is False
        status, body = await login(api, username, "anything at all")
        assert_error(status, body, 401, "AuthFailed")


@pytest.mark.parametrize(
    "username",
    [
        "a" * 128,
        "john.doe",
        "john_doe",
        "john=doe:x",
        "j-d",
        "0",
        "JOHNDOE",
        "john.doe@example.com",
    ],
)
async def test_valid_usernames(api: Api, username: str) -> None:
    # unique per run while keeping the shape under test
    suffix = uuid.uuid4().hex[:6]
    fields: dict[str, Any] = {}
    if username == "a" * 128:
        username = suffix + "a" * (128 - len(suffix))
        fields["emptyAddress"] = True  # 128 characters make no valid address (64 at most)
    elif "@" in username:
        local, _, domain = username.partition("@")
        username = f"{local}{suffix}@{domain}"
    else:
        username = f"{username}{suffix}"
    if ":" in username:
        fields["address"] = f"{suffix}@example.com"  # ":" can not appear in an address
    user_id = await create(api, username=username, **fields)
    assert (await get_user(api, user_id))["username"] == username.lower()


@pytest.mark.parametrize(
    "username",
    [
        "a" * 129,
        "",
        "bad name",
        "a..b",
        ".ab",
        "ab.",
        "a+b",
        "jüri",
        "a@",
        "@example.com",
        "a/b",
        "a*",
    ],
)
async def test_invalid_usernames(api: Api, username: str) -> None:
    total = await count_users(api)
    status, body = await api.post("/users", {"username": username, "password": PASSWORD})
    assert_error(status, body, 400, "InputValidationError")
    assert "username" in body["details"], body
    assert await count_users(api) == total


async def test_create_validation_errors(api: Api) -> None:
    base = {"username": uname(), "password": PASSWORD}
    cases: list[tuple[dict[str, Any], str]] = [
        ({"password": "x" * 257}, "password"),
        ({"password": 12345}, "password"),
        ({"name": "n" * 257}, "name"),
        ({"language": "x" * 21}, "language"),
        ({"spamLevel": 101}, "spamLevel"),
        ({"quota": -1}, "quota"),
        ({"receivedMax": "lots"}, "receivedMax"),
        ({"retention": -5}, "retention"),
        ({"disabledScopes": ["imap", "web"]}, "disabledScopes,1"),
        ({"targets": ["not a target"]}, "targets"),
        ({"address": "not-an-address"}, "address"),
        ({"address": "*@example.com"}, "address"),
        ({"metaData": [1, 2]}, "metaData"),
        ({"tags": [1]}, "tags,0"),
        ({"tags": ["x" * 129]}, "tags"),
        ({"encryptMessages": "maybe"}, "encryptMessages"),
        ({"pubKey": "not a key"}, "pubKey"),
        ({"mailboxes": {"sent": 1}}, "mailboxes,sent"),
        ({"unknownField": 1}, "unknownField"),
    ]
    total = await count_users(api)
    for extra, key in cases:
        status, body = await api.post("/users", {**base, **extra})
        assert_error(status, body, 400, "InputValidationError")
        assert key in body["details"], (extra, body)
    # a missing username or password is named too
    status, body = await api.post("/users", {"password": PASSWORD})
    assert_error(status, body, 400, "InputValidationError")
    assert body["details"] == {"username": '"username" is required'}
    status, body = await api.post("/users", {"username": uname()})
    assert_error(status, body, 400, "InputValidationError")
    assert "password" in body["details"]
    assert await count_users(api) == total


def _phc_b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode().rstrip("=")


def _pbkdf2(digest: str, password: str) -> str:
    salt = os.urandom(16)
    derived = hashlib.pbkdf2_hmac(digest, password.encode(), salt, 1000, 32)
    return f"$pbkdf2-{digest}$i=1000${_phc_b64(salt)}${_phc_b64(derived)}"


def _argon2(kind: argon2.Type, password: str) -> str:
    return argon2.PasswordHasher(time_cost=1, memory_cost=64, parallelism=1, type=kind).hash(
        password
    )


def _bcrypt(prefix: bytes, password: str) -> str:
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4, prefix=b"2b")).decode()
    return "$" + prefix.decode() + hashed[3:]


HASHERS = {
    "pbkdf2-sha1": lambda p: _pbkdf2("sha1", p),
    "pbkdf2-sha256": lambda p: _pbkdf2("sha256", p),
    "pbkdf2-sha512": lambda p: _pbkdf2("sha512", p),
    "bcrypt-2a": lambda p: _bcrypt(b"2a", p),
    "bcrypt-2b": lambda p: _bcrypt(b"2b", p),
    "bcrypt-2y": lambda p: _bcrypt(b"2y", p),
    "md5-crypt": lambda p: md5_crypt.hash(p),
    "sha256-crypt": lambda p: sha256_crypt.using(rounds=1000).hash(p),
    "sha512-crypt": lambda p: sha512_crypt.using(rounds=1000).hash(p),
    "argon2id": lambda p: _argon2(argon2.Type.ID, p),
    "argon2i": lambda p: _argon2(argon2.Type.I, p),
    "argon2d": lambda p: _argon2(argon2.Type.D, p),
    "des-crypt": lambda p: des_crypt.hash(p),
}


@pytest.mark.parametrize("scheme", sorted(HASHERS))
async def test_create_with_imported_hash(api: Api, runtime: Runtime, scheme: str) -> None:
    password = "secret12" if scheme == "des-crypt" else PASSWORD  # DES looks at 8 characters
    hashed = HASHERS[scheme](password)
    username = uname()
    user_id = await create(api, username=username, password=hashed, hashedPassword=True)
    stored = await runtime.repositories.users.get(user_id)
    assert stored is not None and stored["password"] == hashed  # kept as given
    status, body = await login(api, username, "x" + password)
    assert_error(status, body, 401, "AuthFailed")
    stored = await runtime.repositories.users.get(user_id)
    assert stored is not None and stored["password"] == hashed  # a failure upgrades nothing
    status, body = await login(api, username, password)
    assert status == 200, body
    assert body["requirePasswordChange"] is False
    # upgraded to argon2id after the successful login, and the new hash still works
    stored = await runtime.repositories.users.get(user_id)
    assert stored is not None and stored["password"].startswith("$argon2id$")
    assert stored["password"] != hashed
    status, body = await login(api, username, password)
    assert status == 200, body


async def test_create_with_unsupported_hash(api: Api) -> None:
    total = await count_users(api)
    for value in ("plaintext password", "$unknown$abc$def", "$2b$04$short", "$pbkdf2-md5$i=1$a$b"):
        status, body = await api.post(
            "/users", {"username": uname(), "password": value, "hashedPassword": True}
        )
        assert_error(status, body, 400, "InputValidationError")
        assert "password" in body["details"], body
    assert await count_users(api) == total


async def test_insecure_password_policy(api: Api) -> None:
    # allowUnsafe defaults to true: a weak password is accepted
    await create(api, password="password")
    # with allowUnsafe:false it is refused, and nothing is created
    username = uname()
    status, body = await api.post(
        "/users", {"username": username, "password": "password", "allowUnsafe": False}
    )
    assert_error(status, body, 400, "InsecurePasswordError")
    status, body = await api.get(f"/users/resolve/{username}")
    assert_error(status, body, 404, "UserNotFound")
    # a good password passes the check
    await create(api, password=PASSWORD, allowUnsafe=False)


async def test_require_password_change_on_create(api: Api) -> None:
    username = uname()
    user_id = await create(api, username=username, requirePasswordChange=True)
    user = await get_user(api, user_id)
    assert user["hasPasswordSet"] is True
    status, body = await login(api, username, PASSWORD)
    assert status == 200, body
    assert body["requirePasswordChange"] is True


async def test_metadata_forms(api: Api) -> None:
    user_id = await create(api, metaData=json.dumps({"a": [1, 2]}), internalData={"b": None})
    user = await get_user(api, user_id)
    assert user["metaData"] == {"a": [1, 2]}
    assert user["internalData"] == {"b": None}

    base = {"username": uname(), "password": PASSWORD}
    for field in ("metaData", "internalData"):
        for bad in ("not json", "[1,2]", '"text"', "123"):
            status, body = await api.post("/users", {**base, field: bad})
            assert_error(status, body, 400, "InputValidationError")
            assert body["details"] == {field: f"{field} value must be valid JSON object string"}
        # larger than 1 MiB once serialised
        status, body = await api.post("/users", {**base, field: {"x": "y" * (1024 * 1024)}})
        assert_error(status, body, 400, "InputValidationError")
        assert field in body["details"]
        # just under the limit is fine
        big = {"x": "y" * (1024 * 1024 - 20)}
        user_id = await create(api, **{field: big})
        status, body = await api.get(f"/users/{user_id}")
        assert body[field] == big


async def test_disabled_and_suspended_on_create(api: Api) -> None:
    for flag in ("disabled", "suspended"):
        username = uname()
        user_id = await create(api, username=username, **{flag: True})
        user = await get_user(api, user_id)
        assert user[flag] is True
        status, body = await login(api, username, PASSWORD)
        assert_error(status, body, 403, "UserDisabled")
        # a wrong password reveals nothing about the account's state
        status, body = await login(api, username, "wrong password")
        assert_error(status, body, 401, "AuthFailed")


async def test_duplicate_username(api: Api) -> None:
    username = uname("dup")
    await create(api, username=username)
    total = await count_users(api)
    for same in (username, username.upper(), f"{username[:3]}.{username[3:]}"):
        status, body = await api.post(
            "/users", {"username": same, "password": PASSWORD, "emptyAddress": True}
        )
        assert_error(status, body, 409, "UserExistsError")
    assert await count_users(api) == total


async def test_duplicate_address_creates_nothing(api: Api, runtime: Runtime) -> None:
    taken = f"{uname('taken')}@example.com"
    first = await create(api, address=taken)
    total = await count_users(api)
    username = uname("second")
    for variant in (taken, taken.upper(), taken.replace("taken", "t.aken", 1)):
        status, body = await api.post(
            "/users", {"username": username, "password": PASSWORD, "address": variant}
        )
        assert_error(status, body, 409, "AddressExistsError")
    # nothing half-made: the second user does not exist in any form
    assert await count_users(api) == total
    status, body = await api.get(f"/users/resolve/{username}")
    assert_error(status, body, 404, "UserNotFound")
    status, body = await api.get("/users", params={"query": username})
    assert (status, body["total"], body["results"]) == (200, 0, [])
    assert await runtime.repositories.users.find_one({"username": username}) is None
    # and the address still belongs to the first user
    status, body = await api.get(f"/users/resolve/{taken}")
    assert (status, body.get("id")) == (200, first)
    # the username is free for a retry with another address
    await create(api, username=username)


async def test_unusable_address_creates_nothing(api: Api, runtime: Runtime) -> None:
    total = await count_users(api)
    # folders that can not be made (two with one name) leave no user and no address behind
    username = uname()
    address = f"{username}@example.com"
    status, body = await api.post(
        "/users",
        {
            "username": username,
            "password": PASSWORD,
            "mailboxes": {"sent": "Same", "trash": "Same"},
        },
    )
    assert_error(status, body, 400, "InputValidationError")
    assert await runtime.repositories.users.find_one({"username": username}) is None
    assert await runtime.repositories.addresses.find_one({"address": address}) is None
    # a plus-label address is refused by the address rules; the user must not stay behind
    username = uname()
    status, body = await api.post(
        "/users", {"username": username, "password": PASSWORD, "address": "me+tag@example.com"}
    )
    assert_error(status, body, 400, "InputValidationError")
    assert "address" in body["details"], body
    assert await runtime.repositories.users.find_one({"username": username}) is None
    # a valid username that makes no valid address ("a:b@domain") without an explicit address
    username = f"a{uuid.uuid4().hex[:6]}:b"
    status, body = await api.post("/users", {"username": username, "password": PASSWORD})
    assert_error(status, body, 400, "InputValidationError")
    assert "address" in body["details"], body
    assert await runtime.repositories.users.find_one({"username": username}) is None
    assert await count_users(api) == total
    # the same username with an explicit address (or none) is fine
    await create(api, username=username, address=f"{uuid.uuid4().hex[:8]}@example.com")


# ------------------------------------------------------------------------------------ listing


async def test_paging_through_250_users(api: Api) -> None:
    tag = uuid.uuid4().hex[:10]
    created = set()
    for _ in range(250):
        created.add(await create(api, password=False, emptyAddress=True, tags=[tag]))

    # forwards, 25 at a time
    seen: list[str] = []
    cursors: list[str | bool] = []
    page, cursor = 1, None
    while True:
        params = {"tags": tag, "limit": "25", "page": str(page)}
        if cursor:
            params["next"] = cursor
        status, body = await api.get("/users", params=params)
        assert status == 200, body
        assert body["total"] == 250
        assert body["page"] == page
        assert len(body["results"]) == 25
        if page == 1:
            assert body["previousCursor"] is False
        else:
            assert isinstance(body["previousCursor"], str)
        seen.extend(row["id"] for row in body["results"])
        cursors.append(body["previousCursor"])
        cursor = body["nextCursor"]
        if cursor is False:
            break
        page += 1
    assert page == 10
    assert len(seen) == 250 and set(seen) == created  # no duplicates, no gaps
    assert seen == sorted(seen)  # ascending by id

    # backwards from the last page with previousCursor
    last_previous = cursors[-1]
    back: list[list[str]] = []
    cursor_back: str | bool = last_previous
    page = 9
    while cursor_back:
        status, body = await api.get(
            "/users",
            params={"tags": tag, "limit": "25", "previous": str(cursor_back), "page": str(page)},
        )
        assert status == 200, body
        assert body["total"] == 250
        assert len(body["results"]) == 25
        assert isinstance(body["nextCursor"], str)
        back.append([row["id"] for row in body["results"]])
        cursor_back = body["previousCursor"]
        page -= 1
    assert len(back) == 9
    flattened = [ident for chunk in reversed(back) for ident in chunk]
    assert flattened == seen[:225]

    # a nextCursor from a page reached backwards leads forward again without a gap
    status, body = await api.get(
        "/users",
        params={"tags": tag, "limit": "25", "previous": str(cursors[2]), "page": "3"},
    )
    assert [row["id"] for row in body["results"]] == seen[25:50]
    status, body = await api.get(
        "/users", params={"tags": tag, "limit": "25", "next": body["nextCursor"], "page": "3"}
    )
    assert [row["id"] for row in body["results"]] == seen[50:75]

    # the largest page in one go
    status, body = await api.get("/users", params={"tags": tag, "limit": "250"})
    assert (status, body["nextCursor"], body["previousCursor"]) == (200, False, False)
    assert [row["id"] for row in body["results"]] == seen


async def test_listing_filters(api: Api) -> None:
    marker = uuid.uuid4().hex[:8]
    alpha = await create(
        api,
        username=f"alpha{marker}",
        tags=[f"red{marker}", f"blue{marker}"],
        targets=[f"fwd{marker}@example.net"],
        metaData={"m": 1},
        internalData={"i": 2},
    )
    beta = await create(
        api,
        username=f"beta{marker}",
        address=f"other{marker}@example.org",
        tags=[f"Red{marker}"],
    )

    async def ids(**params: str) -> list[str]:
        status, body = await api.get("/users", params=params)
        assert status == 200, body
        assert body["total"] == len(body["results"])
        return [row["id"] for row in body["results"]]

    assert await ids(query=marker) == [alpha, beta]
    assert await ids(query=f"ALPHA{marker}") == [alpha]  # lowercased
    assert await ids(query=f"other{marker}@example") == [beta]  # address match
    assert await ids(query=f"{marker}.*") == []  # the query is text, not a regex
    assert await ids(tags=f"RED{marker}") == [alpha, beta]
    assert await ids(tags=f"blue{marker},nothing{marker}") == [alpha]
    assert await ids(requiredTags=f"red{marker},blue{marker}") == [alpha]
    assert await ids(requiredTags=f"red{marker}") == [alpha, beta]
    assert await ids(forward=f"fwd{marker}") == [alpha]
    assert await ids(query=marker, unknownKey="allowed") == [alpha, beta]

    status, body = await api.get("/users", params={"query": f"alpha{marker}"})
    assert body["query"] == f"alpha{marker}"
    (row,) = body["results"]
    assert set(row) == LISTING_KEYS
    assert row["quota"] == {"allowed": GIB, "used": 0}
    assert row["targets"] == [f"fwd{marker}@example.net"]
    assert row["tags"] == [f"blue{marker}", f"red{marker}"]
    status, body = await api.get(
        "/users", params={"query": f"alpha{marker}", "metaData": "true", "internalData": "yes"}
    )
    assert status == 200, body
    (row,) = body["results"]
    assert set(row) == LISTING_KEYS | {"metaData", "internalData"}
    assert (row["metaData"], row["internalData"]) == ({"m": 1}, {"i": 2})


async def test_listing_bad_parameters(api: Api) -> None:
    for params in (
        {"next": "!!not-a-cursor!!"},
        {"next": "abc"},
        {"next": base64.urlsafe_b64encode(b"[1, 2]").decode().rstrip("=")},
        {"previous": "zzzz", "page": "2"},
        {"next": "a" * 1025},
        {"limit": "0"},
        {"limit": "251"},
        {"limit": "ten"},
        {"page": "0"},
        {"query": "q" * 256},
        {"metaData": "perhaps"},
    ):
        status, body = await api.get("/users", params=params)
        assert_error(status, body, 400, "InputValidationError")
        assert set(body["details"]) & set(params), (params, body)


# ------------------------------------------------------------------------------------ reading


async def test_get_unknown_and_malformed_ids(api: Api) -> None:
    status, body = await api.get(f"/users/{'0' * 24}")
    assert_error(status, body, 404, "UserNotFound")
    for bad in ("123", "z" * 24, "0" * 25):
        status, body = await api.get(f"/users/{bad}")
        assert_error(status, body, 400, "InputValidationError")
        assert "user" in body["details"]
    # ids are case-insensitive hex, as in WildDuck
    user_id = await create(api)
    status, body = await api.get(f"/users/{user_id.upper()}")
    assert (status, body.get("id")) == (200, user_id)


async def test_resolve(api: Api) -> None:
    username = uname("res")
    address = f"{uname('addr')}@example.org"
    user_id = await create(api, username=username, address=address)
    for form in (
        username,
        username.upper(),
        f"{username[:2]}.{username[2:]}",
        address,
        address.upper(),
    ):
        status, body = await api.get(f"/users/resolve/{form}")
        assert (status, body) == (200, {"success": True, "id": user_id}), form
    for unknown in (uname("nobody"), f"{uname()}@example.org"):
        status, body = await api.get(f"/users/resolve/{unknown}")
        assert_error(status, body, 404, "UserNotFound")
    for malformed in ("bad%20name", "a..b", "x" * 256):
        status, body = await api.get(f"/users/resolve/{malformed}")
        assert_error(status, body, 400, "InputValidationError")
        assert "username" in body["details"]
    # an email-form username without any address resolves by its name
    name = f"{uname()}@elsewhere.example"
    user_id = await create(api, username=name, emptyAddress=True)
    status, body = await api.get(f"/users/resolve/{name}")
    assert (status, body.get("id")) == (200, user_id)


# ------------------------------------------------------------------------------------ updating


async def test_update_every_field_then_no_updates(api: Api, runtime: Runtime) -> None:
    user_id = await create(api)
    changes: dict[str, Any] = {
        "name": "New Name",
        "language": "de",
        "retention": 3600_000,
        "targets": ["elsewhere@example.net", "smtps://relay.example.net"],
        "spamLevel": 10,
        "fromWhitelist": ["*@partner.example"],
        "tags": ["Zeta", "eta", "zeta"],
        "uploadSentMessages": True,
        "disabledScopes": ["imap"],
        "metaData": {"k": "v"},
        "internalData": json.dumps({"secret": True}),
        "featureFlags": {"indexing": True},
        **{key: 1000 + index for index, key in enumerate(LIMIT_FIELDS)},
    }
    status, body = await api.put(f"/users/{user_id}", changes)
    assert (status, body) == (200, {"success": True}), body
    user = await get_user(api, user_id)
    assert user["name"] == "New Name"
    assert user["language"] == "de"
    assert user["retention"] == 3600_000
    assert user["targets"] == changes["targets"]
    assert user["spamLevel"] == 10
    assert user["fromWhitelist"] == ["*@partner.example"]
    assert user["tags"] == ["eta", "Zeta"]
    assert user["disabledScopes"] == ["imap"]
    assert user["metaData"] == {"k": "v"}
    assert user["internalData"] == {"secret": True}
    assert user["featureFlags"] == {"indexing": True}
    assert user["limits"]["quota"]["allowed"] == 1000
    assert user["limits"]["received"]["allowed"] == 1009
    assert user["limits"]["imapMaxConnections"]["allowed"] == 1008
    stored = await runtime.repositories.users.get(user_id)
    assert stored is not None and stored["uploadSentMessages"]
    assert stored["tagsview"] == ["eta", "zeta"]

    # the very same values again change nothing: NoUpdates, and nothing was written
    before = await runtime.repositories.users.get(user_id)
    status, body = await api.put(f"/users/{user_id}", changes)
    assert_error(status, body, 400, "NoUpdates")
    assert await runtime.repositories.users.get(user_id) == before
    # field by field, too
    for key, value in changes.items():
        status, body = await api.put(f"/users/{user_id}", {key: value})
        assert_error(status, body, 400, "NoUpdates")
    # an empty update and metaData given in the other form are no updates either
    status, body = await api.put(f"/users/{user_id}", {})
    assert_error(status, body, 400, "NoUpdates")
    status, body = await api.put(f"/users/{user_id}", {"metaData": '{"k": "v"}'})
    assert_error(status, body, 400, "NoUpdates")

    # nothing to disable: no 2FA is on
    status, body = await api.put(f"/users/{user_id}", {"disable2fa": True})
    assert_error(status, body, 400, "NoUpdates")

    # clearing works: empty name and key, empty lists
    status, body = await api.put(
        f"/users/{user_id}",
        {"name": "", "pubKey": "", "targets": [], "tags": [], "disabledScopes": []},
    )
    assert status == 200, body
    user = await get_user(api, user_id)
    assert (user["name"], user["pubKey"], user["targets"], user["tags"]) == ("", "", [], [])
    assert user["disabledScopes"] == []


async def test_update_errors(api: Api) -> None:
    user_id = await create(api)
    status, body = await api.put(f"/users/{'0' * 24}", {"name": "x"})
    assert_error(status, body, 404, "UserNotFound")
    status, body = await api.put("/users/nope", {"name": "x"})
    assert_error(status, body, 400, "InputValidationError")
    for bad, key in (
        ({"username": "renamed"}, "username"),
        ({"spamLevel": -1}, "spamLevel"),
        ({"metaData": "nope"}, "metaData"),
        ({"targets": ["nope"]}, "targets"),
        ({"existingPassword": ""}, "existingPassword"),
        ({"pubKey": "-----BEGIN PGP PRIVATE KEY BLOCK-----"}, "pubKey"),
        ({"password": "$nope$", "hashedPassword": True}, "password"),
    ):
        status, body = await api.put(f"/users/{user_id}", bad)
        assert_error(status, body, 400, "InputValidationError")
        assert key in body["details"], (bad, body)
    status, body = await api.put(
        f"/users/{user_id}", {"password": "password", "allowUnsafe": False}
    )
    assert_error(status, body, 400, "InsecurePasswordError")


async def test_password_change_with_existing_password(api: Api, runtime: Runtime) -> None:
    username = uname()
    user_id = await create(api, username=username)
    stored_before = await runtime.repositories.users.get(user_id)
    assert stored_before is not None

    status, body = await api.put(
        f"/users/{user_id}", {"password": "next password 1", "existingPassword": "wrong one"}
    )
    assert_error(status, body, 401, "AuthFail")
    assert (await login(api, username, PASSWORD))[0] == 200  # unchanged

    status, body = await api.put(
        f"/users/{user_id}", {"password": "next password 1", "existingPassword": PASSWORD}
    )
    assert status == 200, body
    assert (await login(api, username, "next password 1"))[0] == 200
    status, body = await login(api, username, PASSWORD)
    assert_error(status, body, 401, "AuthFailed")
    stored = await runtime.repositories.users.get(user_id)
    assert stored is not None
    assert stored["authVersion"] == stored_before["authVersion"] + 1
    assert stored["oldPasswords"][-1]["hash"] == stored_before["password"]
    assert isinstance(stored["oldPasswords"][-1]["date"], datetime)

    # existingPassword alone: checked, and nothing else to do
    status, body = await api.put(f"/users/{user_id}", {"existingPassword": "wrong"})
    assert_error(status, body, 401, "AuthFail")
    status, body = await api.put(f"/users/{user_id}", {"existingPassword": "next password 1"})
    assert_error(status, body, 400, "NoUpdates")

    # an imported hash on update, then clearing the password altogether
    status, body = await api.put(
        f"/users/{user_id}", {"password": md5_crypt.hash("from md5"), "hashedPassword": True}
    )
    assert status == 200, body
    assert (await login(api, username, "from md5"))[0] == 200
    status, body = await api.put(f"/users/{user_id}", {"password": False})
    assert status == 200, body
    assert (await get_user(api, user_id))["hasPasswordSet"] is False
    assert_error(*(await login(api, username, "from md5")), 401, "AuthFailed")


async def test_changing_a_limit_resets_its_counter(api: Api, runtime: Runtime) -> None:
    user_id = await create(api)
    counters = runtime.counters
    await counters.limited_increment(f"wdr:{user_id}", 7, 0, 86400)
    await counters.limited_increment(f"wdf:{user_id}", 3, 0, 86400)
    await counters.limited_increment(f"iup:{user_id}", 5, 0, 86400)
    limits = (await get_user(api, user_id))["limits"]
    assert limits["recipients"]["used"] == 7
    assert isinstance(limits["recipients"]["ttl"], int) and limits["recipients"]["ttl"] > 0
    assert limits["forwards"]["used"] == 3
    assert limits["imapUpload"]["used"] == 5

    status, body = await api.put(f"/users/{user_id}", {"recipients": 100})
    assert status == 200, body
    limits = (await get_user(api, user_id))["limits"]
    assert limits["recipients"] == {"allowed": 100, "used": 0, "ttl": False}
    assert limits["forwards"]["used"] == 3  # other counters untouched
    assert limits["imapUpload"]["used"] == 5

    status, body = await api.put(f"/users/{user_id}", {"imapMaxUpload": 1 << 30})
    assert status == 200, body
    limits = (await get_user(api, user_id))["limits"]
    assert limits["imapUpload"] == {"allowed": 1 << 30, "used": 0, "ttl": False}
    assert limits["forwards"]["used"] == 3


# ------------------------------------------------------------------------------ other user routes


async def test_logout(api: Api) -> None:
    user_id = await create(api)
    status, body = await api.put(f"/users/{user_id}/logout", {"reason": "maintenance"})
    assert (status, body) == (200, {"success": True})
    status, body = await api.put(f"/users/{user_id}/logout")
    assert status == 200, body
    status, body = await api.put(f"/users/{'0' * 24}/logout", {})
    assert_error(status, body, 404, "UserNotFound")
    status, body = await api.put(f"/users/{user_id}/logout", {"reason": "r" * 129})
    assert_error(status, body, 400, "InputValidationError")


async def test_password_reset(api: Api, runtime: Runtime) -> None:
    username = uname()
    user_id = await create(api, username=username)
    status, body = await api.post(f"/users/{user_id}/password/reset", {})
    assert status == 200, body
    assert set(body) == {"success", "password", "validAfter"}
    temporary = body["password"]
    assert len(temporary) == 12 and temporary.isalnum()
    datetime.fromisoformat(body["validAfter"].replace("Z", "+00:00"))

    status, body = await login(api, username, temporary)
    assert status == 200, body
    assert body["requirePasswordChange"] is True
    status, body = await login(api, username, PASSWORD)  # the main password still works
    assert status == 200, body
    assert body["requirePasswordChange"] is False

    # a temporary password older than its 24 hour window no longer works
    stored = await runtime.repositories.users.get(user_id)
    assert stored is not None
    old = datetime.now(UTC) - timedelta(hours=25)
    temp = {**stored["tempPassword"], "validAfter": old, "created": old}
    await runtime.repositories.users.update_one({"_id": user_id}, {"$set": {"tempPassword": temp}})
    assert_error(*(await login(api, username, temporary)), 401, "AuthFailed")

    # a temporary password that is not valid yet
    later = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    status, body = await api.post(f"/users/{user_id}/password/reset", {"validAfter": later})
    assert status == 200, body
    status, answer = await login(api, username, body["password"])
    assert_error(status, answer, 401, "TempPasswordNotYetValid")

    # setting a real password drops the temporary one
    status, body = await api.post(f"/users/{user_id}/password/reset")
    temporary = body["password"]
    status, body = await api.put(f"/users/{user_id}", {"password": "brand new pass"})
    assert status == 200, body
    assert_error(*(await login(api, username, temporary)), 401, "AuthFailed")

    status, body = await api.post(f"/users/{'0' * 24}/password/reset")
    assert_error(status, body, 404, "UserNotFound")


async def test_quota_reset(api: Api, runtime: Runtime) -> None:
    user_id = await create(api)
    await runtime.repositories.users.update_one({"_id": user_id}, {"$set": {"storageUsed": 12345}})
    assert (await get_user(api, user_id))["limits"]["quota"]["used"] == 12345
    status, body = await api.post(f"/users/{user_id}/quota/reset")
    assert (status, body) == (
        200,
        {"success": True, "storageUsed": 0, "previousStorageUsed": 12345},
    )
    assert (await get_user(api, user_id))["limits"]["quota"]["used"] == 0
    status, body = await api.post(f"/users/{'0' * 24}/quota/reset")
    assert_error(status, body, 404, "UserNotFound")


async def test_delete_and_restore(api: Api, runtime: Runtime) -> None:
    username = uname("gone")
    address = f"{uname('main')}@example.org"
    user_id = await create(api, username=username, address=address, tags=["Keep"])
    status, body = await api.post("/authenticate", {"username": username, "password": PASSWORD})
    assert status == 200

    status, body = await api.delete(f"/users/{user_id}")
    assert status == 200, body
    assert body["code"] == "TaskScheduled"
    assert body["user"] == user_id
    assert body["addresses"] == {"deleted": 1}
    assert isinstance(body["deleteAfter"], str)

    status, body = await api.get(f"/users/{user_id}")
    assert_error(status, body, 404, "UserNotFound")
    for form in (username, address):
        status, body = await api.get(f"/users/resolve/{form}")
        assert_error(status, body, 404, "UserNotFound")
    assert_error(*(await login(api, username, PASSWORD)), 401, "AuthFailed")
    status, body = await api.delete(f"/users/{user_id}")  # already gone
    assert_error(status, body, 404, "UserNotFound")

    status, body = await api.get(f"/users/{user_id}/restore")
    assert status == 200, body
    assert body["user"] == user_id
    assert body["username"] == username
    assert body["tags"] == ["Keep"]
    assert body["recoverableAddresses"] == [address]
    assert isinstance(body["deleted"], str)

    status, body = await api.post(f"/users/{user_id}/restore")
    assert status == 200, body
    assert body["user"] == user_id
    assert body["addresses"] == {"recovered": 1, "main": address}
    user = await get_user(api, user_id)
    assert (user["username"], user["address"], user["tags"]) == (username, address, ["Keep"])
    status, body = await api.get(f"/users/resolve/{address}")
    assert (status, body.get("id")) == (200, user_id)
    assert (await login(api, username, PASSWORD))[0] == 200

    # restoring again: the account is there already
    status, body = await api.post(f"/users/{user_id}/restore")
    assert_error(status, body, 409, "AccountFound")
    status, body = await api.get(f"/users/{user_id}/restore")
    assert_error(status, body, 404, "AccountNotFound")


async def test_delete_after(api: Api) -> None:
    user_id = await create(api)
    status, body = await api.delete(
        f"/users/{user_id}", params={"deleteAfter": "2031-02-03T04:05:06Z"}
    )
    assert status == 200, body
    assert body["deleteAfter"] == "2031-02-03T04:05:06.000Z"
    status, body = await api.get(f"/users/{user_id}/restore")
    assert status == 200, body
    user_id = await create(api)
    status, body = await api.delete(f"/users/{user_id}", {"deleteAfter": False})
    assert status == 200, body
    status, body = await api.delete(f"/users/{'1' * 24}", params={"deleteAfter": "someday"})
    assert_error(status, body, 400, "InputValidationError")
    assert "deleteAfter" in body["details"]


async def test_restore_never_deleted(api: Api) -> None:
    unknown = "0" * 23 + "1"
    status, body = await api.get(f"/users/{unknown}/restore")
    assert_error(status, body, 404, "AccountNotFound")
    status, body = await api.post(f"/users/{unknown}/restore")
    assert_error(status, body, 404, "AccountNotFound")
    status, body = await api.delete(f"/users/{unknown}")
    assert_error(status, body, 404, "UserNotFound")


async def test_restore_skips_addresses_taken_meanwhile(api: Api) -> None:
    address = f"{uname('contested')}@example.org"
    user_id = await create(api, address=address)
    status, body = await api.delete(f"/users/{user_id}")
    assert status == 200, body
    other = await create(api, address=address)  # the address is free again and taken
    status, body = await api.post(f"/users/{user_id}/restore")
    assert status == 200, body
    assert body["addresses"] == {"recovered": 0, "main": ""}
    assert (await get_user(api, user_id))["address"] == ""
    status, body = await api.get(f"/users/resolve/{address}")
    assert (status, body.get("id")) == (200, other)


# ------------------------------------------------------------------------------------ the envelope


async def test_error_envelope_and_request_id(api: Api) -> None:
    response = await api.client.get(
        f"/users/{'0' * 24}",
        headers={"X-Access-Token": api.token or "", "X-Request-Id": "trace-123.abc"},
    )
    body = await response.json()
    assert response.status == 404
    assert response.headers["X-Request-Id"] == "trace-123.abc"
    assert response.headers["Content-Type"].startswith("application/json")
    assert set(body) == {"success", "error", "code", "requestId"}
    assert body == {
        "success": False,
        "error": "This user does not exist",
        "code": "UserNotFound",
        "requestId": "trace-123.abc",
    }

    # validation errors carry details; a generated id when none (or a bad one) was sent
    response = await api.client.post(
        "/users",
        json={"username": "bad name", "password": "x"},
        headers={"X-Access-Token": api.token or "", "X-Request-Id": "bad id with spaces"},
    )
    body = await response.json()
    assert response.status == 400
    assert set(body) == {"success", "error", "code", "details", "requestId"}
    generated = response.headers["X-Request-Id"]
    assert generated != "bad id with spaces" and body["requestId"] == generated
    assert isinstance(body["details"]["username"], str)

    # successes carry the header too
    response = await api.client.get(
        "/users", headers={"X-Access-Token": api.token or "", "X-Request-Id": "ok-1"}
    )
    assert response.status == 200
    assert response.headers["X-Request-Id"] == "ok-1"

    # bad JSON, wrong method
    response = await api.client.post(
        "/users",
        data=b"{not json",
        headers={"X-Access-Token": api.token or "", "Content-Type": "application/json"},
    )
    body = await response.json()
    assert response.status == 400 and body["success"] is False
    assert body["requestId"] == response.headers["X-Request-Id"]
    status, body = await api.call("PATCH", "/users")
    assert_error(status, body, 405, "MethodNotAllowed")
