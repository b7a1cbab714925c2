"""End-to-end tests of the address routes (WildDuck reference 5.3) through real HTTP requests
against the real (embedded) database: user addresses, wildcards, IDN, forwarded addresses,
resolution, the global listing, renameDomain and the address register.

All tests of this module share one database, so each test works in its own domain(s).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from conftest import Api, assert_error

from wildpy.runtime import Runtime
from wildpy.storage.database import new_id

ISO_DATE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
UNKNOWN_ID = "0123456789abcdef01234567"


# ---------------------------------------------------------------------------------------------
# helpers


async def make_user(api: Api, username: str, address: str | None = None, **extra: Any) -> str:
    body: dict[str, Any] = {"username": username, "password": "", **extra}
    if address is not None:
        body["address"] = address
    status, payload = await api.post("/users", body)
    assert status == 200, payload
    return str(payload["id"])


async def add_address(api: Api, user_id: str, address: str, **fields: Any) -> str:
    status, body = await api.post(f"/users/{user_id}/addresses", {"address": address, **fields})
    assert status == 200, body
    assert body["success"] is True
    return str(body["id"])


async def add_forwarded(api: Api, address: str, **fields: Any) -> str:
    fields.setdefault("targets", ["somebody@elsewhere.example"])
    status, body = await api.post("/addresses/forwarded", {"address": address, **fields})
    assert status == 200, body
    return str(body["id"])


def p(value: str) -> str:
    """A path segment: percent-encoded (IDN, '*', '+'), '@' kept readable."""
    return quote(value, safe="@")


async def resolve(api: Api, address: str, wildcard: bool = False) -> tuple[int, dict[str, Any]]:
    params = {"allowWildcard": "true"} if wildcard else None
    return await api.get(f"/addresses/resolve/{p(address)}", params=params)


async def resolved_id(api: Api, address: str, wildcard: bool = False) -> str | None:
    status, body = await resolve(api, address, wildcard)
    if status == 404:
        assert_error(status, body, 404, "AddressNotFound")
        return None
    assert status == 200, body
    return str(body["id"])


async def main_address(api: Api, user_id: str) -> str:
    status, body = await api.get(f"/users/{user_id}")
    assert status == 200, body
    return str(body["address"])


async def user_token(runtime: Runtime, user_id: str) -> str:
    return await runtime.tokens.provision("user", user_id)


# ---------------------------------------------------------------------------------------------
# user addresses: create, list, get


async def test_create_list_and_get_user_addresses(api: Api) -> None:
    uid = await make_user(api, "listowner", "listowner@list.test")
    second = await add_address(
        api,
        uid,
        "B.Second@List.TEST",
        name="Second Identity",
        tags=["Work", "alpha", " work ", ""],
        metaData={"k": 1},
        internalData={"secret": True},
    )
    ba = await add_address(api, uid, "ba@list.test")
    first = await add_address(api, uid, "a-first@list.test", metaData='{"s": "x"}')

    status, body = await api.get(f"/users/{uid}/addresses")
    assert status == 200, body
    assert body["success"] is True
    rows = body["results"]
    # sorted by addrview (dots removed): "ba" before "bsecond", although "b.second" < "ba"
    assert [row["address"] for row in rows] == [
        "a-first@list.test",
        "ba@list.test",
        "b.second@list.test",
        "listowner@list.test",
    ]
    assert [row["main"] for row in rows] == [False, False, False, True]
    by_address = {row["address"]: row for row in rows}
    assert by_address["b.second@list.test"]["id"] == second
    assert by_address["b.second@list.test"]["name"] == "Second Identity"
    assert by_address["b.second@list.test"]["tags"] == ["alpha", "Work"]
    assert by_address["ba@list.test"]["name"] is False
    assert by_address["ba@list.test"]["tags"] == []
    for row in rows:
        assert ISO_DATE.match(row["created"]), row
        assert "metaData" not in row and "internalData" not in row

    status, body = await api.get(
        f"/users/{uid}/addresses", params={"metaData": "yes", "internalData": "1"}
    )
    assert status == 200, body
    by_id = {row["id"]: row for row in body["results"]}
    assert by_id[second]["metaData"] == {"k": 1}
    assert by_id[second]["internalData"] == {"secret": True}
    assert by_id[first]["metaData"] == {"s": "x"}
    assert by_id[ba]["metaData"] == {}

    # one address by id
    status, body = await api.get(f"/users/{uid}/addresses/{second}")
    assert status == 200, body
    assert body == {
        "success": True,
        "id": second,
        "name": "Second Identity",
        "address": "b.second@list.test",
        "main": False,
        "tags": ["alpha", "Work"],
        "created": body["created"],
        "metaData": {"k": 1},
        "internalData": {"secret": True},
    }
    assert ISO_DATE.match(body["created"])

    # ... and by address: any case, with or without the dots
    for spelling in ("b.second@list.test", "B.SECOND@LIST.TEST", "bsecond@list.test"):
        status, body = await api.get(f"/users/{uid}/addresses/{p(spelling)}")
        assert status == 200, (spelling, body)
        assert body["id"] == second
    status, body = await api.get(f"/users/{uid}/addresses/listowner@list.test")
    assert status == 200, body
    assert body["main"] is True


async def test_get_user_address_errors(api: Api) -> None:
    uid = await make_user(api, "geterr", "geterr@geterr.test")
    other = await make_user(api, "geterr2", "geterr2@geterr.test")
    others_address = await add_address(api, other, "theirs@geterr.test")

    status, body = await api.get(f"/users/{uid}/addresses/{UNKNOWN_ID}")
    assert_error(status, body, 404, "AddressNotFound")
    # another user's address, by id and by address
    status, body = await api.get(f"/users/{uid}/addresses/{others_address}")
    assert_error(status, body, 404, "AddressNotFound")
    status, body = await api.get(f"/users/{uid}/addresses/theirs@geterr.test")
    assert_error(status, body, 404, "AddressNotFound")
    status, body = await api.get(f"/users/{uid}/addresses/nobody@geterr.test")
    assert_error(status, body, 404, "AddressNotFound")
    # unknown user
    status, body = await api.get(f"/users/{UNKNOWN_ID}/addresses/{others_address}")
    assert_error(status, body, 404, "UserNotFound")
    status, body = await api.get(f"/users/{UNKNOWN_ID}/addresses")
    assert_error(status, body, 404, "UserNotFound")
    status, body = await api.post(f"/users/{UNKNOWN_ID}/addresses", {"address": "x@geterr.test"})
    assert_error(status, body, 404, "UserNotFound")
    # bad user id
    status, body = await api.get("/users/not-an-id/addresses")
    assert_error(status, body, 400, "InputValidationError")
    assert "user" in body["details"]


async def test_create_validation_errors(api: Api) -> None:
    uid = await make_user(api, "validate", "validate@valid.test")
    cases: list[tuple[dict[str, Any], str]] = [
        ({"address": "john+tag@valid.test"}, "Address can not contain +"),
        ({"address": "*@valid.test"}, "Address can not contain *"),
        ({"address": "jo*hn@valid.test", "allowWildcard": True}, "Invalid wildcard address"),
        ({"address": "*a*@valid.test", "allowWildcard": True}, "Invalid wildcard address"),
        ({"address": "*@valid.test", "allowWildcard": True, "main": True}, "Main address"),
        ({"address": "not an address"}, "must be a valid email"),
        ({"address": "x@valid.test", "unknown": 1}, "is not allowed"),
        ({"address": "x@valid.test", "name": "n" * 129}, "name"),
        ({"address": "x@valid.test", "metaData": "[1, 2]"}, "metaData"),
        ({"address": "x@valid.test", "tags": ["t" * 129]}, "tags"),
        ({}, "address"),
    ]
    for request, expected in cases:
        status, body = await api.post(f"/users/{uid}/addresses", request)
        assert_error(status, body, 400, "InputValidationError")
        assert expected in body["error"] or expected in body.get("details", {}), (request, body)
        assert body.get("details"), (request, body)
    # nothing of that was stored
    status, body = await api.get(f"/users/{uid}/addresses")
    assert [row["address"] for row in body["results"]] == ["validate@valid.test"]


# ---------------------------------------------------------------------------------------------
# main address


async def test_main_address_follows_create_and_update(api: Api) -> None:
    uid = await make_user(api, "mainer", "mainer@main.test")
    second = await add_address(api, uid, "second@main.test")
    assert await main_address(api, uid) == "mainer@main.test"

    third = await add_address(api, uid, "third@main.test", main=True)
    assert await main_address(api, uid) == "third@main.test"

    status, body = await api.put(f"/users/{uid}/addresses/{second}", {"main": True})
    assert status == 200, body
    assert await main_address(api, uid) == "second@main.test"
    status, body = await api.get(f"/users/{uid}/addresses")
    mains = {row["address"]: row["main"] for row in body["results"]}
    assert mains == {
        "mainer@main.test": False,
        "second@main.test": True,
        "third@main.test": False,
    }
    status, body = await api.get(f"/users/{uid}/addresses/{third}")
    assert body["main"] is False

    # main:true on what already is the main address changes nothing
    status, body = await api.put(f"/users/{uid}/addresses/{second}", {"main": "true"})
    assert status == 200, body
    assert await main_address(api, uid) == "second@main.test"

    # main:false is refused, on the main address and on any other
    for ident in (second, third):
        status, body = await api.put(f"/users/{uid}/addresses/{ident}", {"main": False})
        assert_error(status, body, 400, "InputValidationError")
        assert body["error"] == "Cannot unset main status"
    assert await main_address(api, uid) == "second@main.test"


async def test_first_address_of_user_without_one_becomes_main(api: Api) -> None:
    uid = await make_user(api, "noaddr", emptyAddress=True)
    assert await main_address(api, uid) == ""
    # a wildcard can never be the main address, even the first one
    await add_address(api, uid, "*@firstmain.test", allowWildcard=True)
    assert await main_address(api, uid) == ""
    first = await add_address(api, uid, "first@firstmain.test")
    assert await main_address(api, uid) == "first@firstmain.test"
    await add_address(api, uid, "later@firstmain.test")
    assert await main_address(api, uid) == "first@firstmain.test"
    _, body = await api.get(f"/users/{uid}/addresses/{first}")
    assert body["main"] is True


# ---------------------------------------------------------------------------------------------
# update


async def test_update_user_address_fields(api: Api) -> None:
    uid = await make_user(api, "updater", "updater@upd.test")
    aid = await add_address(api, uid, "other@upd.test", name="Old", tags=["a"], metaData={"v": 1})

    status, body = await api.put(
        f"/users/{uid}/addresses/{aid}",
        {
            "name": "New Name",
            "tags": "zeta, Beta ,beta",
            "metaData": '{"v": 2}',
            "internalData": {"i": 1},
        },
    )
    assert status == 200, body
    assert body == {"success": True}
    status, body = await api.get(f"/users/{uid}/addresses/{aid}")
    assert body["name"] == "New Name"
    assert body["tags"] == ["Beta", "zeta"]
    assert body["metaData"] == {"v": 2}
    assert body["internalData"] == {"i": 1}
    assert body["address"] == "other@upd.test"

    # the tags are filterable through the lowercased view
    status, body = await api.get("/addresses", params={"tags": "BETA", "query": "@upd.test"})
    assert [row["id"] for row in body["results"]] == [aid]

    # bad values
    for change in ({"metaData": "nope"}, {"name": "x" * 200}, {"bogus": True}, {"main": "maybe"}):
        status, body = await api.put(f"/users/{uid}/addresses/{aid}", change)
        assert_error(status, body, 400, "InputValidationError")


async def test_rename_user_address(api: Api) -> None:
    uid = await make_user(api, "renamer", "renamer@ren.test")
    other_user = await make_user(api, "renamer2", "renamer2@ren.test")
    aid = await add_address(api, uid, "before@ren.test")
    main_id = (await api.get(f"/users/{uid}/addresses/renamer@ren.test"))[1]["id"]

    status, body = await api.put(f"/users/{uid}/addresses/{aid}", {"address": "After@Ren.Test"})
    assert status == 200, body
    status, body = await api.get(f"/users/{uid}/addresses/{aid}")
    assert body["address"] == "after@ren.test"
    assert await resolved_id(api, "after@ren.test") == aid
    assert await resolved_id(api, "before@ren.test") is None
    assert await main_address(api, uid) == "renamer@ren.test"

    # renaming the main address moves users.address along
    status, body = await api.put(f"/users/{uid}/addresses/{main_id}", {"address": "boss@ren.test"})
    assert status == 200, body
    assert await main_address(api, uid) == "boss@ren.test"
    status, body = await api.get(f"/users/{uid}/addresses/{main_id}")
    assert body["main"] is True
    assert body["address"] == "boss@ren.test"

    # rename and main switch in one request
    status, body = await api.put(
        f"/users/{uid}/addresses/{aid}", {"address": "newmain@ren.test", "main": True}
    )
    assert status == 200, body
    assert await main_address(api, uid) == "newmain@ren.test"

    # only the dots differ: the same key, allowed
    status, body = await api.put(f"/users/{uid}/addresses/{aid}", {"address": "new.main@ren.test"})
    assert status == 200, body
    assert await main_address(api, uid) == "new.main@ren.test"

    # taken, by this user or by another one, in any spelling
    for taken in ("boss@ren.test", "B.O.S.S@REN.TEST", "renamer2@ren.test"):
        status, body = await api.put(f"/users/{uid}/addresses/{aid}", {"address": taken})
        assert_error(status, body, 409, "AddressExistsError")
    assert await main_address(api, uid) == "new.main@ren.test"
    assert await main_address(api, other_user) == "renamer2@ren.test"

    status, body = await api.put(f"/users/{uid}/addresses/{aid}", {"address": "x+y@ren.test"})
    assert_error(status, body, 400, "InputValidationError")
    assert body["error"] == "Address can not contain +"
    status, body = await api.put(f"/users/{uid}/addresses/{aid}", {"address": "bad address"})
    assert_error(status, body, 400, "InputValidationError")

    # unknown id, or an id of another user's address
    theirs = (await api.get(f"/users/{other_user}/addresses"))[1]["results"][0]["id"]
    for ident in (UNKNOWN_ID, theirs):
        status, body = await api.put(f"/users/{uid}/addresses/{ident}", {"name": "x"})
        assert_error(status, body, 404, "AddressNotFound")
        assert body["error"] == "Invalid or unknown email address identifier"
    status, body = await api.get(f"/users/{other_user}/addresses/{theirs}")
    assert body["name"] is False
    status, body = await api.put(f"/users/{UNKNOWN_ID}/addresses/{aid}", {"name": "x"})
    assert_error(status, body, 404, "UserNotFound")


async def test_wildcard_change_rules(api: Api) -> None:
    uid = await make_user(api, "wildrules", "wildrules@wr.test")
    plain = await add_address(api, uid, "plain@wr.test")
    wild = await add_address(api, uid, "*@wr.test", allowWildcard=True, name="Catch all")

    # renaming to or from a wildcard
    status, body = await api.put(f"/users/{uid}/addresses/{wild}", {"address": "named@wr.test"})
    assert_error(status, body, 403, "ChangeNotAllowed")
    status, body = await api.put(f"/users/{uid}/addresses/{plain}", {"address": "*@other.wr.test"})
    assert_error(status, body, 403, "ChangeNotAllowed")
    status, body = await api.put(f"/users/{uid}/addresses/{wild}", {"address": "x*@wr.test"})
    assert_error(status, body, 403, "ChangeNotAllowed")
    # giving the wildcard's own address back (a client echoing the record) is no change
    status, body = await api.put(
        f"/users/{uid}/addresses/{wild}", {"address": "*@wr.test", "name": "Still catch all"}
    )
    assert status == 200, body
    status, body = await api.get(f"/users/{uid}/addresses/{wild}")
    assert body["name"] == "Still catch all"
    assert body["address"] == "*@wr.test"

    # a wildcard can not become the main address
    status, body = await api.put(f"/users/{uid}/addresses/{wild}", {"main": True})
    assert_error(status, body, 400, "WildcardNotPermitted")
    assert await main_address(api, uid) == "wildrules@wr.test"
    status, body = await api.get(f"/users/{uid}/addresses/{wild}")
    assert body["main"] is False

    # nothing changed on refusal
    status, body = await api.get(f"/users/{uid}/addresses/{plain}")
    assert body["address"] == "plain@wr.test"


# ---------------------------------------------------------------------------------------------
# delete


async def test_delete_user_address(api: Api) -> None:
    uid = await make_user(api, "deleter", "deleter@del.test")
    other = await make_user(api, "deleter2", "deleter2@del.test")
    aid = await add_address(api, uid, "gone@del.test")
    theirs = await add_address(api, other, "theirs@del.test")
    main_id = (await api.get(f"/users/{uid}/addresses/deleter@del.test"))[1]["id"]

    status, body = await api.delete(f"/users/{uid}/addresses/{main_id}")
    assert_error(status, body, 403, "NotPermitted")
    assert body["error"] == "Can not delete main address"

    status, body = await api.delete(f"/users/{uid}/addresses/{theirs}")
    assert_error(status, body, 404, "AddressNotFound")
    assert await resolved_id(api, "theirs@del.test") == theirs

    status, body = await api.delete(f"/users/{uid}/addresses/{aid}")
    assert status == 200, body
    assert body == {"success": True}
    status, body = await api.get(f"/users/{uid}/addresses/{aid}")
    assert_error(status, body, 404, "AddressNotFound")
    assert await resolved_id(api, "gone@del.test") is None
    status, body = await api.delete(f"/users/{uid}/addresses/{aid}")
    assert_error(status, body, 404, "AddressNotFound")
    status, body = await api.delete(f"/users/{UNKNOWN_ID}/addresses/{aid}")
    assert_error(status, body, 404, "UserNotFound")

    # the freed address can be taken again
    again = await add_address(api, other, "gone@del.test")
    assert await resolved_id(api, "gone@del.test") == again

    # a deleted user's addresses go with it
    status, body = await api.delete(f"/users/{other}")
    assert status == 200, body
    for address in ("theirs@del.test", "gone@del.test", "deleter2@del.test"):
        assert await resolved_id(api, address) is None, address
    assert await add_address(api, uid, "theirs@del.test")

    # after the main address moved away, the old main one can go
    new_main = await add_address(api, uid, "newmain@del.test", main=True)
    status, body = await api.delete(f"/users/{uid}/addresses/{main_id}")
    assert status == 200, body
    status, body = await api.delete(f"/users/{uid}/addresses/{new_main}")
    assert_error(status, body, 403, "NotPermitted")


# ---------------------------------------------------------------------------------------------
# wildcards, duplicates, IDN


async def test_wildcard_forms(api: Api) -> None:
    uid = await make_user(api, "wildforms", "wildforms@wf.test")
    forms = ["*@wf.test", "*-bounce@wf.test", "news*@wf.test", "wfcatch@*"]
    ids = {form: await add_address(api, uid, form, allowWildcard="yes") for form in forms}
    status, body = await api.get(f"/users/{uid}/addresses")
    listed = {row["address"]: row["id"] for row in body["results"]}
    assert listed == {**ids, "wildforms@wf.test": listed["wildforms@wf.test"]}
    assert await main_address(api, uid) == "wildforms@wf.test"
    # each is readable by its own (encoded) form
    for form, ident in ids.items():
        status, body = await api.get(f"/users/{uid}/addresses/{p(form)}")
        assert status == 200, (form, body)
        assert body["id"] == ident

    # without allowWildcard every form is refused
    other = await make_user(api, "wildforms2", "wildforms2@wf.test")
    for form in ("*@wf2.test", "*x@wf2.test", "x*@wf2.test", "y@*"):
        status, body = await api.post(f"/users/{other}/addresses", {"address": form})
        assert_error(status, body, 400, "InputValidationError")
        assert body["error"] == "Address can not contain *"
        status, body = await api.post(
            f"/users/{other}/addresses", {"address": form, "allowWildcard": False}
        )
        assert_error(status, body, 400, "InputValidationError")
    # a wildcard is one address: a second user can not take it
    status, body = await api.post(
        f"/users/{other}/addresses", {"address": "*@WF.test", "allowWildcard": True}
    )
    assert_error(status, body, 409, "AddressExistsError")
    # a suffix longer than resolution ever tries is refused
    status, body = await api.post(
        f"/users/{other}/addresses", {"address": "*" + "s" * 33 + "@wf.test", "allowWildcard": 1}
    )
    assert_error(status, body, 400, "InputValidationError")


async def test_duplicates(api: Api, runtime: Runtime) -> None:
    uid = await make_user(api, "dupper", "dupper@dup.test")
    other = await make_user(api, "dupper2", "dupper2@dup.test")
    original = await add_address(api, uid, "john.doe@dup.test")
    for variant in (
        "johndoe@dup.test",
        "John.Doe@dup.test",
        "JOHNDOE@DUP.TEST",
        "j.o.h.n.d.o.e@dup.test",
        " john.doe@dup.test ",
    ):
        for owner in (uid, other):
            status, body = await api.post(f"/users/{owner}/addresses", {"address": variant})
            assert_error(status, body, 409, "AddressExistsError")
    # forwarded addresses share the key space
    status, body = await api.post(
        "/addresses/forwarded", {"address": "johndoe@dup.test", "targets": ["x@else.test"]}
    )
    assert_error(status, body, 409, "AddressExistsError")
    # a new user whose address is taken
    status, body = await api.post(
        "/users", {"username": "dupper3", "password": "", "address": "JohnDoe@dup.test"}
    )
    assert_error(status, body, 409, "AddressExistsError")
    status, body = await api.get("/users/resolve/dupper3")
    assert_error(status, body, 404, "UserNotFound")

    assert await resolved_id(api, "johndoe@dup.test") == original
    count = await runtime.repositories.addresses.count({"addrview": "johndoe@dup.test"})
    assert count == 1


async def test_idn_user_addresses(api: Api) -> None:
    uid = await make_user(api, "idnuser", "idnuser@idn.test")
    aid = await add_address(api, uid, "user@müller.de")
    status, body = await api.get(f"/users/{uid}/addresses/{aid}")
    assert body["address"] == "user@müller.de"
    for spelling in (
        "user@müller.de",
        "user@xn--mller-kva.de",
        "USER@MÜLLER.DE",
        "user@XN--MLLER-KVA.DE",
    ):
        status, body = await api.get(f"/users/{uid}/addresses/{p(spelling)}")
        assert status == 200, (spelling, body)
        assert body["id"] == aid
        assert await resolved_id(api, spelling) == aid
    # the punycode spelling is the same address
    status, body = await api.post(f"/users/{uid}/addresses", {"address": "user@xn--mller-kva.de"})
    assert_error(status, body, 409, "AddressExistsError")
    # a non-ASCII local part is normalised (NFC, lowercase) too
    umlaut = await add_address(api, uid, "J\u00dcRGEN@idn.test")
    decomposed = "ju\u0308rgen@idn.test"
    status, body = await api.post(f"/users/{uid}/addresses", {"address": decomposed})
    assert_error(status, body, 409, "AddressExistsError")
    assert await resolved_id(api, decomposed) == umlaut

    # an IDN main address shows in its Unicode form on the user
    idn_user = await make_user(api, "idnmain", "Boss@XN--MLLER-KVA.DE")
    assert await main_address(api, idn_user) == "boss@müller.de"


async def test_unusual_but_valid_local_parts(api: Api) -> None:
    uid = await make_user(api, "oddparts", "oddparts@odd.test")
    for address in ("o'brien@odd.test", "a{b}c@odd.test", "x=y/z@odd.test", "#!$%&@odd.test"):
        ident = await add_address(api, uid, address)
        status, body = await api.get(f"/users/{uid}/addresses/{p(address)}")
        assert (status, body.get("id")) == (200, ident), (address, body)
        assert await resolved_id(api, address) == ident
        status, body = await api.delete(f"/users/{uid}/addresses/{p(address)}")
        assert status == 200, (address, body)
        assert await resolved_id(api, address) is None


# ---------------------------------------------------------------------------------------------
# forwarded addresses


async def test_forwarded_address_lifecycle(api: Api) -> None:
    fid = await add_forwarded(
        api,
        "Desk@Fwd.test",
        name="Front desk",
        targets=[
            "Person@Elsewhere.test",
            "smtp://mx.elsewhere.test:25",
            "https://hooks.elsewhere.test/in?x=1",
        ],
        forwards=50,
        autoreply={"status": True, "subject": "Away", "text": "Back soon", "name": "Desk"},
        tags=["Team", "front"],
        metaData={"m": 1},
        internalData={"i": 2},
    )
    status, body = await api.get(f"/addresses/forwarded/{fid}")
    assert status == 200, body
    assert body == {
        "success": True,
        "id": fid,
        "name": "Front desk",
        "address": "desk@fwd.test",
        "targets": [
            "person@elsewhere.test",
            "smtp://mx.elsewhere.test:25",
            "https://hooks.elsewhere.test/in?x=1",
        ],
        "limits": {"forwards": {"allowed": 50, "used": 0, "ttl": False}},
        "autoreply": {"status": True, "subject": "Away", "text": "Back soon", "name": "Desk"},
        "tags": ["front", "Team"],
        "forwardedDisabled": False,
        "created": body["created"],
        "metaData": {"m": 1},
        "internalData": {"i": 2},
    }
    assert ISO_DATE.match(body["created"])

    # defaults: the daily limit from the configuration, autoreply off
    plain = await add_forwarded(api, "plain@fwd.test")
    status, body = await api.get(f"/addresses/forwarded/{plain}")
    assert body["limits"]["forwards"]["allowed"] == 2000
    assert body["autoreply"] == {"status": False}
    assert body["name"] is False
    assert body["tags"] == []

    # update: targets replaced, disabled, autoreply merged key by key
    status, body = await api.put(
        f"/addresses/forwarded/{fid}",
        {
            "targets": ["new@elsewhere.test"],
            "forwardedDisabled": True,
            "autoreply": {"subject": "Gone fishing"},
            "name": "Desk 2",
            "forwards": 10,
        },
    )
    assert status == 200, body
    status, body = await api.get(f"/addresses/forwarded/{fid}")
    assert body["targets"] == ["new@elsewhere.test"]
    assert body["forwardedDisabled"] is True
    assert body["autoreply"] == {
        "status": True,
        "subject": "Gone fishing",
        "text": "Back soon",
        "name": "Desk",
    }
    assert body["name"] == "Desk 2"
    assert body["limits"]["forwards"]["allowed"] == 10

    status, body = await api.put(
        f"/addresses/forwarded/{fid}", {"autoreply": {"status": False}, "forwardedDisabled": "no"}
    )
    assert status == 200, body
    status, body = await api.get(f"/addresses/forwarded/{fid}")
    assert body["autoreply"]["status"] is False
    assert body["autoreply"]["subject"] == "Gone fishing"
    assert body["forwardedDisabled"] is False

    # rename, then the old address is free and the new one resolves
    status, body = await api.put(f"/addresses/forwarded/{fid}", {"address": "front.desk@fwd.test"})
    assert status == 200, body
    assert await resolved_id(api, "frontdesk@fwd.test") == fid
    assert await resolved_id(api, "desk@fwd.test") is None
    status, body = await api.put(f"/addresses/forwarded/{fid}", {"address": "PLAIN@fwd.test"})
    assert_error(status, body, 409, "AddressExistsError")

    # nothing to update
    status, body = await api.put(f"/addresses/forwarded/{fid}", {})
    assert_error(status, body, 400, "NoUpdates")

    status, body = await api.delete(f"/addresses/forwarded/{fid}")
    assert status == 200, body
    assert body == {"success": True}
    for method in (api.get, api.delete):
        status, body = await method(f"/addresses/forwarded/{fid}")
        assert_error(status, body, 404, "AddressNotFound")
    status, body = await api.put(f"/addresses/forwarded/{fid}", {"name": "x"})
    assert_error(status, body, 404, "AddressNotFound")
    assert await resolved_id(api, "frontdesk@fwd.test") is None


async def test_forwarded_autoreply_dates_and_limits(api: Api) -> None:
    fid = await add_forwarded(
        api,
        "away@fwdar.test",
        autoreply={"start": "2030-01-01T10:00:00+02:00", "end": "2030-01-02", "subject": "Off"},
    )
    status, body = await api.get(f"/addresses/forwarded/{fid}")
    # dates come back in UTC, whatever offset they were given with
    assert body["autoreply"] == {
        "status": True,
        "start": "2030-01-01T08:00:00.000Z",
        "end": "2030-01-02T00:00:00.000Z",
        "subject": "Off",
    }
    # "" clears a date; other keys stay
    status, body = await api.put(f"/addresses/forwarded/{fid}", {"autoreply": {"end": ""}})
    assert status == 200, body
    status, body = await api.get(f"/addresses/forwarded/{fid}")
    assert body["autoreply"]["end"] is False
    assert body["autoreply"]["start"] == "2030-01-01T08:00:00.000Z"
    for bad in ("garbage", True, "2030-13-45"):
        status, body = await api.put(f"/addresses/forwarded/{fid}", {"autoreply": {"start": bad}})
        assert_error(status, body, 400, "InputValidationError")
        assert body["details"] == {"autoreply,start": '"autoreply.start" must be a valid date'}

    # an autoreply object given without a status is on
    on = await add_forwarded(api, "on@fwdar.test", autoreply={})
    status, body = await api.get(f"/addresses/forwarded/{on}")
    assert body["autoreply"] == {"status": True}

    # the daily limit is a (64-bit safe) non-negative integer
    for forwards in (-1, 2**53 + 1, 10**20, "many"):
        status, body = await api.post(
            "/addresses/forwarded", {"address": "lim@fwdar.test", "forwards": forwards}
        )
        assert_error(status, body, 400, "InputValidationError")
        status, body = await api.put(f"/addresses/forwarded/{fid}", {"forwards": forwards})
        assert_error(status, body, 400, "InputValidationError")
    assert await resolved_id(api, "lim@fwdar.test") is None


async def test_ids_in_upper_case(api: Api) -> None:
    uid = await make_user(api, "upperids", "upperids@upper.test")
    aid = await add_address(api, uid, "second@upper.test")
    fid = await add_forwarded(api, "fwd@upper.test")
    for path in (
        f"/users/{uid.upper()}/addresses/{aid.upper()}",
        f"/addresses/resolve/{aid.upper()}",
    ):
        status, body = await api.get(path)
        assert (status, body.get("id")) == (200, aid), (path, body)
    status, body = await api.get(f"/addresses/forwarded/{fid.upper()}")
    assert (status, body.get("id")) == (200, fid)
    status, body = await api.put(f"/users/{uid}/addresses/{aid.upper()}", {"name": "Upper"})
    assert status == 200, body
    status, body = await api.delete(f"/users/{uid}/addresses/{aid.upper()}")
    assert status == 200, body
    assert await resolved_id(api, "second@upper.test") is None


async def test_forwarded_address_errors(api: Api) -> None:
    uid = await make_user(api, "fwduser", "fwduser@fwderr.test")
    user_address = (await api.get(f"/users/{uid}/addresses"))[1]["results"][0]["id"]

    # a user's address is not a forwarded one, on any of the forwarded routes
    status, body = await api.get(f"/addresses/forwarded/{user_address}")
    assert_error(status, body, 404, "AddressNotFound")
    status, body = await api.put(f"/addresses/forwarded/{user_address}", {"name": "x"})
    assert_error(status, body, 404, "AddressNotFound")
    status, body = await api.delete(f"/addresses/forwarded/{user_address}")
    assert_error(status, body, 404, "AddressNotFound")
    status, body = await api.get(f"/users/{uid}/addresses/{user_address}")
    assert status == 200, body
    for method in (api.get, api.delete):
        status, body = await method(f"/addresses/forwarded/{UNKNOWN_ID}")
        assert_error(status, body, 404, "AddressNotFound")
        status, body = await method("/addresses/forwarded/not-an-id")
        assert_error(status, body, 400, "InputValidationError")

    # forwarding to itself, in any spelling
    for target in ("self@fwderr.test", "S.E.L.F@FWDERR.TEST", "self+tag@fwderr.test"):
        status, body = await api.post(
            "/addresses/forwarded", {"address": "self@fwderr.test", "targets": [target]}
        )
        assert_error(status, body, 400, "InputValidationError")
        assert body["error"].startswith("Can not forward to self"), body
    fid = await add_forwarded(api, "self@fwderr.test")
    status, body = await api.put(f"/addresses/forwarded/{fid}", {"targets": ["self@fwderr.test"]})
    assert_error(status, body, 400, "InputValidationError")
    # renaming to what it forwards to makes a loop as well
    await add_forwarded(api, "looper@fwderr.test", targets=["dest@fwderr.test"])
    looper = await resolved_id(api, "looper@fwderr.test")
    status, body = await api.put(f"/addresses/forwarded/{looper}", {"address": "dest@fwderr.test"})
    assert_error(status, body, 400, "InputValidationError")
    assert await resolved_id(api, "looper@fwderr.test") == looper

    # target types
    for target in ("ftp://files.test/x", "just-text", "mailto:x@y.test", "smtp://"):
        status, body = await api.post(
            "/addresses/forwarded", {"address": "types@fwderr.test", "targets": [target]}
        )
        assert_error(status, body, 400, "InputValidationError")
        assert "target" in body["error"].lower(), body
    status, body = await api.put(f"/addresses/forwarded/{fid}", {"targets": ["gopher://x.test"]})
    assert_error(status, body, 400, "InputValidationError")
    assert body["error"] == 'Unknown target type "gopher://x.test"'

    # the address itself
    for request in (
        {"address": "x+y@fwderr.test"},
        {"address": "*@fwderr.test"},
        {"address": "no address"},
        {"targets": ["a@b.test"]},
        {"address": "ok@fwderr.test", "forwards": -1},
        {"address": "ok@fwderr.test", "autoreply": {"subject": "s" * 2049}},
        {"address": "ok@fwderr.test", "autoreply": {"bogus": 1}},
    ):
        status, body = await api.post("/addresses/forwarded", request)
        assert_error(status, body, 400, "InputValidationError")
    assert await resolved_id(api, "ok@fwderr.test") is None
    assert await resolved_id(api, "types@fwderr.test") is None


async def test_forwarded_wildcards(api: Api) -> None:
    wild = await add_forwarded(api, "*@fwdwild.test", allowWildcard=True)
    any_domain = await add_forwarded(api, "fwdany@*", allowWildcard=True)
    status, body = await api.get(f"/addresses/forwarded/{wild}")
    assert body["address"] == "*@fwdwild.test"
    assert await resolved_id(api, "someone@fwdwild.test", wildcard=True) == wild
    assert await resolved_id(api, "fwdany@wherever.test", wildcard=True) == any_domain

    # renaming to or from a wildcard is not allowed
    plain = await add_forwarded(api, "plain@fwdwild.test")
    status, body = await api.put(f"/addresses/forwarded/{plain}", {"address": "*@x.fwdwild.test"})
    assert_error(status, body, 403, "ChangeNotAllowed")
    status, body = await api.put(f"/addresses/forwarded/{wild}", {"address": "x@fwdwild.test"})
    assert_error(status, body, 403, "ChangeNotAllowed")
    status, body = await api.put(f"/addresses/forwarded/{wild}", {"address": "*@other.test"})
    assert_error(status, body, 403, "ChangeNotAllowed")
    # ... but echoing the current wildcard back is fine
    status, body = await api.put(
        f"/addresses/forwarded/{wild}", {"address": "*@fwdwild.test", "name": "Catch"}
    )
    assert status == 200, body
    status, body = await api.get(f"/addresses/forwarded/{wild}")
    assert (body["address"], body["name"]) == ("*@fwdwild.test", "Catch")


# ---------------------------------------------------------------------------------------------
# resolution


async def test_resolve_exact_alias_and_wildcards(api: Api) -> None:
    owner = await make_user(api, "resolver", "john@res.test")
    catcher = await make_user(api, "rescatch", "rescatch@other.test")
    john = (await api.get(f"/users/{owner}/addresses/john@res.test"))[1]["id"]
    catch_all = await add_address(api, catcher, "*@res.test", allowWildcard=True)
    news = await add_address(api, catcher, "news*@res.test", allowWildcard=True)
    newsletter = await add_address(api, catcher, "newsletter*@res.test", allowWildcard=True)
    bounce = await add_address(api, catcher, "*-bounce@res.test", allowWildcard=True)
    postmaster = await add_address(api, catcher, "postmaster@*", allowWildcard=True)
    alias_catch = await add_address(api, catcher, "*@aliastarget.test", allowWildcard=True)
    status, body = await api.post(
        "/domainaliases", {"alias": "alias-res.test", "domain": "res.test"}
    )
    assert status == 200, body
    status, body = await api.post(
        "/domainaliases", {"alias": "bücher.test", "domain": "aliastarget.test"}
    )
    assert status == 200, body

    # exact, in any spelling; a +label is ignored
    for spelling in ("john@res.test", "JOHN@Res.Test", "j.o.h.n@res.test", "john+news@res.test"):
        assert await resolved_id(api, spelling) == john, spelling
        assert await resolved_id(api, spelling, wildcard=True) == john, spelling
    # the user-address shape
    status, body = await resolve(api, "john@res.test")
    assert body == {
        "success": True,
        "id": john,
        "address": "john@res.test",
        "user": owner,
        "tags": [],
        "created": body["created"],
        "metaData": {},
        "internalData": {},
    }
    # by id
    status, body = await api.get(f"/addresses/resolve/{john}")
    assert (status, body["address"]) == (200, "john@res.test")
    status, body = await api.get(f"/addresses/resolve/{UNKNOWN_ID}")
    assert_error(status, body, 404, "AddressNotFound")

    # through the domain alias, no wildcard needed
    assert await resolved_id(api, "john@alias-res.test") == john
    assert await resolved_id(api, "John+x@ALIAS-RES.TEST") == john

    # wildcards only when asked for
    assert await resolved_id(api, "nobody@res.test") is None
    assert await resolved_id(api, "nobody@res.test", wildcard=True) == catch_all
    assert await resolved_id(api, "nobody+x@res.test", wildcard=True) == catch_all
    # odd but valid local parts still reach the catch-all
    assert await resolved_id(api, "+only-label@res.test", wildcard=True) == catch_all
    assert await resolved_id(api, "jo*hn@res.test", wildcard=True) == catch_all
    assert await resolved_id(api, "a.b{c}@res.test", wildcard=True) == catch_all
    assert await resolved_id(api, "news-daily@res.test", wildcard=True) == news
    # the longest match wins, whichever side it is on
    assert await resolved_id(api, "newsletter-weekly@res.test", wildcard=True) == newsletter
    assert await resolved_id(api, "shop-bounce@res.test", wildcard=True) == bounce
    assert await resolved_id(api, "news-bounce@res.test", wildcard=True) == bounce
    assert await resolved_id(api, "newsletter-bounce@res.test", wildcard=True) == newsletter
    # through the alias domain, to the target domain's wildcards
    assert await resolved_id(api, "nobody@alias-res.test", wildcard=True) == catch_all
    assert await resolved_id(api, "news-x@alias-res.test", wildcard=True) == news
    assert await resolved_id(api, "x-bounce@alias-res.test", wildcard=True) == bounce
    assert await resolved_id(api, "x@xn--bcher-kva.test", wildcard=True) == alias_catch
    assert await resolved_id(api, "x@BÜCHER.test", wildcard=True) == alias_catch
    # user@* comes last: a domain catch-all beats it
    assert await resolved_id(api, "postmaster@anywhere.test", wildcard=True) == postmaster
    assert await resolved_id(api, "post.master+x@anywhere.test", wildcard=True) == postmaster
    assert await resolved_id(api, "postmaster@res.test", wildcard=True) == catch_all
    assert await resolved_id(api, "postmaster@anywhere.test") is None
    assert await resolved_id(api, "somebody@anywhere.test", wildcard=True) is None

    # a wildcard resolved by its own form
    status, body = await resolve(api, "*@res.test")
    assert (status, body["id"]) == (200, catch_all)
    assert body["user"] == catcher

    for garbage in ("not-an-address", "@res.test", "x@", "a b@res.test", "x@-bad-.test"):
        status, body = await resolve(api, garbage, wildcard=True)
        assert_error(status, body, 404, "AddressNotFound")
    status, body = await api.get(f"/addresses/resolve/{p('x@res.test')}", params={"bogus": 1})
    assert_error(status, body, 400, "InputValidationError")


async def test_resolve_forwarded_address(api: Api) -> None:
    fid = await add_forwarded(
        api,
        "fwd@resfwd.test",
        name="Forwarder",
        targets=["a@elsewhere.test", "https://hook.test/x"],
        tags=["T"],
        metaData={"a": 1},
    )
    status, body = await resolve(api, "F.W.D+label@RESFWD.test")
    assert status == 200, body
    assert body == {
        "success": True,
        "id": fid,
        "name": "Forwarder",
        "address": "fwd@resfwd.test",
        "targets": ["a@elsewhere.test", "https://hook.test/x"],
        "limits": {"forwards": {"allowed": 2000, "used": 0, "ttl": False}},
        "autoreply": {"status": False},
        "tags": ["T"],
        "forwardedDisabled": False,
        "created": body["created"],
        "metaData": {"a": 1},
        "internalData": {},
    }
    assert "user" not in body


# ---------------------------------------------------------------------------------------------
# GET /addresses


async def _walk(api: Api, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Follow nextCursor from the first page to the last; returns every page body."""
    pages = []
    status, body = await api.get("/addresses", params=params)
    assert status == 200, body
    pages.append(body)
    while body["nextCursor"]:
        status, body = await api.get(
            "/addresses", params={**params, "next": body["nextCursor"], "page": body["page"] + 1}
        )
        assert status == 200, body
        pages.append(body)
    return pages


