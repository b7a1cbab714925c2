"""End-to-end tests of the domain alias routes (WildDuck reference 5.4) through real HTTP requests
against the real (embedded) database. All tests of this module share one database, so each test
works with its own alias names.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from conftest import Api, assert_error

from wildpy.runtime import Runtime

ISO_DATE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
UNKNOWN_ID = "0123456789abcdef01234567"


async def create_alias(api: Api, alias: str, domain: str) -> str:
    status, body = await api.post("/domainaliases", {"alias": alias, "domain": domain})
    assert status == 200, body
    assert body["success"] is True
    return str(body["id"])


async def resolve_alias(api: Api, alias: str) -> tuple[int, dict[str, Any]]:
    return await api.get(f"/domainaliases/resolve/{quote(alias)}")


async def test_create_get_resolve_delete(api: Api) -> None:
    ident = await create_alias(api, "Alias-One.TEST", "Target-One.test")
    status, body = await api.get(f"/domainaliases/{ident}")
    assert status == 200, body
    assert body == {
        "success": True,
        "id": ident,
        "alias": "alias-one.test",
        "domain": "target-one.test",
        "created": body["created"],
    }
    assert ISO_DATE.match(body["created"])
    # ids are accepted in upper case too
    status, body = await api.get(f"/domainaliases/{ident.upper()}")
    assert (status, body.get("id")) == (200, ident)

    for spelling in ("alias-one.test", "ALIAS-ONE.TEST", "alias-one.test."):
        status, body = await resolve_alias(api, spelling)
        assert status == 200, (spelling, body)
        assert body == {"success": True, "id": ident}

    status, body = await api.delete(f"/domainaliases/{ident}")
    assert status == 200, body
    assert body == {"success": True}
    status, body = await api.get(f"/domainaliases/{ident}")
    assert_error(status, body, 404, "AliasNotFound")
    status, body = await resolve_alias(api, "alias-one.test")
    assert_error(status, body, 404, "AliasNotFound")
    status, body = await api.delete(f"/domainaliases/{ident}")
    assert_error(status, body, 404, "AliasNotFound")

    # the name is free again
    again = await create_alias(api, "alias-one.test", "elsewhere.test")
    assert again != ident
    status, body = await resolve_alias(api, "alias-one.test")
    assert body["id"] == again


async def test_alias_exists(api: Api) -> None:
    await create_alias(api, "dup-alias.test", "target.test")
    for spelling, domain in (
        ("dup-alias.test", "target.test"),
        ("DUP-ALIAS.TEST", "other.test"),
        ("dup-alias.test.", "target.test"),
    ):
        status, body = await api.post("/domainaliases", {"alias": spelling, "domain": domain})
        assert_error(status, body, 409, "AliasExists")
    status, body = await api.get("/domainaliases", params={"query": "dup-alias"})
    assert body["total"] == 1


async def test_idn_aliases(api: Api) -> None:
    ident = await create_alias(api, "bücher-alias.test", "XN--MLLER-KVA.DE")
    status, body = await api.get(f"/domainaliases/{ident}")
    assert (body["alias"], body["domain"]) == ("bücher-alias.test", "müller.de")
    for spelling in ("bücher-alias.test", "xn--bcher-alias-thb.test", "BÜCHER-ALIAS.test"):
        status, body = await resolve_alias(api, spelling)
        assert (status, body.get("id")) == (200, ident), (spelling, body)
    status, body = await api.post(
        "/domainaliases", {"alias": "xn--bcher-alias-thb.test", "domain": "x.test"}
    )
    assert_error(status, body, 409, "AliasExists")

    # mail to the alias in either spelling reaches the target domain's address
    user_body = {"username": "idnalias", "password": "", "address": "someone@müller.de"}
    status, body = await api.post("/users", user_body)
    assert status == 200, body
    for address in ("someone@bücher-alias.test", "someone@xn--bcher-alias-thb.test"):
        status, found = await api.get(f"/addresses/resolve/{quote(address)}")
        assert status == 200, (address, found)
        assert found["user"] == body["id"]


async def test_not_found_and_validation(api: Api) -> None:
    for method in (api.get, api.delete):
        status, body = await method(f"/domainaliases/{UNKNOWN_ID}")
        assert_error(status, body, 404, "AliasNotFound")
        status, body = await method("/domainaliases/not-an-id")
        assert_error(status, body, 400, "InputValidationError")
        assert "alias" in body["details"]
    for unknown in ("never-created.test", "not a domain", "-bad-.test"):
        status, body = await resolve_alias(api, unknown)
        assert_error(status, body, 404, "AliasNotFound")

    for request in (
        {"alias": "a.test"},
        {"domain": "a.test"},
        {"alias": "", "domain": "a.test"},
        {"alias": "bad alias", "domain": "a.test"},
        {"alias": "ok-alias.test", "domain": "bad domain!"},
        {"alias": "ok-alias.test", "domain": "a.test", "extra": True},
        {"alias": "x" * 256, "domain": "a.test"},
        {"alias": ["a.test"], "domain": "a.test"},
    ):
        status, body = await api.post("/domainaliases", request)
        assert_error(status, body, 400, "InputValidationError")
        assert body["details"], body
    status, body = await resolve_alias(api, "ok-alias.test")
    assert_error(status, body, 404, "AliasNotFound")


async def test_listing_paging_and_query(api: Api) -> None:
    created = {}
    for number in range(27):
        # created out of order: the listing sorts by alias
        index = (number * 7) % 27
        created[f"pg-{index:02d}.test"] = await create_alias(
            api, f"pg-{index:02d}.test", f"pg-target-{index % 3}.test"
        )
    names = sorted(created)

    pages = []
    status, body = await api.get("/domainaliases", params={"query": "pg-", "limit": 10})
    assert status == 200, body
    pages.append(body)
    while body["nextCursor"]:
        status, body = await api.get(
            "/domainaliases",
            params={
                "query": "pg-",
                "limit": 10,
                "next": body["nextCursor"],
                "page": len(pages) + 1,
            },
        )
        assert status == 200, body
        pages.append(body)
    assert [len(page["results"]) for page in pages] == [10, 10, 7]
    assert [page["page"] for page in pages] == [1, 2, 3]
    assert all(page["total"] == 27 and page["query"] == "pg-" for page in pages)
    assert pages[0]["previousCursor"] is False
    rows = [row for page in pages for row in page["results"]]
    assert [row["alias"] for row in rows] == names
    assert rows[0] == {
        "id": created["pg-00.test"],
        "alias": "pg-00.test",
        "domain": "pg-target-0.test",
    }

    # backwards from the last page
    status, body = await api.get(
        "/domainaliases",
        params={"query": "pg-", "limit": 10, "previous": pages[2]["previousCursor"], "page": 2},
    )
    assert status == 200, body
    assert body["results"] == pages[1]["results"]
    assert body["page"] == 2
    status, body = await api.get(
        "/domainaliases",
        params={"query": "pg-", "limit": 10, "previous": body["previousCursor"], "page": 1},
    )
    # page 1 is the first page: `previous` is only honoured past it (as WildDuck does)
    assert body["results"] == pages[0]["results"]
    status, body = await api.get(
        "/domainaliases",
        params={"query": "pg-", "limit": 10, "previous": pages[1]["previousCursor"], "page": 2},
    )
    assert body["results"] == pages[0]["results"]
    assert body["previousCursor"] is False
    assert body["page"] == 1

    # the query matches the target domain too, and is literal
    status, body = await api.get("/domainaliases", params={"query": "PG-TARGET-1", "limit": 250})
    assert {row["alias"] for row in body["results"]} == {n for n in names if int(n[3:5]) % 3 == 1}
    assert body["total"] == 9
    status, body = await api.get("/domainaliases", params={"query": "pg-.*"})
    assert (body["total"], body["results"]) == (0, [])
    status, body = await api.get("/domainaliases", params={"query": "pg-", "unknown": "x"})
    assert status == 200, body

    for params in ({"limit": 0}, {"limit": 251}, {"next": "@@"}, {"next": "bad"}, {"page": -1}):
        status, body = await api.get("/domainaliases", params=params)
        assert_error(status, body, 400, "InputValidationError")


async def test_user_token_may_not_touch_aliases(api: Api, runtime: Runtime) -> None:
    ident = await create_alias(api, "guarded.test", "target.test")
    status, body = await api.post("/users", {"username": "aliasuser", "password": ""})
    token = await runtime.tokens.provision("user", body["id"])
    as_user = api.as_token(token)
    for request in (
        as_user.get("/domainaliases"),
        as_user.post("/domainaliases", {"alias": "mine.test", "domain": "target.test"}),
        as_user.get(f"/domainaliases/{ident}"),
        as_user.get("/domainaliases/resolve/guarded.test"),
        as_user.delete(f"/domainaliases/{ident}"),
    ):
        status, body = await request
        assert_error(status, body, 403, "MissingPrivileges")
    status, body = await api.as_token(None).get(f"/domainaliases/{ident}")
    assert_error(status, body, 401, "InvalidToken")
    status, body = await resolve_alias(api, "guarded.test")
    assert body["id"] == ident
    status, body = await resolve_alias(api, "mine.test")
    assert_error(status, body, 404, "AliasNotFound")
    status, body = await api.call("PATCH", f"/domainaliases/{ident}")
    assert_error(status, body, 405, "MethodNotAllowed")
