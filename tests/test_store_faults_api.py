"""A storage fault in the middle of an upload: 500 StoreError in the contract's envelope, and
nothing half-stored."""

from __future__ import annotations

import base64
import dataclasses
import os
from typing import Any

from conftest import Api, assert_error

from wildpy import errors
from wildpy.app import create_app
from wildpy.config import Config
from wildpy.runtime import Runtime, build_message_service
from wildpy.storage.blobs import Bucket
from wildpy.store.bundle import build_message_api


class FailingUploads(Bucket):
    """Stores the attachment, then loses the connection: the store must undo everything."""

    async def upload(self, file_id: str, data: bytes, *, filename: str, metadata: Any) -> None:
        await super().upload(file_id, data, filename=filename, metadata=metadata)
        raise errors.InternalDatabaseError()


def _with_attachment() -> bytes:
    body = base64.encodebytes(os.urandom(100_000)).replace(b"\n", b"\r\n")
    return (
        b"From: a@example.com\r\nSubject: doomed\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\n\r\ntext\r\n--B\r\n"
        b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n"
        b"Content-Disposition: attachment; filename=x.bin\r\n\r\n" + body + b"--B--\r\n"
    )


async def test_storage_fault_answers_store_error(
    aiohttp_client: Any, config: Config, runtime: Runtime
) -> None:
    faulty = build_message_service(
        runtime.database,
        runtime.repositories,
        runtime.journal,
        attachment_bucket=FailingUploads(runtime.database, "attachments"),
    )
    broken = dataclasses.replace(
        runtime,
        messages=faulty,
        message_api=build_message_api(
            runtime.database, runtime.repositories, faulty, runtime.mailboxes, runtime.files
        ),
    )
    api = Api(await aiohttp_client(create_app(config, runtime=broken)))
    status, body = await api.post("/users", {"username": "faulty", "password": "pass word 1"})
    assert status == 200
    user_id = body["id"]
    status, body = await api.get(f"/users/{user_id}/mailboxes")
    inbox = next(box["id"] for box in body["results"] if box["path"] == "INBOX")

    status, body = await api.post(
        f"/users/{user_id}/mailboxes/{inbox}/messages",
        data=_with_attachment(),
        headers={"Content-Type": "message/rfc822"},
    )
    assert_error(status, body, 500, "StoreError")
    assert "details" not in body and "Traceback" not in body["error"]

    status, body = await api.get(f"/users/{user_id}/mailboxes/{inbox}/messages")
    assert status == 200 and body["total"] == 0 and body["results"] == []
    status, body = await api.get(f"/users/{user_id}")
    assert body["limits"]["quota"]["used"] == 0
    await faulty.settle()
