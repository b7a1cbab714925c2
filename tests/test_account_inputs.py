"""The account services take typed inputs; WildDuck's field names are read in one place."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from wildpy import errors
from wildpy.runtime import Runtime
from wildpy.services.account_inputs import (
    Autoreply,
    ForwardedChanges,
    Limits,
    NewForwarded,
    NewUser,
    NewUserAddress,
    UserAddressChanges,
    UserChanges,
)


async def test_a_user_made_and_changed_with_typed_inputs(runtime: Runtime) -> None:
    user_id = await runtime.users.create(
        NewUser(
            username="typed",
            password="pass word 1",
            address="typed@inputs.test",
            tags=["Blue"],
            spam_level=20,
            limits=Limits(quota=4096, imap_max_connections=3),
        )
    )
    stored = await runtime.repositories.users.by_id(user_id)
    assert stored is not None
    assert (stored["quota"], stored["imapMaxConnections"], stored["spamLevel"]) == (4096, 3, 20)
    assert stored["address"] == "typed@inputs.test" and stored["tags"] == ["Blue"]

    await runtime.users.update(user_id, UserChanges(name="Typed", limits=Limits(quota=8192)))
    account = await runtime.users.get(user_id)
    assert (account["name"], account["quota_allowed"]) == ("Typed", 8192)
    with pytest.raises(errors.NoUpdates):
        await runtime.users.update(user_id, UserChanges(name="Typed"))

    await runtime.addresses.create_user_address(
        user_id, NewUserAddress(address="second@inputs.test", name="Second")
    )
    await runtime.addresses.update_user_address(
        user_id, "second@inputs.test", UserAddressChanges(main=True)
    )
    assert (await runtime.users.get(user_id))["address"] == "second@inputs.test"


async def test_a_forwarded_address_with_a_typed_autoreply(runtime: Runtime) -> None:
    start = datetime(2031, 5, 1, 12, tzinfo=UTC)
    address_id = await runtime.addresses.create_forwarded(
        NewForwarded(
            address="away@inputs.test",
            targets=["b@x.test"],
            autoreply=Autoreply(subject="Away", start=start),
        )
    )
    await runtime.addresses.update_forwarded(
        address_id, ForwardedChanges(forwarded_disabled=True, autoreply=Autoreply(status=False))
    )
    forwarded = await runtime.addresses.get_forwarded(address_id)
    assert forwarded["forwarded_disabled"] is True
    assert forwarded["autoreply"] == {"subject": "Away", "start": start, "status": False}


def test_wildduck_field_names_map_onto_the_typed_inputs() -> None:
    new = NewUser.from_fields(
        {"username": "u", "spamLevel": 5, "imapMaxUpload": 10, "requirePasswordChange": True}
    )
    assert (new.spam_level, new.limits.imap_max_upload, new.require_password_change) == (
        5,
        10,
        True,
    )
    changes = ForwardedChanges.from_fields({"forwards": 7, "autoreply": {"status": True}})
    assert changes.forwards == 7 and changes.autoreply == Autoreply(status=True)
    # a field nobody maps would otherwise vanish without a word
    with pytest.raises(TypeError):
        UserChanges.from_fields({"nosuchField": 1})