async def test_listing_pagination_both_directions(api: Api) -> None:
    uid = await make_user(api, "pager", "pager@page.test")
    expected = {"pager@page.test"}
    for number in range(130):
        # dots make address order differ from addrview order
        address = f"p.{number:03d}@page.test" if number % 2 else f"p{number:03d}x@page.test"
        await add_address(api, uid, address)
        expected.add(address)
    for number in range(130):
        address = f"f{number:03d}@page.test"
        await add_forwarded(api, address)
        expected.add(address)
    assert len(expected) == 261

    pages = await _walk(api, {"query": "@page.test", "limit": 100})
    assert [len(page["results"]) for page in pages] == [100, 100, 61]
    assert [page["page"] for page in pages] == [1, 2, 3]
    assert all(page["total"] == 261 for page in pages)
    assert pages[0]["previousCursor"] is False
    assert pages[-1]["nextCursor"] is False
    assert all(page["query"] == "@page.test" for page in pages)
    rows = [row for page in pages for row in page["results"]]
    assert {row["address"] for row in rows} == expected
    assert len(rows) == 261
    views = [row["address"].split("@")[0].replace(".", "") for row in rows]
    assert views == sorted(views)

    # and back again from the last page with previousCursor
    back = pages[-1]
    for index in (1, 0):
        status, body = await api.get(
            "/addresses",
            params={
                "query": "@page.test",
                "limit": 100,
                "previous": back["previousCursor"],
                "page": back["page"] - 1,
            },
        )
        assert status == 200, body
        assert [r["id"] for r in body["results"]] == [r["id"] for r in pages[index]["results"]]
        assert body["page"] == index + 1
        assert body["nextCursor"]
        back = body
    assert back["previousCursor"] is False

    # the largest page
    status, body = await api.get("/addresses", params={"query": "@page.test", "limit": 250})
    assert (len(body["results"]), body["total"]) == (250, 261)
    # row shapes
    by_address = {row["address"]: row for row in rows}
    assert by_address["f000@page.test"] == {
        "id": by_address["f000@page.test"]["id"],
        "name": False,
        "address": "f000@page.test",
        "user": False,
        "forwarded": True,
        "forwardedDisabled": False,
        "targets": ["somebody@elsewhere.example"],
        "tags": [],
    }
    assert by_address["p.001@page.test"]["user"] == uid
    assert by_address["p.001@page.test"]["forwarded"] is False
    assert "targets" not in by_address["p.001@page.test"]

    # bad paging parameters
    for params in (
        {"limit": 0},
        {"limit": 251},
        {"limit": "many"},
        {"next": "not/valid!"},
        {"next": "abc"},
        {"previous": "@@", "page": 2},
        {"page": 0},
    ):
        status, body = await api.get("/addresses", params=params)
        assert_error(status, body, 400, "InputValidationError")


