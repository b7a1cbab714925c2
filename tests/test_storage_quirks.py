"""What the repositories promise whatever the server: booleans written come back as booleans."""

from __future__ import annotations

from wildpy.runtime import Runtime
from wildpy.storage.database import new_id


async def test_booleans_set_later_read_back_as_booleans(runtime: Runtime) -> None:
    users = runtime.repositories.users
    user_id = new_id()
    await users.insert({"_id": user_id, "unameview": user_id, "disabled": False})
    await users.update_one(
        {"_id": user_id},
        {"$set": {"disabled": True, "suspended": False, "featureFlags.indexing": True}},
    )
    for document in (
        await users.get(user_id),
        await users.find_one({"_id": user_id}),
        (await users.find({"_id": user_id}))[0],
        (await users.page({"_id": user_id})).results[0],
        await users.find_one_and_update({"_id": user_id}, {"$set": {"activated": True}}),
    ):
        assert document is not None
        assert document["disabled"] is True
        assert document["suspended"] is False
        assert document["featureFlags"]["indexing"] is True
    # and queries for True match what was set, on either server
    assert await users.count({"_id": user_id, "disabled": True}) == 1
