"""First end-to-end checks of the REST app against the real database."""

from __future__ import annotations

from conftest import Api, assert_error


async def test_user_roundtrip(api: Api) -> None:
    status, body = await api.post("/users", {"username": "alice", "password": "correct horse 1"})
    assert status == 200, body
    user_id = body["id"]
    status, body = await api.get(f"/users/{user_id}")
    assert status == 200, body
    assert body["username"] == "alice"
    assert body["address"] == "alice@example.com"
    assert body["limits"]["quota"]["used"] == 0


async def test_unknown_route_and_missing_token(api: Api) -> None:
    status, body = await api.get("/nope")
    assert_error(status, body, 404, "ResourceNotFound")
    status, body = await api.as_token(None).get("/users")
    assert_error(status, body, 401, "InvalidToken")