async def test_listing_filters(api: Api) -> None:
    uid = await make_user(api, "filterer", "filterer@filt.test")
    red = await add_address(api, uid, "red@filt.test", tags=["Red", "warm"], metaData={"c": "r"})
    blue = await add_address(api, uid, "blue@filt.test", tags=["blue", "cold"])
    both = await add_address(
        api, uid, "both@filt.test", tags=["red", "blue"], internalData={"secret": 1}
    )
    fwd = await add_forwarded(
        api, "fwd@filt.test", targets=["someone@Target-Host.test", "https://hooks.test/a"]
    )

    async def ids(**params: Any) -> list[str]:
        status, body = await api.get("/addresses", params={"query": "filt.test", **params})
        assert status == 200, body
        assert body["total"] == len(body["results"])
        return [row["id"] for row in body["results"]]

    assert set(await ids()) == {
        red,
        blue,
        both,
        fwd,
        (await resolved_id(api, "filterer@filt.test")),
    }
    assert await ids(query="RED@FILT") == [red]
    assert await ids(query="e@filt.test") == [blue]
    assert await ids(query="nothing-like-this") == []
    # regex characters in the query are literal
    assert await ids(query=".*") == []
    assert await ids(tags="red") == [both, red]
    assert await ids(tags="RED, cold") == [blue, both, red]
    assert await ids(requiredTags="red,BLUE") == [both]
    assert await ids(tags="warm,cold", requiredTags="red") == [red]
    assert await ids(forward="target-host") == [fwd]
    assert await ids(forward="HOOKS.TEST/") == [fwd]
    assert await ids(forward="nomatch") == []

    status, body = await api.get(
        "/addresses", params={"query": "@filt.test", "metaData": "true", "internalData": "true"}
    )
    rows = {row["id"]: row for row in body["results"]}
    assert rows[red]["metaData"] == {"c": "r"}
    assert rows[both]["internalData"] == {"secret": 1}
    assert rows[blue]["metaData"] == {}
    status, body = await api.get("/addresses", params={"query": "@filt.test"})
    assert all("metaData" not in row and "internalData" not in row for row in body["results"])
    # listing ignores unknown parameters (as WildDuck does), but checks the known ones
    status, body = await api.get("/addresses", params={"query": "@filt.test", "whatever": "1"})
    assert status == 200, body
    status, body = await api.get("/addresses", params={"tags": "x" * 1025})
    assert_error(status, body, 400, "InputValidationError")
    status, body = await api.get("/addresses", params={"metaData": "perhaps"})
    assert_error(status, body, 400, "InputValidationError")


