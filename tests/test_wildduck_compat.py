"""WildDuck clients unchanged: the account-side fields and routes WildDuck's current API has.

Each test here uses a field or a route the way a WildDuck client does (WildDuck's published
OpenAPI document and source, zone-eu/wildduck, are the reference), through the production app and
the embedded database.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from conftest import Api, assert_error

from wildpy.clock import utcnow
from wildpy.runtime import Runtime
from wildpy.workers.janitor import run_round

PASSWORD = "correct horse battery 42"


def uname(prefix: str = "c") -> str:
    return f"{prefix}{uuid.uuid4().hex[:12]}"


async def create(api: Api, **fields: Any) -> tuple[str, str]:
    username = fields.pop("username", uname())
    status, body = await api.post("/users", {"username": username, "password": PASSWORD, **fields})
    assert status == 200, body
    return str(body["id"]), username


async def login(api: Api, username: str, **extra: Any) -> tuple[int, dict[str, Any]]:
    return await api.post("/authenticate", {"username": username, "password": PASSWORD, **extra})


# ------------------------------------------------------------------------------ require2faEnabled


async def test_require2fa_enabled_is_stored_and_returned(api: Api, runtime: Runtime) -> None:
    flagged, flagged_name = await create(api, require2faEnabled=True)
    plain, plain_name = await create(api)

    stored = await runtime.repositories.users.get(flagged)
    assert stored is not None and stored["require2faEnabled"] is True
    assert (await api.get(f"/users/{flagged}"))[1]["require2faEnabled"] is True
    assert (await api.get(f"/users/{plain}"))[1]["require2faEnabled"] is False

    # WildDuck's answer: the flag sits between require2fa and requirePasswordChange, and the
    # login succeeds either way (it is the client that asks the user to set up a second factor)
    status, body = await login(api, flagged_name)
    assert status == 200, body
    assert list(body)[-3:] == ["require2fa", "require2faEnabled", "requirePasswordChange"]
    assert (body["require2fa"], body["require2faEnabled"]) == (False, True)
    status, body = await login(api, plain_name)
    assert (status, body["require2faEnabled"]) == (200, False)

    # PUT turns it off and on again; the same value twice changes nothing
    assert (await api.put(f"/users/{flagged}", {"require2faEnabled": False}))[0] == 200
    assert (await api.get(f"/users/{flagged}"))[1]["require2faEnabled"] is False
    assert (await login(api, flagged_name))[1]["require2faEnabled"] is False
    assert (await api.put(f"/users/{flagged}", {"require2faEnabled": "yes"}))[0] == 200
    assert (await api.get(f"/users/{flagged}"))[1]["require2faEnabled"] is True
    assert_error(
        *(await api.put(f"/users/{flagged}", {"require2faEnabled": True})), 400, "NoUpdates"
    )
    status, body = await api.post(
        "/users", {"username": uname(), "password": PASSWORD, "require2faEnabled": "maybe"}
    )
    assert_error(status, body, 400, "InputValidationError")
    assert set(body["details"]) == {"require2faEnabled"}


# ------------------------------------------------------------------------------ GET /authenticated


async def test_authenticated_introspects_the_token(api: Api, runtime: Runtime) -> None:
    assert await api.get("/authenticated") == (200, {"success": True})  # the root token
    user_id, username = await create(api)
    status, body = await login(api, username, token=True)
    assert status == 200, body
    user = api.as_token(body["token"])
    assert (await user.get("/authenticated", params={"sess": "s1", "ip": "127.0.0.1"}))[0] == 200

    # a revoked, a made-up and a missing token: 401, as for any route
    assert (await user.delete("/authenticate"))[0] == 200
    assert_error(*(await user.get("/authenticated")), 401, "InvalidToken")
    assert_error(*(await api.as_token("0" * 40).get("/authenticated")), 401, "InvalidToken")
    assert_error(*(await api.as_token(None).get("/authenticated")), 401, "InvalidToken")

    # a role that may not read authentication (WildDuck's "auth" role only creates it)
    auth_token = await runtime.tokens.provision("auth", "auth-service")
    assert_error(*(await api.as_token(auth_token).get("/authenticated")), 403, "MissingPrivileges")
    # its own parameters only
    status, body = await api.get("/authenticated", params={"user": user_id})
    assert_error(status, body, 400, "InputValidationError")


# ------------------------------------------------------------------------------ address preflight


async def test_address_check_answers_what_create_would(api: Api, runtime: Runtime) -> None:
    user_id, _ = await create(api)
    taken = f"{uname('taken')}@example.org"
    assert (await api.post(f"/users/{user_id}/addresses", {"address": taken}))[0] == 200
    forwarded = f"{uname('fwd')}@example.org"
    status, body = await api.post(
        "/addresses/forwarded", {"address": forwarded, "targets": ["x@example.net"]}
    )
    assert status == 200, body

    free = f"{uname('Free')}@Example.ORG"
    status, body = await api.get(f"/addresses/check/{free}")
    assert (status, body) == (200, {"success": True, "address": free.lower()})
    status, body = await api.get(
        f"/addresses/check/*@{uname('d')}.test", params={"allowWildcard": "true"}
    )
    assert status == 200, body

    refused = [
        ({"address": taken.upper()}, 409, "AddressExistsError"),  # the same address, other case
        ({"address": forwarded}, 409, "AddressExistsError"),  # held by a forwarded address
        ({"address": f"*@{uname('d')}.test"}, 400, "InputValidationError"),  # no wildcard asked
        ({"address": "not an address"}, 400, "InputValidationError"),
        ({"address": "a@b@c.test"}, 400, "InputValidationError"),
    ]
    before = await runtime.repositories.addresses.collection.count_documents({})
    for given, status_expected, code in refused:
        checked = await api.get(f"/addresses/check/{given['address']}")
        assert_error(*checked, status_expected, code)
        # the very answer creating it gives (request ids aside)
        created = await api.post(f"/users/{user_id}/addresses", given)
        assert_error(*created, status_expected, code)
        same = ("error", "code", "details")
        assert {k: checked[1].get(k) for k in same} == {k: created[1].get(k) for k in same}
    # nothing was created by the checks, or by the refused creates
    assert await runtime.repositories.addresses.collection.count_documents({}) == before
    assert (await api.get(f"/addresses/check/{free}"))[0] == 200
    assert_error(
        *(await api.get(f"/addresses/check/{free}", params={"x": "1"})), 400, "InputValidationError"
    )


# ------------------------------------------------------------------------------ POST /quota/reset


async def test_quota_reset_of_every_user_is_a_task(api: Api, runtime: Runtime) -> None:
    users = runtime.repositories.users
    ids = [(await create(api))[0] for _ in range(3)]
    for user_id in ids:
        await users.update_one({"_id": user_id}, {"$set": {"storageUsed": 999}})

    status, body = await api.post("/quota/reset", {"sess": "s", "ip": "127.0.0.1"})
    assert status == 200, body
    assert set(body) == {"success", "task"} and re.fullmatch(r"[0-9a-f]{24}", body["task"])
    # answered at once: nothing is recounted until the task runs
    assert (await users.storage_used_of(ids[0])) == 999

    await run_round(runtime)  # the janitor's round runs the queued tasks
    for user_id in ids:
        assert (await users.storage_used_of(user_id)) == 0, user_id
    task = await runtime.repositories.tasks.get(body["task"])
    assert task is not None and task["status"] == "done"
    assert task["result"]["users"] >= len(ids)
    assert await runtime.tasks.run_pending() == 0  # done once, not again

    # a user token may not recount everybody; unknown parameters are refused
    _, username = await create(api)
    status, auth = await login(api, username, token=True)
    assert status == 200, auth
    assert_error(
        *(await api.as_token(auth["token"]).post("/quota/reset")), 403, "MissingPrivileges"
    )
    assert_error(*(await api.post("/quota/reset", {"user": ids[0]})), 400, "InputValidationError")


# ------------------------------------------------------------------------------ PGP encryption


async def test_encryption_settings_are_refused_until_implemented(
    api: Api, runtime: Runtime
) -> None:
    """wildpy does not encrypt stored mail yet: a setting that asks for it is refused by name
    instead of being stored and ignored; the values that ask for nothing still pass."""
    key = (
        "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nxjMEZ0abcdEWCSsGAQQB2kcPAQEHQ\n"
        "-----END PGP PUBLIC KEY BLOCK-----\n"
    )
    user_id, _ = await create(api, encryptMessages=False, encryptForwarded="no", pubKey="")
    asks = [
        ({"encryptMessages": True}, {"encryptMessages"}),
        ({"encryptForwarded": "yes"}, {"encryptForwarded"}),
        ({"pubKey": key}, {"pubKey"}),
        ({"pubKey": key, "encryptMessages": True}, {"pubKey", "encryptMessages"}),
    ]
    for given, named in asks:
        for status, body in (
            await api.post("/users", {"username": uname(), "password": PASSWORD, **given}),
            await api.put(f"/users/{user_id}", given),
        ):
            assert_error(status, body, 400, "InputValidationError")
            assert set(body["details"]) == named, body
            assert "does not encrypt" in body["error"]
    stored = await runtime.repositories.users.get(user_id)
    assert stored is not None
    assert not stored.get("encryptMessages") and not stored.get("pubKey")
    # a key that is no key is still told apart from the refusal
    status, body = await api.put(f"/users/{user_id}", {"pubKey": "not a key"})
    assert_error(status, body, 400, "InputValidationError")
    assert "PGP key validation failed" in body["details"]["pubKey"]
    user = (await api.get(f"/users/{user_id}"))[1]
    assert (user["encryptMessages"], user["encryptForwarded"], user["pubKey"]) == (
        False,
        False,
        "",
    )


# ------------------------------------------------------------------------------ every field


WILDDUCK_FIELDS = json.loads(
    (Path(__file__).parent / "data" / "wildduck_request_fields.json").read_text()
)["routes"]
#: the values of the path parameters: an id nobody has, so nothing is changed or deleted
PATH_VALUES = {
    "user": "0" * 24,
    "username": "nobody",
    "address": "0" * 24,
    "id": "0" * 24,
    "alias": "0" * 24,
}


def _route_paths(api: Api) -> set[str]:
    app = api.client.server.app
    assert app is not None
    return {
        f"{route.method} {route.resource.canonical}"
        for route in app.router.routes()
        if route.resource is not None
    }


async def test_wildduck_request_fields_are_accepted_or_refused_clearly(api: Api) -> None:
    """Each request field WildDuck's API has on a route wildpy has is known to wildpy: it is
    accepted, or refused with a message that says why. "is not allowed" is the answer to a
    field nobody knows, never to one of WildDuck's."""
    assert set(WILDDUCK_FIELDS) <= _route_paths(api)
    unknown: list[str] = []
    for route, spec in WILDDUCK_FIELDS.items():
        method, template = route.split(" ", 1)
        path = template
        for name in spec["path"]:
            assert "{" + name + "}" in template, route
            path = path.replace("{" + name + "}", PATH_VALUES[name])
        for field in spec["fields"]:
            # any value will do: a known field answers with its own checks (or not at all), an
            # unknown one with "is not allowed"; the required fields are left out on purpose,
            # so a create or a login never happens
            if method in ("GET", "DELETE"):
                status, body = await api.call(method, path, params={field: "x"})
            else:
                status, body = await api.call(method, path, {field: "x"})
            message = body.get("details", {}).get(field, "") if status == 400 else ""
            if message.endswith("is not allowed"):
                unknown.append(f"{route}: {field}")
            elif message:
                assert f'"{field}"' in message, (route, field, message)
    assert unknown == []


