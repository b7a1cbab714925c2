"""End-to-end tests of authentication, access tokens and roles over real HTTP (reference 2, 5.2).

Expiry and rate-limit windows are exercised by rewriting the stored token documents and counters,
never by waiting.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest_asyncio
from conftest import ROOT_TOKEN, Api, assert_error, make_config
from passlib.hash import sha512_crypt

from wildpy.app import create_app
from wildpy.runtime import Runtime, open_runtime
from wildpy.services.account_records import TokenUser
from wildpy.services.auth import Login, LoginOutcome

PASSWORD = "correct horse battery 42"
TOKEN_RE = re.compile(r"^[0-9a-f]{40}$")


def uname(prefix: str = "a") -> str:
    return f"{prefix}{uuid.uuid4().hex[:12]}"


async def create(api: Api, **fields: Any) -> tuple[str, str]:
    """A new user: (id, username)."""
    username = fields.pop("username", None) or uname()
    status, body = await api.post("/users", {"username": username, "password": PASSWORD, **fields})
    assert status == 200, body
    return str(body["id"]), username


async def login(api: Api, username: str, password: str = PASSWORD, **extra: Any) -> Any:
    return await api.post("/authenticate", {"username": username, "password": password, **extra})


async def user_token(api: Api, username: str, password: str = PASSWORD) -> str:
    status, body = await login(api, username, password, token=True)
    assert status == 200, body
    return str(body["token"])


def without_request_id(body: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in body.items() if key != "requestId"}


# ------------------------------------------------------------------------------------ /authenticate


async def test_authenticate_response_shape(api: Api) -> None:
    user_id, username = await create(api, address=f"{uname('main')}@example.org")
    status, body = await login(api, username)
    assert status == 200, body
    user = (await api.get(f"/users/{user_id}"))[1]
    assert body == {
        "success": True,
        "id": user_id,
        "username": username,
        "address": user["address"],
        "scope": "master",
        "require2fa": False,
        "require2faEnabled": False,
        "requirePasswordChange": False,
    }
    # by address, with another case, with dots: the same account
    for form in (user["address"], user["address"].upper(), username.upper()):
        status, other = await login(api, form)
        assert (status, other.get("id")) == (200, user_id), form
    # the scopes of the protocols, and a protocol name for the log
    for scope in ("imap", "pop3", "smtp"):
        status, other = await login(api, username, scope=scope, protocol="IMAP")
        assert (status, other.get("scope")) == (200, scope)


async def test_login_is_a_typed_record_for_every_door(api: Api, runtime: Runtime) -> None:
    """The service says who logged in as records; WildDuck's JSON is the REST handler's."""
    user_id, username = await create(api)
    address = f"{username}@example.com"
    assert await runtime.auth.preauth(username, "master") == Login(
        id=user_id, username=username, address=address, scope="master", require_2fa=[]
    )
    result = await runtime.auth.authenticate(username, PASSWORD, "imap")
    assert runtime.auth.outcome(result) == LoginOutcome(
        id=user_id,
        username=username,
        address=address,
        scope="imap",
        require_2fa=[],
        require_2fa_enabled=False,
        require_password_change=False,
    )
    identity = await runtime.tokens.identify(await user_token(api, username))
    assert identity is not None and identity.token_user == TokenUser(user_id, False, {})


async def test_preauth(api: Api) -> None:
    user_id, username = await create(api, disabledScopes=["pop3"])
    status, body = await api.post("/preauth", {"username": username})
    assert (status, body) == (
        200,
        {
            "success": True,
            "id": user_id,
            "username": username,
            "address": f"{username}@example.com",
            "scope": "master",
            "require2fa": False,
        },
    )
    assert_error(
        *(await api.post("/preauth", {"username": username, "scope": "pop3"})),
        403,
        "InvalidAuthScope",
    )
    assert_error(*(await api.post("/preauth", {"username": uname()})), 401, "AuthFailed")
    assert (await api.put(f"/users/{user_id}", {"disabled": True}))[0] == 200
    assert_error(*(await api.post("/preauth", {"username": username})), 401, "AuthFailed")


async def test_email_form_username_without_address(api: Api) -> None:
    name = f"{uname()}@elsewhere.example"
    user_id, _ = await create(api, username=name, emptyAddress=True)
    status, body = await login(api, name.upper())
    assert (status, body.get("id"), body.get("address")) == (200, user_id, "")


async def test_wrong_password_and_unknown_user_answer_alike(api: Api) -> None:
    _, username = await create(api)
    status_wrong, wrong = await login(api, username, "not the password")
    status_unknown, unknown = await login(api, uname("nobody"), "not the password")
    status_unknown_address, unknown_address = await login(
        api, f"{uname()}@example.com", "not the password"
    )
    assert_error(status_wrong, wrong, 401, "AuthFailed")
    assert status_wrong == status_unknown == status_unknown_address
    assert without_request_id(wrong) == without_request_id(unknown)
    assert without_request_id(wrong) == without_request_id(unknown_address)
    assert "id" not in wrong and "details" not in wrong


async def test_authenticate_validation(api: Api) -> None:
    for body, key in (
        ({"password": PASSWORD}, "username"),
        ({"username": "x"}, "password"),
        ({"username": "x", "password": ""}, "password"),
        ({"username": "x", "password": "p" * 257}, "password"),
        ({"username": "x", "password": "p", "scope": "web"}, "scope"),
        ({"username": "x", "password": "p", "token": "maybe"}, "token"),
        ({"username": "x", "password": "p", "extra": 1}, "extra"),
    ):
        status, answer = await api.post("/authenticate", body)
        assert_error(status, answer, 400, "InputValidationError")
        assert key in answer["details"], (body, answer)
    # tokens only for the master scope
    _, username = await create(api)
    status, body = await login(api, username, scope="imap", token=True)
    assert_error(status, body, 400, "InputValidationError")
    assert "token" in body["details"]


async def test_disabled_and_suspended_accounts(api: Api) -> None:
    for flag in ("disabled", "suspended"):
        user_id, username = await create(api)
        status, body = await api.put(f"/users/{user_id}", {flag: True})
        assert status == 200, body
        assert_error(*(await login(api, username)), 403, "UserDisabled")
        assert_error(*(await login(api, username, token=True)), 403, "UserDisabled")
        # the wrong password does not tell that the account exists but is locked
        assert_error(*(await login(api, username, "wrong password")), 401, "AuthFailed")
        status, body = await api.put(f"/users/{user_id}", {flag: False})
        assert status == 200, body
        assert (await login(api, username))[0] == 200


async def test_disabled_scopes(api: Api) -> None:
    user_id, username = await create(api, disabledScopes=["imap", "smtp"])
    for scope in ("imap", "smtp"):
        assert_error(*(await login(api, username, scope=scope)), 403, "InvalidAuthScope")
    assert (await login(api, username, scope="pop3"))[0] == 200
    assert (await login(api, username, scope="master"))[0] == 200
    # a wrong password in a disabled scope is just a failed login
    assert_error(*(await login(api, username, "wrong", scope="imap")), 401, "AuthFailed")
    status, body = await api.put(f"/users/{user_id}", {"disabledScopes": []})
    assert status == 200, body
    assert (await login(api, username, scope="imap"))[0] == 200


async def test_rate_limit_after_twelve_failures(api: Api, runtime: Runtime) -> None:
    _, username = await create(api)
    for _ in range(12):
        assert_error(*(await login(api, username, "wrong password")), 401, "AuthFailed")
    response = await api.client.post(
        "/authenticate",
        json={"username": username, "password": PASSWORD},  # even the right one
        headers={"X-Access-Token": ROOT_TOKEN},
    )
    body = await response.json()
    assert_error(response.status, body, 429, "RateLimitedError")
    assert body["details"]["limit"] == 12
    retry_after = body["details"]["retry_after"]
    assert isinstance(retry_after, int) and 0 < retry_after <= 120
    assert response.headers["Retry-After"] == str(retry_after)
    # other accounts are not affected
    _, other = await create(api)
    assert (await login(api, other))[0] == 200
    # the window ends (simulated by dropping the counter): logins work again
    await runtime.counters.delete(f"auth:{username}")
    assert (await login(api, username))[0] == 200


async def test_rate_limit_headers_and_no_account_enumeration(api: Api) -> None:
    """Unknown names are limited exactly like real ones, and every answer says where it stands."""
    _, username = await create(api)
    for name in (username, "nobody-by-this-name"):
        seen = []
        for _ in range(12):
            response = await api.client.post(
                "/authenticate",
                json={"username": name, "password": "wrong password"},
                headers={"X-Access-Token": ROOT_TOKEN},
            )
            assert response.status == 401
            assert response.headers["X-RateLimit-Limit"] == "12"
            seen.append(int(response.headers["X-RateLimit-Remaining"]))
            assert 0 < int(response.headers["X-RateLimit-Reset"]) <= 120
        assert seen == list(range(11, -1, -1))
        response = await api.client.post(
            "/authenticate",
            json={"username": name, "password": PASSWORD},
            headers={"X-Access-Token": ROOT_TOKEN},
        )
        assert response.status == 429
        assert response.headers["X-RateLimit-Remaining"] == "0"
    _, fresh = await create(api)
    response = await api.client.post(
        "/authenticate",
        json={"username": fresh, "password": PASSWORD},
        headers={"X-Access-Token": ROOT_TOKEN},
    )
    assert response.status == 200
    assert response.headers["X-RateLimit-Remaining"] == "12"


async def test_successful_login_clears_failures(api: Api) -> None:
    _, username = await create(api)
    for _ in range(11):
        assert_error(*(await login(api, username, "wrong")), 401, "AuthFailed")
    assert (await login(api, username))[0] == 200
    for _ in range(12):
        assert_error(*(await login(api, username, "wrong")), 401, "AuthFailed")
    assert_error(*(await login(api, username)), 429, "RateLimitedError")


async def test_imported_hash_is_upgraded_on_login(api: Api, runtime: Runtime) -> None:
    imported = sha512_crypt.using(rounds=1000).hash(PASSWORD)
    user_id, username = await create(api, password=imported, hashedPassword=True)
    assert_error(*(await login(api, username, "wrong")), 401, "AuthFailed")
    stored = await runtime.repositories.users.get(user_id)
    assert stored is not None and stored["password"] == imported
    assert (await login(api, username))[0] == 200
    stored = await runtime.repositories.users.get(user_id)
    assert stored is not None and stored["password"].startswith("$argon2id$")
    upgraded = stored["password"]
    assert (await login(api, username))[0] == 200
    stored = await runtime.repositories.users.get(user_id)
    assert stored is not None and stored["password"] == upgraded  # current hashes stay


async def test_temporary_password_is_not_upgraded_into_the_main_one(
    api: Api, runtime: Runtime
) -> None:
    imported = sha512_crypt.using(rounds=1000).hash(PASSWORD)
    user_id, username = await create(api, password=imported, hashedPassword=True)
    status, body = await api.post(f"/users/{user_id}/password/reset")
    assert status == 200, body
    status, answer = await login(api, username, body["password"])
    assert (status, answer["requirePasswordChange"]) == (200, True)
    stored = await runtime.repositories.users.get(user_id)
    assert stored is not None and stored["password"] == imported
    assert (await login(api, username))[0] == 200


# ------------------------------------------------------------------------------------ tokens


async def test_user_token_transports(api: Api, runtime: Runtime) -> None:
    user_id, username = await create(api)
    status, body = await login(api, username, token=True)
    assert status == 200, body
    token = body["token"]
    assert TOKEN_RE.match(token)
    assert set(body) == {
        "success",
        "id",
        "username",
        "address",
        "scope",
        "require2fa",
        "require2faEnabled",
        "requirePasswordChange",
        "token",
    }

    client = api.client
    for kwargs in (
        {"headers": {"X-Access-Token": token}},
        {"headers": {"Authorization": f"Bearer {token}"}},
        {"headers": {"Authorization": f"bearer {token}"}},
        {"params": {"accessToken": token}},
    ):
        response = await client.get("/users/me", **kwargs)  # type: ignore[arg-type]
        answer = await response.json()
        assert (response.status, answer.get("id")) == (200, user_id), (kwargs, answer)
        response = await client.get(f"/users/{user_id}", **kwargs)  # type: ignore[arg-type]
        assert response.status == 200

    # stored hashed: nothing in the collection holds the token itself
    records = await runtime.repositories.tokens.find({"user": user_id})
    assert [record["_id"] for record in records] == [hashlib.sha256(token.encode()).hexdigest()]
    assert token not in json.dumps(records, default=str)
    assert records[0]["role"] == "user"

    # /users/me means nothing to the root token
    status, body = await api.get("/users/me")
    assert_error(status, body, 400, "InputValidationError")

    # DELETE /authenticate drops exactly the token used
    other = await user_token(api, username)
    status, body = await api.as_token(token).delete("/authenticate")
    assert (status, body) == (200, {"success": True})
    assert_error(*(await api.as_token(token).get("/users/me")), 401, "InvalidToken")
    assert_error(*(await api.as_token(token).delete("/authenticate")), 401, "InvalidToken")
    assert (await api.as_token(other).get("/users/me"))[0] == 200
    # the root token has nothing to drop and stays valid
    assert (await api.delete("/authenticate"))[0] == 200
    assert (await api.get(f"/users/{user_id}"))[0] == 200


async def test_bad_tokens(api: Api, runtime: Runtime) -> None:
    user_id, username = await create(api)
    token = await user_token(api, username)
    for bad in ("", "short", token.upper(), token[:-1] + ("0" if token[-1] != "0" else "1")):
        status, body = await api.as_token(bad or None).get(f"/users/{user_id}")
        assert_error(status, body, 401, "InvalidToken")
    # a token of a role the roles file does not know
    ghost = await runtime.tokens.provision("ghost-role", "someone")
    assert_error(*(await api.as_token(ghost).get("/users")), 401, "InvalidToken")
    # the token of a deleted user dies with it
    assert (await api.delete(f"/users/{user_id}"))[0] == 200
    assert_error(*(await api.as_token(token).get("/users/me")), 401, "InvalidToken")


async def test_password_change_keeps_only_the_changing_token(api: Api, runtime: Runtime) -> None:
    user_id, username = await create(api)
    changer = await user_token(api, username)
    bystander = await user_token(api, username)
    as_user = api.as_token(changer)

    status, body = await as_user.put(
        "/users/me", {"password": "the new password", "existingPassword": "wrong"}
    )
    assert_error(status, body, 401, "AuthFail")
    assert (await api.as_token(bystander).get("/users/me"))[0] == 200  # nothing changed yet

    status, body = await as_user.put(
        "/users/me", {"password": "the new password", "existingPassword": PASSWORD}
    )
    assert status == 200, body
    assert (await as_user.get("/users/me"))[0] == 200
    assert_error(*(await api.as_token(bystander).get("/users/me")), 401, "InvalidToken")
    assert (await login(api, username, "the new password"))[0] == 200

    # a change made by an administrator logs every token out
    status, body = await api.put(f"/users/{user_id}", {"password": "admin set it"})
    assert status == 200, body
    assert_error(*(await as_user.get("/users/me")), 401, "InvalidToken")
    stored = await runtime.repositories.users.get(user_id)
    assert stored is not None and stored["authVersion"] == 3


async def test_suspension_and_disabling_with_tokens(api: Api) -> None:
    user_id, username = await create(api)
    token = await user_token(api, username)
    as_user = api.as_token(token)

    # disabled: the token is known but refused while the account is disabled
    assert (await api.put(f"/users/{user_id}", {"disabled": True}))[0] == 200
    assert_error(*(await as_user.get("/users/me")), 403, "UserDisabled")
    assert_error(*(await as_user.put("/users/me", {"name": "x"})), 403, "UserDisabled")
    assert (await api.put(f"/users/{user_id}", {"disabled": False}))[0] == 200
    assert (await as_user.get("/users/me"))[0] == 200

    # suspended: every token is invalidated for good, lifting it does not revive them
    assert (await api.put(f"/users/{user_id}", {"suspended": True}))[0] == 200
    assert_error(*(await as_user.get("/users/me")), 401, "InvalidToken")
    assert (await api.put(f"/users/{user_id}", {"suspended": False}))[0] == 200
    assert_error(*(await as_user.get("/users/me")), 401, "InvalidToken")
    assert (await api.as_token(await user_token(api, username)).get("/users/me"))[0] == 200


async def test_token_expiry_with_stored_times(api: Api, runtime: Runtime) -> None:
    """With the default TTL: an expired token, and one past its lifetime, are refused and gone."""
    _, username = await create(api)
    tokens = runtime.repositories.tokens
    now = int(time.time())

    token = await user_token(api, username)
    key = hashlib.sha256(token.encode()).hexdigest()
    record = await tokens.get(key)
    assert record is not None
    assert abs(record["expires"] - (now + runtime.config.api.token_ttl)) <= 5
    assert abs(record["lifetimeEnd"] - (now + runtime.config.api.token_lifetime)) <= 5
    await tokens.update_one({"_id": key}, {"$set": {"expires": now - 1}})
    assert_error(*(await api.as_token(token).get("/users/me")), 401, "InvalidToken")
    assert await tokens.get(key) is None

    token = await user_token(api, username)
    key = hashlib.sha256(token.encode()).hexdigest()
    await tokens.update_one({"_id": key}, {"$set": {"lifetimeEnd": now - 1}})
    assert_error(*(await api.as_token(token).get("/users/me")), 401, "InvalidToken")
    assert await tokens.get(key) is None


@pytest_asyncio.fixture(loop_scope="session")
async def short_lived(aiohttp_client: Any, mongo_uri: str, tmp_path: Path) -> AsyncIterator[Any]:
    """A second app whose user tokens live 60 s (sliding) and 120 s at most."""
    config = make_config(mongo_uri, tmp_path, api={"tokenTTL": 60, "tokenLifetime": 120})
    async with open_runtime(config) as rt:
        try:
            yield Api(await aiohttp_client(create_app(config, runtime=rt))), rt
        finally:
            await rt.database.drop_all()


async def test_token_ttl_slides_up_to_the_lifetime(short_lived: tuple[Api, Runtime]) -> None:
    api, rt = short_lived
    _, username = await create(api)
    tokens = rt.repositories.tokens
    token = await user_token(api, username)
    as_user = api.as_token(token)
    key = hashlib.sha256(token.encode()).hexdigest()
    now = int(time.time())
    record = await tokens.get(key)
    assert record is not None
    assert now + 55 <= record["expires"] <= now + 65
    assert now + 115 <= record["lifetimeEnd"] <= now + 125

    # half the TTL left: a use slides it back to a full TTL
    await tokens.update_one({"_id": key}, {"$set": {"expires": now + 30}})
    assert (await as_user.get("/users/me"))[0] == 200
    record = await tokens.get(key)
    assert record is not None and record["expires"] >= now + 55
    assert (await as_user.get("/users/me"))[0] == 200  # and it keeps working after the slide

    # never beyond the lifetime
    await tokens.update_one({"_id": key}, {"$set": {"expires": now + 10, "lifetimeEnd": now + 40}})
    assert (await as_user.get("/users/me"))[0] == 200
    record = await tokens.get(key)
    assert record is not None and record["expires"] == now + 40

    # expired: refused, removed
    await tokens.update_one({"_id": key}, {"$set": {"expires": now - 5}})
    assert_error(*(await as_user.get("/users/me")), 401, "InvalidToken")
    assert await tokens.get(key) is None

    # the janitor's purge removes expired tokens that are never used again
    stale = await user_token(api, username)
    fresh = await user_token(api, username)
    stale_key = hashlib.sha256(stale.encode()).hexdigest()
    await tokens.update_one({"_id": stale_key}, {"$set": {"expires": now - 5}})
    assert await rt.tokens.purge_expired() >= 1
    assert await tokens.get(stale_key) is None
    assert (await api.as_token(fresh).get("/users/me"))[0] == 200


# ------------------------------------------------------------------------------------ roles


async def test_user_token_on_itself_and_others(api: Api, runtime: Runtime) -> None:
    user_id, username = await create(
        api, tags=["vip"], internalData={"crm": 1}, metaData={"m": 1}, disabledScopes=["pop3"]
    )
    other_id, _ = await create(api)
    as_user = api.as_token(await user_token(api, username))

    status, me = await as_user.get("/users/me")
    assert status == 200, me
    assert me["id"] == user_id
    assert me["metaData"] == {"m": 1}
    for hidden in ("tags", "internalData", "disabledScopes"):
        assert hidden not in me
    status, same = await as_user.get(f"/users/{user_id}")
    assert same == {**me}

    # the listing shows only the caller, without the hidden fields
    status, body = await as_user.get("/users", params={"internalData": "true"})
    assert status == 200, body
    assert body["total"] == 1 and [row["id"] for row in body["results"]] == [user_id]
    assert "tags" not in body["results"][0] and "internalData" not in body["results"][0]

    # other users and administrative routes are off limits
    for method, path, payload in (
        ("GET", f"/users/{other_id}", None),
        ("PUT", f"/users/{other_id}", {"name": "hijack"}),
        ("POST", "/users", {"username": uname(), "password": PASSWORD}),
        ("DELETE", f"/users/{user_id}", None),
        ("DELETE", f"/users/{other_id}", None),
        ("POST", f"/users/{user_id}/password/reset", {}),
        ("PUT", f"/users/{other_id}/logout", {}),
        ("GET", f"/users/resolve/{username}", None),
        ("POST", "/authenticate", {"username": username, "password": PASSWORD}),
    ):
        status, body = await as_user.call(method, path, payload)
        assert_error(status, body, 403, "MissingPrivileges")

    # own things it may do
    assert (await as_user.put("/users/me/logout", {}))[0] == 200
    assert (await as_user.post(f"/users/{user_id}/quota/reset"))[0] == 200


async def test_user_token_update_is_filtered(api: Api, runtime: Runtime) -> None:
    user_id, username = await create(api, tags=["vip"], internalData={"crm": 1})
    as_user = api.as_token(await user_token(api, username))

    status, body = await as_user.put(
        "/users/me",
        {
            "name": "Self Named",
            "tags": ["hacker"],
            "internalData": {"crm": 999},
            "disabledScopes": ["imap"],
        },
    )
    assert (status, body) == (200, {"success": True})
    user = (await api.get(f"/users/{user_id}"))[1]
    assert user["name"] == "Self Named"
    assert user["tags"] == ["vip"]
    assert user["internalData"] == {"crm": 1}
    assert user["disabledScopes"] == []
    # only filtered fields: nothing to update
    status, body = await as_user.put("/users/me", {"tags": ["other"]})
    assert_error(status, body, 400, "NoUpdates")

    # administrative settings of the account are not the user's to change
    status, body = await as_user.put(
        "/users/me", {"quota": 10 * 1024**4, "recipients": 10**6, "imapMaxConnections": 1000}
    )
    assert_error(status, body, 400, "NoUpdates")
    limits = (await api.get(f"/users/{user_id}"))[1]["limits"]
    assert limits["quota"]["allowed"] == 1024**3
    assert limits["recipients"]["allowed"] == 2000
    assert limits["imapMaxConnections"]["allowed"] == 15


async def test_provisioned_role_tokens(api: Api, runtime: Runtime) -> None:
    target_id, target_name = await create(api)

    manager = api.as_token(await runtime.tokens.provision("manager", "ops"))
    status, body = await manager.post("/users", {"username": uname("m"), "password": PASSWORD})
    assert status == 200, body
    created = body["id"]
    assert (await manager.get("/users"))[0] == 200
    assert (await manager.put(f"/users/{created}", {"name": "By Manager"}))[0] == 200
    status, body = await manager.get(f"/users/{created}")
    assert (status, body["name"]) == (200, "By Manager")
    assert "tags" in body and "internalData" in body
    assert (await manager.delete(f"/users/{created}"))[0] == 200
    status, body = await manager.get("/users/me")
    assert_error(status, body, 400, "InputValidationError")  # not a user token

    auth_only = api.as_token(await runtime.tokens.provision("auth", "login-frontend"))
    status, body = await auth_only.post(
        "/authenticate", {"username": target_name, "password": PASSWORD}
    )
    assert (status, body.get("id")) == (200, target_id)
    status, body = await auth_only.post(
        "/authenticate", {"username": target_name, "password": PASSWORD, "token": True}
    )
    assert_error(status, body, 403, "MissingPrivileges")
    assert_error(*(await auth_only.get("/users")), 403, "MissingPrivileges")
    assert_error(*(await auth_only.get(f"/users/{target_id}")), 403, "MissingPrivileges")

    token_auth = api.as_token(await runtime.tokens.provision("tokenAuth", "sso"))
    status, body = await token_auth.post(
        "/authenticate", {"username": target_name, "password": PASSWORD, "token": True}
    )
    assert status == 200 and TOKEN_RE.match(body["token"]), body

    settings = api.as_token(await runtime.tokens.provision("settings", "settings-ui"))
    for method, path, payload in (
        ("GET", "/users", None),
        ("GET", f"/users/{target_id}", None),
        ("POST", "/users", {"username": uname(), "password": PASSWORD}),
        ("PUT", f"/users/{target_id}", {"name": "x"}),
        ("POST", "/authenticate", {"username": target_name, "password": PASSWORD}),
    ):
        status, body = await settings.call(method, path, payload)
        assert_error(status, body, 403, "MissingPrivileges")

    webmail = api.as_token(await runtime.tokens.provision("webmail", "webmail"))
    assert (await webmail.get(f"/users/{target_id}"))[0] == 200
    assert (await webmail.put(f"/users/{target_id}", {"name": "From Webmail"}))[0] == 200
    status, body = await webmail.post("/users", {"username": uname(), "password": PASSWORD})
    assert_error(status, body, 403, "MissingPrivileges")
    assert_error(*(await webmail.delete(f"/users/{target_id}")), 403, "MissingPrivileges")

    # provisioned tokens are stored hashed as well, and can be dropped by their holder
    raw = await runtime.tokens.provision("manager", "temporary")
    records = await runtime.repositories.tokens.find({"user": "temporary"})
    assert [record["_id"] for record in records] == [hashlib.sha256(raw.encode()).hexdigest()]
    assert raw not in json.dumps(records, default=str)
    assert (await api.as_token(raw).delete("/authenticate"))[0] == 200
    assert_error(*(await api.as_token(raw).get("/users")), 401, "InvalidToken")


async def test_error_envelope_on_auth_failures(api: Api) -> None:
    response = await api.client.get(
        "/users", headers={"X-Access-Token": "0" * 40, "X-Request-Id": "req-auth-1"}
    )
    body = await response.json()
    assert response.status == 401
    assert response.headers["X-Request-Id"] == "req-auth-1"
    assert body == {
        "success": False,
        "error": "Invalid accessToken value",
        "code": "InvalidToken",
        "requestId": "req-auth-1",
    }
    response = await api.client.post(
        "/authenticate",
        json={"username": uname(), "password": "x"},
        headers={"X-Access-Token": ROOT_TOKEN, "X-Request-Id": "req-auth-2"},
    )
    body = await response.json()
    assert response.status == 401 and response.headers["X-Request-Id"] == "req-auth-2"
    assert body == {
        "success": False,
        "error": "Authentication failed",
        "code": "AuthFailed",
        "requestId": "req-auth-2",
    }