async def test_user_token_sees_only_own_addresses(api: Api, runtime: Runtime) -> None:
    me = await make_user(api, "tokenme", "tokenme@tok.test")
    other = await make_user(api, "tokenother", "tokenother@tok.test")
    mine = await add_address(
        api, me, "second@tok.test", internalData={"hidden": 1}, metaData={"v": 1}
    )
    theirs = await add_address(api, other, "theirs@tok.test")
    fwd = await add_forwarded(api, "fwd@tok.test")
    as_me = api.as_token(await user_token(runtime, me))

    status, body = await as_me.get("/addresses", params={"metaData": "1", "internalData": "1"})
    assert status == 200, body
    assert {row["address"] for row in body["results"]} == {"tokenme@tok.test", "second@tok.test"}
    assert body["total"] == 2
    for row in body["results"]:
        assert row["user"] == me
        assert "internalData" not in row
    assert {row["id"]: row["metaData"] for row in body["results"]}[mine] == {"v": 1}

    # own addresses: readable, without internalData
    for path in (f"/users/{me}/addresses", "/users/me/addresses"):
        status, body = await as_me.get(path, params={"internalData": "true"})
        assert status == 200, (path, body)
        assert len(body["results"]) == 2
        assert all("internalData" not in row for row in body["results"])
    status, body = await as_me.get(f"/users/me/addresses/{mine}")
    assert status == 200, body
    assert body["metaData"] == {"v": 1}
    assert "internalData" not in body

    # own addresses: a user may add one, but can not set internalData
    added = await add_address(as_me, "me", "third@tok.test", internalData={"sneaky": 1})
    status, body = await api.get(f"/users/{me}/addresses/{added}")
    assert body["internalData"] == {}
    status, body = await as_me.put(f"/users/me/addresses/{added}", {"internalData": {"x": 1}})
    assert status == 200, body
    status, body = await api.get(f"/users/{me}/addresses/{added}")
    assert body["internalData"] == {}
    status, body = await as_me.delete(f"/users/me/addresses/{added}")
    assert status == 200, body

    # anybody else's: refused
    requests = [
        as_me.get(f"/users/{other}/addresses"),
        as_me.get(f"/users/{other}/addresses/{theirs}"),
        as_me.post(f"/users/{other}/addresses", {"address": "x@tok.test"}),
        as_me.put(f"/users/{other}/addresses/{theirs}", {"name": "x"}),
        as_me.delete(f"/users/{other}/addresses/{theirs}"),
        as_me.get(f"/users/{other}/addressregister", params={"query": "a"}),
        as_me.get(f"/addresses/resolve/{theirs}"),
        as_me.get(f"/addresses/forwarded/{fwd}"),
        as_me.post("/addresses/forwarded", {"address": "y@tok.test", "targets": ["a@b.test"]}),
        as_me.put(f"/addresses/forwarded/{fwd}", {"name": "x"}),
        as_me.delete(f"/addresses/forwarded/{fwd}"),
        as_me.put("/addresses/renameDomain", {"oldDomain": "tok.test", "newDomain": "x.test"}),
    ]
    for request in requests:
        status, body = await request
        assert_error(status, body, 403, "MissingPrivileges")
    status, body = await api.get(f"/users/{other}/addresses/{theirs}")
    assert body["name"] is False
    assert await resolved_id(api, "x@tok.test") is None

    status, body = await api.as_token(None).get("/addresses")
    assert_error(status, body, 401, "InvalidToken")
    status, body = await api.as_token("f" * 40).get(f"/users/{me}/addresses")
    assert_error(status, body, 401, "InvalidToken")


