"""Address resolution as SMTP needs it: the typed `resolve_recipient`, its targets and reasons."""

from __future__ import annotations

import pytest
from conftest import Api

from wildpy import errors
from wildpy.addressing import ForwardTarget
from wildpy.runtime import Runtime


async def _user(api: Api, username: str, address: str) -> str:
    status, body = await api.post(
        "/users", {"username": username, "password": "pass word 1", "address": address}
    )
    assert status == 200, body
    return str(body["id"])


async def _address(api: Api, user: str, address: str) -> None:
    status, body = await api.post(
        f"/users/{user}/addresses", {"address": address, "allowWildcard": True}
    )
    assert status == 200, body


async def test_each_way_of_matching_names_its_reason(api: Api, runtime: Runtime) -> None:
    owner = await _user(api, "resolved", "owner@res.test")
    catcher = await _user(api, "catcher", "catcher@other.test")
    for alias, domain in (("res-alias.test", "res.test"), ("res2-alias.test", "res2.test")):
        status, _ = await api.post("/domainaliases", {"alias": alias, "domain": domain})
        assert status == 200
    await _address(api, catcher, "*@res.test")
    await _address(api, catcher, "info*@res.test")
    await _address(api, owner, "*@res2.test")
    await _address(api, catcher, "postmaster@*")
    resolve = runtime.addresses.resolve_recipient

    exact = await resolve("Own.Er+news@RES.test")  # case, dots and +label normalised away
    assert (exact.reason, exact.user, exact.matched) == ("exact", owner, "owner@res.test")
    assert exact.address is not None and exact.forwarded is None and exact.targets == []

    aliased = await resolve("owner@res-alias.test")
    assert (aliased.reason, aliased.user, aliased.matched) == (
        "domain_alias",
        owner,
        "owner@res.test",
    )

    prefix = await resolve("information@res.test")  # the longest wildcard wins over *@res.test
    assert (prefix.reason, prefix.user, prefix.matched) == ("wildcard", catcher, "info*@res.test")
    anything = await resolve("someone@res.test")
    assert (anything.reason, anything.matched) == ("wildcard", "*@res.test")

    via_alias = await resolve("someone@res2-alias.test")
    assert (via_alias.reason, via_alias.user, via_alias.matched) == (
        "alias_wildcard",
        owner,
        "*@res2.test",
    )

    any_domain = await resolve("postmaster@nowhere.test")
    assert (any_domain.reason, any_domain.user, any_domain.matched) == (
        "any_domain",
        catcher,
        "postmaster@*",
    )

    with pytest.raises(errors.AddressNotFound):
        await resolve("someone@res.test", allow_wildcard=False)
    with pytest.raises(errors.AddressNotFound):
        await resolve("nobody@unknown.test")


async def test_a_forwarded_address_resolves_to_its_targets(api: Api, runtime: Runtime) -> None:
    status, body = await api.post(
        "/addresses/forwarded",
        {"address": "team@fwd.test", "targets": ["a@x.test", "smtp://mx.x.test:25"]},
    )
    assert status == 200, body

    found = await runtime.addresses.resolve_recipient("Team@fwd.test")

    assert (found.reason, found.user, found.matched) == ("exact", None, "team@fwd.test")
    assert found.forwarded is not None and found.forwarded["id"] == body["id"]
    assert found.targets == [
        ForwardTarget("mail", "a@x.test"),
        ForwardTarget("relay", "smtp://mx.x.test:25"),
    ]


async def test_what_is_no_address_is_refused(runtime: Runtime) -> None:
    with pytest.raises(errors.InputValidationError):
        await runtime.addresses.resolve_recipient("not an address@res.test")
