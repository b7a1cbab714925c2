"""Deleted accounts: restorable until deleteAfter, then purged with everything they owned."""

from __future__ import annotations

import base64
import os
from datetime import UTC, datetime, timedelta

from wildpy.runtime import Runtime
from wildpy.services.account_inputs import NewUser


def _message_with_attachment(attachment: bytes) -> bytes:
    encoded = base64.encodebytes(attachment).replace(b"\n", b"\r\n")
    return (
        b"From: a@example.com\r\nTo: b@example.com\r\nSubject: purge me\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n"
        b"--XX\r\nContent-Type: text/plain\r\n\r\nhello\r\n"
        b"--XX\r\nContent-Type: application/octet-stream\r\n"
        b"Content-Disposition: attachment; filename=blob.bin\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + encoded + b"--XX--\r\n"
    )


async def _owned(runtime: Runtime, user_id: str) -> dict[str, int]:
    repos = runtime.repositories
    return {
        "messages": await repos.messages.count({"user": user_id}),
        "archived": await repos.archived.count({"user": user_id}),
        "mailboxes": await repos.mailboxes.count({"user": user_id}),
        "files": await repos.storage_files.count({"user": user_id}),
        "journal": await repos.journal.count({"user": user_id}),
        "deleted": await repos.deleted_users.count({"_id": user_id}),
    }


async def test_purge_removes_everything_after_the_window(runtime: Runtime) -> None:
    user_id = await runtime.users.create(NewUser(username="purgee", password="pass word 1"))
    inbox = await runtime.mailboxes.inbox(user_id)
    attachment = os.urandom(64 * 1024)
    first = await runtime.messages.add_message(
        user_id, inbox["_id"], _message_with_attachment(attachment)
    )
    await runtime.messages.add_message(user_id, inbox["_id"], _message_with_attachment(attachment))
    await runtime.messages.delete(user_id, inbox["_id"], first.uid)  # one copy in the archive
    await runtime.files.upload(user_id, b"draft attachment", filename="note.txt")
    refs_before = await runtime.repositories.attachment_refs.count({})
    assert refs_before >= 1

    later = datetime.now(UTC) + timedelta(days=3)
    await runtime.users.delete(user_id, later)
    assert await runtime.purge.purge_due() == 0  # still restorable
    assert (await _owned(runtime, user_id))["messages"] == 1

    assert await runtime.purge.purge_due(now=later + timedelta(seconds=1)) == 1
    assert await _owned(runtime, user_id) == dict.fromkeys(
        ("messages", "archived", "mailboxes", "files", "journal", "deleted"), 0
    )
    assert await runtime.repositories.attachment_refs.count({}) == refs_before - 1
