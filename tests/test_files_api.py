"""End-to-end tests of the storage-file routes (WildDuck reference 5.7) through real HTTP requests
against the real (embedded) database: upload (text, base64, defaults), listing with paging and
search, streamed download, delete, ownership and permissions, and the bucket/metadata consistency.

All tests of this module share one database, so each test works with its own users.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientPayloadError
from conftest import SEEN_CODES, Api, assert_error, make_config
from gridfs import AsyncGridOut
from pymongo.errors import AutoReconnect

from wildpy import errors
from wildpy.app import create_app
from wildpy.runtime import Runtime, open_runtime
from wildpy.services.files import FileService, escape_regex
from wildpy.storage.database import AlreadyExists, new_id
from wildpy.storage.files import FileMissing

ISO_DATE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
UNKNOWN_ID = "0123456789abcdef01234567"


# ---------------------------------------------------------------------------------------------
# helpers


async def make_user(api: Api, prefix: str = "files") -> str:
    username = f"{prefix}{uuid.uuid4().hex[:10]}"
    status, body = await api.post("/users", {"username": username, "password": ""})
    assert status == 200, body
    return str(body["id"])


async def upload(api: Api, user: str, content: str, **fields: Any) -> str:
    status, body = await api.post(f"/users/{user}/storage", {"content": content, **fields})
    assert status == 200, body
    assert body["success"] is True
    assert re.fullmatch(r"[0-9a-f]{24}", body["id"])
    return str(body["id"])


async def download(
    api: Api, path: str, method: str = "GET"
) -> tuple[int, Mapping[str, str], bytes, dict[str, Any] | None]:
    """Status, headers, raw body, and the JSON error body when there is one."""
    headers = {"X-Access-Token": api.token} if api.token else {}
    response = await api.client.request(method, path, headers=headers)
    raw = await response.read()
    error = None
    if response.status >= 400:
        error = await response.json(content_type=None)
        assert isinstance(error, dict)
        # count the code as produced (error contract: every code reached by a real request)
        SEEN_CODES.add(str(error.get("code")))
    return response.status, response.headers, raw, error


async def listing(api: Api, user: str, **params: Any) -> dict[str, Any]:
    status, body = await api.get(f"/users/{user}/storage", params=params)
    assert status == 200, body
    return body


async def user_token(runtime: Runtime, user_id: str) -> str:
    return await runtime.tokens.provision("user", user_id)


# ---------------------------------------------------------------------------------------------
# upload and download


async def test_upload_text_and_download(api: Api) -> None:
    user = await make_user(api)
    text = "Hello, wörld!\nSecond line"
    file_id = await upload(api, user, text, filename="hello.txt", cid="part1@example.com")

    status, headers, raw, _ = await download(api, f"/users/{user}/storage/{file_id}")
    assert status == 200
    assert raw == text.encode("utf-8")
    assert headers["Content-Type"].startswith("text/plain")
    assert headers["Content-Length"] == str(len(text.encode("utf-8")))
    assert headers["Content-Disposition"] == (
        "attachment; filename=\"hello.txt\"; filename*=UTF-8''hello.txt"
    )
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Request-Id"]

    body = await listing(api, user)
    assert body["total"] == 1
    (row,) = body["results"]
    assert row == {
        "id": file_id,
        "filename": "hello.txt",
        "contentType": "text/plain",
        "cid": "part1@example.com",
        "size": len(text.encode("utf-8")),
        "created": row["created"],
        "md5": hashlib.md5(text.encode("utf-8")).hexdigest(),
    }
    assert ISO_DATE.match(row["created"])


async def test_upload_base64_binary_round_trip(api: Api, runtime: Runtime) -> None:
    user = await make_user(api)
    data = os.urandom(1024 * 1024)  # four GridFS chunks and a bit: streamed chunk by chunk
    encoded = base64.b64encode(data).decode()
    file_id = await upload(
        api, user, encoded, encoding="base64", filename="random.bin", contentType="image/png"
    )

    status, headers, raw, _ = await download(api, f"/users/{user}/storage/{file_id}")
    assert status == 200
    assert raw == data
    assert headers["Content-Type"] == "image/png"
    assert headers["Content-Length"] == str(len(data))

    (row,) = (await listing(api, user))["results"]
    assert row["size"] == len(data)
    assert row["md5"] == hashlib.md5(data).hexdigest()
    assert "cid" not in row

    # the service reads whole files too (draft attachments)
    stored, content = await runtime.files.read(user, file_id)
    assert content == data and stored.filename == "random.bin"


async def test_base64_tolerates_line_breaks_and_url_alphabet(api: Api) -> None:
    user = await make_user(api)
    data = bytes(range(256)) * 3
    wrapped = "\r\n".join(base64.b64encode(data).decode()[i : i + 76] for i in range(0, 1024, 76))
    file_id = await upload(api, user, wrapped, encoding="base64", filename="a.bin")
    assert (await download(api, f"/users/{user}/storage/{file_id}"))[2] == data

    urlsafe = base64.urlsafe_b64encode(data).decode().rstrip("=")
    file_id = await upload(api, user, urlsafe, encoding="base64", filename="b.bin")
    assert (await download(api, f"/users/{user}/storage/{file_id}"))[2] == data


async def test_default_names_and_detected_types(api: Api) -> None:
    user = await make_user(api)
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    await upload(api, user, "x", contentType="application/pdf")
    await upload(api, user, "y", filename="photo.JPG")
    await upload(api, user, "z")
    await upload(api, user, "w", filename="  spaced.tar.gz  ", contentType="")
    rows = {row["filename"]: row["contentType"] for row in (await listing(api, user))["results"]}
    assert rows == {
        f"upload-{today}.pdf": "application/pdf",
        "photo.JPG": "image/jpeg",
        f"upload-{today}.bin": "application/octet-stream",
        "spaced.tar.gz": "application/gzip",
    }


async def test_empty_file(api: Api) -> None:
    user = await make_user(api)
    file_id = await upload(api, user, "", filename="empty.txt")
    status, headers, raw, _ = await download(api, f"/users/{user}/storage/{file_id}")
    assert (status, raw, headers["Content-Length"]) == (200, b"", "0")


async def test_download_headers_for_awkward_names_and_types(api: Api) -> None:
    user = await make_user(api)
    file_id = await upload(
        api, user, "<b>hi</b>", filename='résumé "final".html', contentType="text/html\r\nX-Evil: 1"
    )
    status, headers, raw, _ = await download(api, f"/users/{user}/storage/{file_id}")
    assert status == 200 and raw == b"<b>hi</b>"
    # a stored type that cannot be a header value is not sent back as one
    assert headers["Content-Type"] == "application/octet-stream"
    assert "X-Evil" not in headers
    assert headers["Content-Disposition"] == (
        'attachment; filename="r_sum_ _final_.html"; '
        "filename*=UTF-8''r%C3%A9sum%C3%A9%20%22final%22.html"
    )


async def test_head_sends_headers_only(api: Api) -> None:
    user = await make_user(api)
    file_id = await upload(api, user, "abc", filename="a.txt")
    status, headers, raw, _ = await download(api, f"/users/{user}/storage/{file_id}", "HEAD")
    assert (status, raw, headers["Content-Length"]) == (200, b"", "3")


# ---------------------------------------------------------------------------------------------
# listing, paging, search


async def test_list_pages_by_filename(api: Api) -> None:
    user = await make_user(api)
    names = ["e.txt", "a.txt", "d.txt", "b.txt", "c.txt"]
    for name in names:
        await upload(api, user, name, filename=name)

    seen: list[str] = []
    body = await listing(api, user, limit=2)
    assert (body["total"], body["page"], body["previousCursor"]) == (5, 1, False)
    seen += [row["filename"] for row in body["results"]]
    pages = [body]
    while body["nextCursor"]:
        body = await listing(api, user, limit=2, next=body["nextCursor"], page=len(pages) + 1)
        pages.append(body)
        seen += [row["filename"] for row in body["results"]]
    assert seen == sorted(names)
    assert len(pages) == 3 and pages[-1]["nextCursor"] is False

    # back from the last page
    back = await listing(api, user, limit=2, previous=pages[-1]["previousCursor"], page=2)
    assert [row["filename"] for row in back["results"]] == ["c.txt", "d.txt"]


async def test_search_is_literal_and_case_insensitive(api: Api) -> None:
    user = await make_user(api)
    for name in ["Report (1).txt", "report.pdf", "a.b", "axb", "x+y.txt", "[draft].doc"]:
        await upload(api, user, "-", filename=name)

    async def found(query: str) -> list[str]:
        body = await listing(api, user, query=query)
        assert body["query"] == query.strip()
        return sorted(row["filename"] for row in body["results"])

    assert await found("REPORT") == ["Report (1).txt", "report.pdf"]
    assert await found("(1)") == ["Report (1).txt"]
    assert await found("a.b") == ["a.b"]
    assert await found("x+y") == ["x+y.txt"]
    assert await found("[draft]") == ["[draft].doc"]
    assert await found(".*") == []
    assert await found("nothing") == []
    # blank query: everything
    assert len(await found("  ")) == 6


async def test_list_is_per_user(api: Api) -> None:
    alice, bob = await make_user(api), await make_user(api)
    await upload(api, alice, "a", filename="mine.txt")
    body = await listing(api, bob)
    assert (body["total"], body["results"]) == (0, [])


def test_escape_regex() -> None:
    pattern = escape_regex(r"a.b*c+d?e^f$g{h}i(j)k|l[m]n\o")
    assert re.fullmatch(pattern, r"a.b*c+d?e^f$g{h}i(j)k|l[m]n\o")


# ---------------------------------------------------------------------------------------------
# delete, ownership, permissions


async def test_delete_then_404(api: Api, runtime: Runtime) -> None:
    user = await make_user(api)
    file_id = await upload(api, user, "bye", filename="bye.txt")
    status, body = await api.delete(f"/users/{user}/storage/{file_id}")
    assert (status, body) == (200, {"success": True})

    status, _, _, error = await download(api, f"/users/{user}/storage/{file_id}")
    assert error is not None
    assert_error(status, error, 404, "FileNotFound")
    status, body = await api.delete(f"/users/{user}/storage/{file_id}")
    assert_error(status, body, 404, "FileNotFound")
    assert (await listing(api, user))["total"] == 0
    # the bytes are gone from the bucket too
    with pytest.raises(FileMissing):
        await runtime.repositories.storage_files.open(file_id)


async def test_another_users_file_is_not_found(api: Api) -> None:
    alice, bob = await make_user(api), await make_user(api)
    file_id = await upload(api, alice, "secret", filename="secret.txt")

    status, _, _, error = await download(api, f"/users/{bob}/storage/{file_id}")
    assert error is not None
    assert_error(status, error, 404, "FileNotFound")
    status, body = await api.delete(f"/users/{bob}/storage/{file_id}")
    assert_error(status, body, 404, "FileNotFound")
    # still there for its owner
    status, _, raw, _ = await download(api, f"/users/{alice}/storage/{file_id}")
    assert (status, raw) == (200, b"secret")


async def test_user_token_manages_own_files_only(api: Api, runtime: Runtime) -> None:
    alice, bob = await make_user(api), await make_user(api)
    bobs_file = await upload(api, bob, "bob's", filename="bob.txt")
    as_alice = api.as_token(await user_token(runtime, alice))

    file_id = await upload(as_alice, alice, "alice's", filename="alice.txt")
    via_me = await upload(as_alice, "me", "via me", filename="me.txt")
    body = await listing(as_alice, "me")
    assert sorted(row["id"] for row in body["results"]) == sorted([file_id, via_me])
    status, _, raw, _ = await download(as_alice, f"/users/{alice}/storage/{file_id}")
    assert (status, raw) == (200, b"alice's")
    status, body = await as_alice.delete(f"/users/me/storage/{via_me}")
    assert status == 200, body

    # another user's path: refused before anything is looked up
    status, body = await as_alice.post(f"/users/{bob}/storage", {"content": "x"})
    assert_error(status, body, 403, "MissingPrivileges")
    status, body = await as_alice.get(f"/users/{bob}/storage")
    assert_error(status, body, 403, "MissingPrivileges")
    status, _, _, error = await download(as_alice, f"/users/{bob}/storage/{bobs_file}")
    assert error is not None
    assert_error(status, error, 403, "MissingPrivileges")
    status, body = await as_alice.delete(f"/users/{bob}/storage/{bobs_file}")
    assert_error(status, body, 403, "MissingPrivileges")
    # and bob's file under alice's own path is simply not there
    status, _, _, error = await download(as_alice, f"/users/{alice}/storage/{bobs_file}")
    assert error is not None
    assert_error(status, error, 404, "FileNotFound")


# ---------------------------------------------------------------------------------------------
# invalid input


async def test_malformed_ids(api: Api) -> None:
    user = await make_user(api)
    status, _, _, error = await download(api, f"/users/{user}/storage/not-an-id")
    assert error is not None
    assert_error(status, error, 400, "InputValidationError")
    assert "file" in error["details"]
    status, body = await api.delete(f"/users/{user}/storage/{UNKNOWN_ID[:-1]}")
    assert_error(status, body, 400, "InputValidationError")
    status, body = await api.post("/users/nope/storage", {"content": "x"})
    assert_error(status, body, 400, "InputValidationError")
    assert "user" in body["details"]
    status, body = await api.get("/users/nope/storage")
    assert_error(status, body, 400, "InputValidationError")


async def test_invalid_upload_input(api: Api) -> None:
    user = await make_user(api)
    path = f"/users/{user}/storage"
    status, body = await api.post(path, {"content": "not base64!!", "encoding": "base64"})
    assert_error(status, body, 400, "InputValidationError")
    assert "content" in body["details"]
    status, body = await api.post(path, {"content": "QUJD\u00e9", "encoding": "base64"})
    assert_error(status, body, 400, "InputValidationError")
    status, body = await api.post(path, {"content": "QUJDR", "encoding": "base64"})
    assert_error(status, body, 400, "InputValidationError")
    status, body = await api.post(path, {"content": "x", "encoding": "hex"})
    assert_error(status, body, 400, "InputValidationError")
    assert "encoding" in body["details"]
    status, body = await api.post(path, {"filename": "no-content.txt"})
    assert_error(status, body, 400, "InputValidationError")
    assert "content" in body["details"]
    status, body = await api.post(path, {"content": "x", "filename": "f" * 256})
    assert_error(status, body, 400, "InputValidationError")
    assert list(body["details"]) == ["filename"]
    status, body = await api.post(path, {"content": "x", "unknown": 1})
    assert_error(status, body, 400, "InputValidationError")
    status, body = await api.get(path, params={"query": "q" * 256})
    assert_error(status, body, 400, "InputValidationError")
    assert list(body["details"]) == ["query"]
    assert (await listing(api, user))["total"] == 0


async def test_unknown_user(api: Api) -> None:
    status, body = await api.post(f"/users/{UNKNOWN_ID}/storage", {"content": "x"})
    assert_error(status, body, 404, "UserNotFound")
    status, body = await api.get(f"/users/{UNKNOWN_ID}/storage")
    assert_error(status, body, 404, "UserNotFound")
    status, _, _, error = await download(api, f"/users/{UNKNOWN_ID}/storage/{UNKNOWN_ID}")
    assert error is not None
    assert_error(status, error, 404, "FileNotFound")


# ---------------------------------------------------------------------------------------------
# limits and consistency


async def test_upload_larger_than_body_limit_gets_413(
    mongo_uri: str, tmp_path: Path, aiohttp_client: Any
) -> None:
    config = make_config(mongo_uri, tmp_path, api={"maxBodySize": 4096})
    async with open_runtime(config) as runtime:
        try:
            api = Api(await aiohttp_client(create_app(config, runtime=runtime)))
            user = await make_user(api)
            status, body = await api.post(f"/users/{user}/storage", {"content": "x" * 8192})
            assert_error(status, body, 413, "PayloadTooLarge")
            assert body["details"]["limit"] == 4096
            assert (await listing(api, user))["total"] == 0
        finally:
            await runtime.database.drop_all()


async def test_file_size_limit(api: Api, runtime: Runtime) -> None:
    user = await make_user(api)
    small = FileService(
        runtime.repositories.storage_files, runtime.repositories.users, max_size=1024
    )
    await small.upload(user, "x" * 1024, filename="fits.txt")
    with pytest.raises(errors.PayloadTooLarge) as raised:
        await small.upload(user, base64.b64encode(b"x" * 1025).decode(), encoding="base64")
    assert raised.value.details == {"limit": 1024}
    assert [row["filename"] for row in (await listing(api, user))["results"]] == ["fits.txt"]


async def test_failed_metadata_insert_removes_the_file(runtime: Runtime) -> None:
    """Upload writes GridFS first, then the metadata; when the metadata fails, the file goes."""
    repo = runtime.repositories.storage_files
    file_id = new_id()
    # a metadata row already holds this id, so the metadata insert of the upload will fail
    await repo.insert({"_id": file_id, "user": UNKNOWN_ID, "filename": "taken"})
    document = {
        "_id": file_id,
        "user": UNKNOWN_ID,
        "filename": "new.txt",
        "contentType": "text/plain",
        "size": 3,
        "md5": hashlib.md5(b"new").hexdigest(),
        "created": datetime.now(UTC),
    }
    with pytest.raises(AlreadyExists):
        await repo.store(document, b"new")
    with pytest.raises(FileMissing):
        await repo.open(file_id)
    await repo.delete_one({"_id": file_id})


async def test_failure_mid_stream_cuts_the_connection(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Headers are out once streaming starts: a database failure then cuts the connection short
    (the client sees fewer bytes than Content-Length) instead of appending an error body."""
    user = await make_user(api)
    data = os.urandom(600 * 1024)  # three GridFS chunks
    file_id = await upload(
        api, user, base64.b64encode(data).decode(), encoding="base64", filename="big.bin"
    )
    real_readchunk = AsyncGridOut.readchunk
    calls = 0

    async def failing_readchunk(self: AsyncGridOut) -> bytes:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise AutoReconnect("connection lost")
        return await real_readchunk(self)

    monkeypatch.setattr(AsyncGridOut, "readchunk", failing_readchunk)
    response = await api.client.get(
        f"/users/{user}/storage/{file_id}", headers={"X-Access-Token": str(api.token)}
    )
    assert response.status == 200
    assert response.headers["Content-Length"] == str(len(data))
    with pytest.raises(ClientPayloadError):
        await response.read()

    monkeypatch.setattr(AsyncGridOut, "readchunk", real_readchunk)
    status, _, raw, _ = await download(api, f"/users/{user}/storage/{file_id}")
    assert (status, raw) == (200, data)