async def test_fields_of_missing_features_are_refused_by_name(api: Api) -> None:
    """S/MIME and a per-user MTA relay are WildDuck features wildpy does not have: asking for
    them is refused by name; their empty values (what a client sends by default) ask for
    nothing and pass. `protocol` names the application for the logs, as `sess` does."""
    user_id, _ = await create(api, smimeCerts=[], mtaRelay="", smimeCipher="")
    asks = {
        "mtaRelay": "smtp://relay.example.net:25",
        "smimeCerts": ["-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"],
        "smimeCipher": "aes-256-cbc",
        "smimeKeyTransport": "rsa-oaep",
    }
    for field, value in asks.items():
        for status, body in (
            await api.post("/users", {"username": uname(), "password": PASSWORD, field: value}),
            await api.put(f"/users/{user_id}", {field: value}),
        ):
            assert_error(status, body, 400, "InputValidationError")
            assert set(body["details"]) == {field}
            assert "is not supported by wildpy yet" in body["details"][field]
    status, body = await api.put(f"/users/{user_id}", {"name": "N", "protocol": "webmail"})
    assert status == 200, body


async def test_quota_task_of_a_lost_worker_is_taken_over(api: Api, runtime: Runtime) -> None:
    """A worker that died mid-task left it running with its place saved: once the lease has
    expired the next round takes it and goes on from there; before that, nobody does."""
    users = runtime.repositories.users
    tasks = runtime.repositories.tasks
    await runtime.tasks.run_pending()  # what the other tests queued
    first, second = sorted([(await create(api))[0] for _ in range(2)])
    for user_id in (first, second):
        await users.update_one({"_id": user_id}, {"$set": {"storageUsed": 777}})
    task_id = await runtime.tasks.schedule_quota_reset()
    # the lost worker: it had leased the task and got past `first`
    leased = await tasks.lease(utcnow(), utcnow() + timedelta(minutes=5))
    assert leased is not None and leased["_id"] == task_id
    await tasks.progress(task_id, first, utcnow() + timedelta(minutes=5))
    assert await runtime.tasks.run_pending() == 0  # still leased
    await tasks.progress(task_id, first, utcnow() - timedelta(seconds=1))  # the lease ran out
    assert await runtime.tasks.run_pending() == 1
    assert await users.storage_used_of(second) == 0
    assert await users.storage_used_of(first) == 777  # before its saved place: not again
    task = await tasks.get(task_id)
    assert task is not None and (task["status"], task["attempts"]) == ("done", 2)
