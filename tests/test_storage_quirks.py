"""What the storage layer promises whatever the server: values come back with the types written.

nx-27017's SQL update path stores a `$set` boolean as 0/1, a `$set` datetime as a string and a
`$push` sub-document as a JSON string; storage/embedded.py sends updates down its Python path.
These checks run unchanged against a real MongoDB (WILDPY_TEST_MONGODB_URI).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from wildpy.runtime import Runtime
from wildpy.storage.database import new_id


async def test_update_operators_keep_types(runtime: Runtime) -> None:
    users = runtime.repositories.users
    user_id = new_id()
    now = datetime.now(UTC).replace(microsecond=0)
    await users.insert({"_id": user_id, "unameview": user_id, "disabled": False, "seen": now})
    await users.update_one(
        {"_id": user_id},
        {
            "$set": {"disabled": True, "featureFlags.indexing": True, "changed": now},
            "$push": {"oldPasswords": {"date": now, "hash": "x"}},
            "$max": {"seen": now + timedelta(hours=1)},
        },
    )
    document = await users.find_one_and_update(
        {"_id": user_id}, {"$set": {"activated": True}, "$inc": {"authVersion": 1}}
    )
    assert document is not None
    assert document["disabled"] is True and document["activated"] is True
    assert document["featureFlags"] == {"indexing": True}
    assert document["changed"] == now
    assert document["seen"] == now + timedelta(hours=1)
    assert document["oldPasswords"] == [{"date": now, "hash": "x"}]
    assert await users.count({"_id": user_id, "disabled": True}) == 1


async def test_concurrent_increments_are_atomic(runtime: Runtime) -> None:
    users = runtime.repositories.users
    user_id = new_id()
    await users.insert({"_id": user_id, "unameview": user_id, "storageUsed": 0})
    await asyncio.gather(
        *(users.update_one({"_id": user_id}, {"$inc": {"storageUsed": 3}}) for _ in range(200))
    )
    document = await users.get(user_id)
    assert document is not None and document["storageUsed"] == 600