# ---------------------------------------------------------------------------------------------
# renameDomain


async def test_rename_domain(api: Api) -> None:
    uid = await make_user(api, "domainmover", "boss@old-dom.test")
    other = await make_user(api, "domainstay", "stay@keep-dom.test")
    second = await add_address(api, uid, "second@old-dom.test")
    wild = await add_address(api, uid, "*@old-dom.test", allowWildcard=True)
    fwd = await add_forwarded(api, "f.w.d@old-dom.test")
    blocked = await add_address(api, other, "clash@old-dom.test")
    await add_address(api, other, "clash@new-dom.test")
    status, body = await api.post(
        "/domainaliases", {"alias": "alias-old.test", "domain": "old-dom.test"}
    )
    alias = body["id"]

    status, body = await api.put(
        "/addresses/renameDomain", {"oldDomain": "OLD-DOM.test", "newDomain": "new-dom.test"}
    )
    assert status == 200, body
    assert body == {
        "success": True,
        "modifiedAddresses": 4,
        "modifiedUsers": 1,
        "modifiedDkim": 0,
        "modifiedAliases": 1,
    }
    assert await main_address(api, uid) == "boss@new-dom.test"
    assert await main_address(api, other) == "stay@keep-dom.test"
    status, body = await api.get(f"/users/{uid}/addresses/{second}")
    assert body["address"] == "second@new-dom.test"
    assert await resolved_id(api, "second@new-dom.test") == second
    assert await resolved_id(api, "second@old-dom.test") is None
    assert await resolved_id(api, "fwd@new-dom.test") == fwd
    assert await resolved_id(api, "anyone@new-dom.test", wildcard=True) == wild
    # the one that would have clashed stays where it was
    assert await resolved_id(api, "clash@old-dom.test") == blocked
    status, body = await api.get(f"/domainaliases/{alias}")
    assert body["domain"] == "new-dom.test"
    assert await resolved_id(api, "second@alias-old.test") == second
    # the moved addresses are found by their new domain
    status, body = await api.get("/addresses", params={"query": "@new-dom.test"})
    assert body["total"] == 5

    # IDN spellings meet
    idn_user = await make_user(api, "idnmover", "user@münchen.test")
    status, body = await api.put(
        "/addresses/renameDomain",
        {"oldDomain": "xn--mnchen-3ya.test", "newDomain": "XN--KLN-SNA.test"},
    )
    assert status == 200, body
    assert body["modifiedAddresses"] == 1
    assert await main_address(api, idn_user) == "user@köln.test"

    # nothing to move
    status, body = await api.put(
        "/addresses/renameDomain", {"oldDomain": "empty-dom.test", "newDomain": "x.test"}
    )
    assert status == 200, body
    assert body["modifiedAddresses"] == 0
    for request in (
        {"oldDomain": "a.test"},
        {"newDomain": "a.test"},
        {"oldDomain": "not a domain", "newDomain": "a.test"},
        {"oldDomain": "a.test", "newDomain": "b.test", "extra": 1},
    ):
        status, body = await api.put("/addresses/renameDomain", request)
        assert_error(status, body, 400, "InputValidationError")


# ---------------------------------------------------------------------------------------------
# address register


async def test_address_register(api: Api, runtime: Runtime) -> None:
    uid = await make_user(api, "registered", "registered@reg.test")
    other = await make_user(api, "registered2", "registered2@reg.test")
    status, body = await api.get(f"/users/{uid}/addressregister", params={"query": "john"})
    assert status == 200, body
    assert body == {"success": True, "results": []}

    now = datetime.now(UTC)
    entries = [
        (uid, "john.doe@reg.test", "John Doe", now - timedelta(days=3)),
        (uid, "johanna@reg.test", "Johanna Smith", now - timedelta(days=1)),
        (uid, "zed@reg.test", "JOHNNY Zed", now - timedelta(days=2)),
        (uid, "other@reg.test", "", now),
        (other, "john.x@reg.test", "John X", now),
    ]
    ids = {}
    for owner, address, name, updated in entries:
        ident = new_id()
        ids[address] = ident
        document = {
            "_id": ident,
            "user": owner,
            "address": address,
            "addrview": address.replace(
                ".", "", address.index("@") and address.split("@")[0].count(".")
            ),
            "updated": updated,
        }
        if name:
            document["name"] = name
        await runtime.repositories.address_register.insert(document)

    async def found(query: str, **params: Any) -> list[str]:
        status, body = await api.get(
            f"/users/{uid}/addressregister", params={"query": query, **params}
        )
        assert status == 200, body
        return [row["address"] for row in body["results"]]

    # prefix of the address, or the name in any case; newest first; only this user's
    assert await found("joh") == ["johanna@reg.test", "zed@reg.test", "john.doe@reg.test"]
    assert await found("JOHN") == ["zed@reg.test", "john.doe@reg.test"]
    assert await found("john.d") == ["john.doe@reg.test"]
    assert await found("oth") == ["other@reg.test"]
    assert await found("reg.test") == []
    assert await found("j", limit=2) == ["johanna@reg.test", "zed@reg.test"]
    assert await found("(") == []
    status, body = await api.get(f"/users/{uid}/addressregister", params={"query": "other"})
    assert body["results"] == [
        {"id": ids["other@reg.test"], "name": False, "address": "other@reg.test"}
    ]
    status, body = await api.get(f"/users/{uid}/addressregister", params={"query": "zed"})
    assert body["results"] == [
        {"id": ids["zed@reg.test"], "name": "JOHNNY Zed", "address": "zed@reg.test"}
    ]

    as_user = api.as_token(await user_token(runtime, uid))
    status, body = await as_user.get("/users/me/addressregister", params={"query": "zed"})
    assert (status, len(body["results"])) == (200, 1)

    for params in ({}, {"query": ""}, {"query": "a", "limit": 0}, {"query": "a", "limit": 251}):
        status, body = await api.get(f"/users/{uid}/addressregister", params=params)
        assert_error(status, body, 400, "InputValidationError")
    status, body = await api.get(f"/users/{UNKNOWN_ID}/addressregister", params={"query": "a"})
    assert_error(status, body, 404, "UserNotFound")
