"""The message store through MessageService, against the real (embedded) database.

Covers: byte-identical round trips for every kind of message, attachment deduplication and
reference counting, quota, empty and oversized messages, rollback after injected storage faults,
threads, flags, move, delete/archive, retention with tombstones, mailbox emptying, listing.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import os
import uuid
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from wildpy import errors
from wildpy.mime import MimeNode
from wildpy.runtime import Runtime, build_message_service
from wildpy.services.account_inputs import NewUser
from wildpy.services.messages import MessageService, StoreSettings, epoch_ms, utcnow
from wildpy.storage.blobs import Bucket
from wildpy.storage.database import Document
from wildpy.storage.messages import Messages
from wildpy.store.segments import inline_bytes

# ------------------------------------------------------------------------------ sample messages


def plain(subject: str = "Hello", body: str = "Just text.\r\n", **headers: str) -> bytes:
    extra = "".join(f"{key.replace('_', '-')}: {value}\r\n" for key, value in headers.items())
    return (
        f"From: Alice <alice@example.com>\r\nTo: bob@example.com\r\nSubject: {subject}\r\n"
        f"Message-ID: <{uuid.uuid4().hex}@example.com>\r\n{extra}"
        "Date: Tue, 01 Oct 2024 10:00:00 +0000\r\n\r\n"
    ).encode() + body.encode()


HTML = (
    b"From: shop@example.com\r\nTo: bob@example.com\r\nSubject: Offer\r\n"
    b"MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
    b"<html><body><p>Caf=C3=A9 <b>deals</b></p><script>x()</script></body></html>\r\n"
)


def with_attachment(content: bytes, subject: str = "Files", name: str = "data.bin") -> bytes:
    encoded = base64.encodebytes(content).replace(b"\n", b"\r\n")
    return (
        b"From: alice@example.com\r\nTo: bob@example.com\r\nSubject: " + subject.encode() + b"\r\n"
        b"Message-ID: <" + uuid.uuid4().hex.encode() + b"@example.com>\r\n"
        b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="XYZ"\r\n\r\n'
        b"preamble\r\n--XYZ\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n"
        b'--XYZ\r\nContent-Type: application/octet-stream; name="' + name.encode() + b'"\r\n'
        b'Content-Disposition: attachment; filename="' + name.encode() + b'"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n" + encoded + b"--XYZ\r\n"
        b'Content-Type: image/png; name="dot.png"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
        b"iVBORw0KGgo=\r\n--XYZ--\r\nepilogue\r\n"
    )


FORWARDED = (
    b"From: carol@example.com\r\nTo: bob@example.com\r\nSubject: Fwd: News\r\n"
    b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b1\r\n\r\n"
    b"--b1\r\nContent-Type: text/plain\r\n\r\nForwarding this.\r\n"
    b"--b1\r\nContent-Type: message/rfc822\r\nContent-Disposition: attachment\r\n\r\n"
    b"From: dave@example.com\r\nSubject: News\r\nContent-Type: multipart/alternative; "
    b"boundary=b2\r\n\r\n--b2\r\nContent-Type: text/plain\r\n\r\nnews\r\n--b2\r\n"
    b"Content-Type: text/html\r\n\r\n<p>news</p>\r\n--b2--\r\n"
    b"--b1--\r\n"
)

BROKEN = (
    b"From alice Tue Oct  1 10:00:00 2024\nSubject: =?utf-8?B?broken\n"
    b'Content-Type: multipart/mixed; boundary="never"\nContent-Transfer-Encoding: base64\n'
    b"\n--never\nContent-Type: text/plain; charset=bogus\n\n\xff\xfe raw 8-bit \x00 bytes\n"
    b"--never\nContent-Type: application/pdf\nContent-Transfer-Encoding: base64\n\n@@@notbase64\n"
)

# ------------------------------------------------------------------------------ helpers


async def new_user(runtime: Runtime, **fields: Any) -> str:
    return await runtime.users.create(
        NewUser.from_fields({"username": "u" + uuid.uuid4().hex[:12], **fields})
    )


async def inbox(runtime: Runtime, user: str) -> str:
    return str((await runtime.mailboxes.inbox(user))["_id"])


async def mailbox_doc(runtime: Runtime, mailbox: str) -> Document:
    doc = await runtime.repositories.mailboxes.get(mailbox)
    assert doc is not None
    return doc


async def storage_used(runtime: Runtime, user: str) -> int:
    doc = await runtime.repositories.users.get(user, {"storageUsed": 1})
    assert doc is not None
    return int(doc.get("storageUsed", 0))


async def assert_consistent(runtime: Runtime, user: str) -> None:
    """Counters and quota equal a recount from the messages; refs and files agree."""
    messages = await runtime.repositories.messages.find(
        {"user": user}, {"mailbox": 1, "size": 1, "unseen": 1}
    )
    assert await storage_used(runtime, user) == sum(m["size"] for m in messages)
    for box in await runtime.repositories.mailboxes.find({"user": user}):
        mine = [m for m in messages if m["mailbox"] == box["_id"]]
        assert box.get("total", 0) == len(mine), box["path"]
        assert box.get("unseen", 0) == sum(1 for m in mine if m["unseen"]), box["path"]
        assert box.get("size", 0) == sum(m["size"] for m in mine), box["path"]
    await assert_no_orphans(runtime)


async def assert_no_orphans(runtime: Runtime) -> None:
    """Every stored attachment file has a ready reference and every reference a file; each
    reference count equals the messages (live and archived) that hold it."""
    refs = await runtime.repositories.attachment_refs.find({})
    files = await Bucket(runtime.database, "attachments").sizes()
    assert sorted(files) == sorted(r["file"] for r in refs)
    for ref in refs:
        assert ref["ready"] is True
        held = await runtime.repositories.messages.count({"atts": ref["_id"]})
        held += await runtime.repositories.archived.count({"atts": ref["_id"]})
        assert ref["count"] == held, ref["_id"]


# ------------------------------------------------------------------------------ round trips

ONE_MB = os.urandom(1024 * 1024)


@pytest.mark.parametrize(
    "raw",
    [
        plain(),
        HTML,
        with_attachment(ONE_MB),
        with_attachment(b"tiny"),
        FORWARDED,
        BROKEN,
        plain(body="x" * 100 + "\n" + "y" * (1536 * 1024)),  # raw over 1 MiB: a bodies file
        b"no header at all, no blank line",
        b"Subject: only a header\r\n",
    ],
    ids=[
        "plain",
        "html",
        "attachment",
        "small-attachment",
        "forwarded",
        "broken",
        "big",
        "bare",
        "header-only",
    ],
)
async def test_raw_comes_back_byte_identical(runtime: Runtime, raw: bytes) -> None:
    user = await new_user(runtime)
    box = await inbox(runtime, user)
    added = await runtime.messages.add_message(user, box, raw)
    assert added.size == len(raw) and added.uid == 1 and added.modseq == 1
    assert await runtime.messages.get_raw(user, added.id) == raw
    doc = await runtime.messages.get(user, box, added.uid)
    assert await runtime.messages.get_raw(user, doc) == raw
    assert doc["size"] == len(raw) and doc["unseen"] is True
    await assert_consistent(runtime, user)


SAMPLES = {
    path.stem: path.read_bytes()
    for path in sorted((Path(__file__).parent / "data" / "mime").glob("*.eml"))
}


@pytest.mark.parametrize("name", sorted(SAMPLES))
async def test_mime_samples_come_back_byte_identical(runtime: Runtime, name: str) -> None:
    """The MIME parser's corpus (bare LF, broken boundaries, 8-bit headers, digests...)."""
    user = await new_user(runtime)
    box = await inbox(runtime, user)
    raw = SAMPLES[name]
    added = await runtime.messages.add_message(user, box, raw)
    assert await runtime.messages.get_raw(user, added.id) == raw
    doc = await runtime.messages.get(user, box, added.uid)
    for info in doc["attachments"]:
        _, content = await runtime.messages.read_attachment(user, doc, info["id"])
        assert len(content) == info["size"]


async def test_parsed_fields_and_attachments(runtime: Runtime) -> None:
    user = await new_user(runtime)
    box = await inbox(runtime, user)
    raw = with_attachment(ONE_MB, subject="Report")
    added = await runtime.messages.add_message(user, box, raw, flags=["\\seen", "$Label"])
    doc = await runtime.messages.get(user, box, added.uid)
    assert doc["subject"] == "Report"
    assert doc["flags"] == ["\\Seen", "$Label"] and doc["unseen"] is False
    assert doc["from"] == [{"name": "", "address": "alice@example.com"}]
    assert doc["ha"] is True
    assert [a["filename"] for a in doc["attachments"]] == ["data.bin", "dot.png"]
    # the big body is cut out and shared; the 8-byte one stays inside the message
    digest = hashlib.sha256(ONE_MB).hexdigest()
    assert doc["atts"] == [doc["attachments"][0]["hash"]]
    assert next(s for s in doc["segments"] if "att" in s)["len"] > len(ONE_MB)
    info, content = await runtime.messages.read_attachment(user, doc, "att00001")
    assert content == ONE_MB and hashlib.sha256(content).hexdigest() == digest
    assert info["size"] == len(ONE_MB)
    _, small = await runtime.messages.read_attachment(user, added.id, "ATT00002")
    assert small == base64.b64decode(b"iVBORw0KGgo=")
    with pytest.raises(errors.AttachmentNotFound):
        await runtime.messages.read_attachment(user, doc, "ATT00003")
    # the range reader fetches only what it needs: the header, without the attachment
    header = await runtime.messages.read_range(doc, 0, 40)
    assert header == raw[:40]
    view = await runtime.messages.view(user, added.id)
    assert (await runtime.messages.body(user, added.id)).html == ["<p>See attached.</p>"]
    assert view.envelope.startswith(b'(NIL "Report" ((NIL NIL "alice" "example.com"))')
    assert view.bodystructure.startswith(b'(("text" "plain"')
    tree = MimeNode.from_dict(view.mime, raw)
    assert [child.content_type for child in tree.children] == [
        "text/plain",
        "application/octet-stream",
        "image/png",
    ]


# ------------------------------------------------------------------------------ dedup


async def test_fifty_messages_share_one_attachment_file(runtime: Runtime) -> None:
    user = await new_user(runtime)
    box = await inbox(runtime, user)
    content = os.urandom(1024 * 1024)
    added = [
        await runtime.messages.add_message(user, box, with_attachment(content, subject=f"m{i}"))
        for i in range(50)
    ]
    doc = await runtime.messages.get(user, box, added[0].uid)
    digest = doc["atts"][0]
    ref = await runtime.repositories.attachment_refs.get(digest)
    assert ref is not None and ref["count"] == 50 and ref["ready"] is True
    files = await Bucket(runtime.database, "attachments").sizes()
    assert ref["file"] in files
    assert sum(1 for f in files if f == ref["file"]) == 1
    # 49 deletions (some archived, some not) keep the file
    for index, message in enumerate(added[:49]):
        await runtime.messages.delete(user, box, message.uid, archive=index % 2 == 0)
    await runtime.retention.run_once(utcnow() + timedelta(days=31))  # purges the archived ones
    ref = await runtime.repositories.attachment_refs.get(digest)
    assert ref is not None and ref["count"] == 1
    assert ref["file"] in await Bucket(runtime.database, "attachments").sizes()
    await assert_consistent(runtime, user)
    # the last one goes to the archive: still referenced until the purge
    await runtime.messages.delete(user, box, added[49].uid)
    ref = await runtime.repositories.attachment_refs.get(digest)
    assert ref is not None and ref["count"] == 1
    report = await runtime.retention.run_once(utcnow() + timedelta(days=31))
    assert report.purged == 1
    assert await runtime.repositories.attachment_refs.get(digest) is None
    assert ref["file"] not in await Bucket(runtime.database, "attachments").sizes()
    await assert_consistent(runtime, user)


# ------------------------------------------------------------------------------ rejections


async def test_over_quota_is_refused_before_anything_is_stored(runtime: Runtime) -> None:
    user = await new_user(runtime, quota=3000)
    box = await inbox(runtime, user)
    first = plain(body="a" * 1000)
    await runtime.messages.add_message(user, box, first)
    before = await mailbox_doc(runtime, box)
    content = os.urandom(5000)
    with pytest.raises(errors.OverQuotaError) as caught:
        await runtime.messages.add_message(user, box, with_attachment(content))
    assert caught.value.details == {"allowed": 3000, "used": len(first)}
    assert await storage_used(runtime, user) == len(first)
    after = await mailbox_doc(runtime, box)
    assert (after["total"], after["unseen"], after["size"]) == (
        before["total"],
        before["unseen"],
        before["size"],
    )
    # the uid was taken alongside the quota check: a refused add may leave a gap (IMAP allows)
    assert after["uidNext"] in (before["uidNext"], before["uidNext"] + 1)
    assert await runtime.repositories.messages.count({"user": user}) == 1
    await assert_consistent(runtime, user)


async def test_empty_and_oversized_messages(runtime: Runtime) -> None:
    user = await new_user(runtime)
    box = await inbox(runtime, user)
    for raw in (b"", b" \r\n\t\r\n"):
        with pytest.raises(errors.EmptyMessage):
            await runtime.messages.add_message(user, box, raw)
    small = service_with(runtime, settings=StoreSettings(max_size=100))
    with pytest.raises(errors.PayloadTooLarge) as caught:
        await small.add_message(user, box, plain(body="z" * 200))
    assert caught.value.details is not None and caught.value.details["allowed"] == 100
    assert await storage_used(runtime, user) == 0


async def test_unknown_user_or_mailbox(runtime: Runtime) -> None:
    user = await new_user(runtime)
    with pytest.raises(errors.NoSuchMailbox):
        await runtime.messages.add_message(user, "0" * 24, plain())
    assert await storage_used(runtime, user) == 0
    with pytest.raises(errors.UserNotFound):
        await runtime.messages.add_message("1" * 24, await inbox(runtime, user), plain())


# ------------------------------------------------------------------------------ faults


class FailingUploads(Bucket):
    """A bucket whose uploads store the file and then fail, as a connection lost at the end
    of an upload would: the store must remove the file it cannot account for."""

    async def upload(self, file_id: str, data: bytes, *, filename: str, metadata: Any) -> None:
        await super().upload(file_id, data, filename=filename, metadata=metadata)
        raise errors.InternalDatabaseError()


class FailingInserts(Messages):
    async def insert(self, document: Document) -> None:
        raise errors.InternalDatabaseError()

    async def insert_each(self, documents: Sequence[Document]) -> list[Exception | None]:
        raise errors.InternalDatabaseError()


def service_with(runtime: Runtime, **replace: Any) -> MessageService:
    service = build_message_service(
        runtime.database,
        runtime.repositories,
        runtime.journal,
        attachment_bucket=replace.pop("attachment_bucket", None),
        settings=replace.pop("settings", None),
    )
    for name, value in replace.items():
        setattr(service, f"_{name}", value)
    return service


async def test_failed_upload_leaves_nothing_behind(runtime: Runtime) -> None:
    user = await new_user(runtime)
    box = await inbox(runtime, user)
    service = service_with(
        runtime, attachment_bucket=FailingUploads(runtime.database, "attachments")
    )
    content = os.urandom(200_000)
    digest_source = with_attachment(content)
    before = await mailbox_doc(runtime, box)
    with pytest.raises(errors.StoreError):
        await service.add_message(user, box, digest_source)
    assert await storage_used(runtime, user) == 0
    assert await runtime.repositories.messages.count({"user": user}) == 0
    after = await mailbox_doc(runtime, box)
    assert (after["total"], after["size"], after["uidNext"]) == (0, 0, before["uidNext"])
    digest = next(
        a.hash for a in __import__("wildpy.mime").mime.parse_message(digest_source).attachments
    )
    assert await runtime.repositories.attachment_refs.get(digest) is None
    await assert_no_orphans(runtime)
    # the same message stores fine once storage works again
    added = await runtime.messages.add_message(user, box, digest_source)
    assert await runtime.messages.get_raw(user, added.id) == digest_source
    await assert_consistent(runtime, user)


async def test_failed_insert_undoes_every_step(runtime: Runtime) -> None:
    user = await new_user(runtime)
    box = await inbox(runtime, user)
    service = service_with(runtime, messages=FailingInserts(runtime.database))
    raw = plain(body="q" * (1200 * 1024)) + b"\r\n"  # a bodies file too
    raw = with_attachment(os.urandom(300_000)).replace(b"See attached.", b"z" * (1100 * 1024))
    with pytest.raises(errors.StoreError):
        await service.add_message(user, box, raw)
    assert await storage_used(runtime, user) == 0
    box_doc = await mailbox_doc(runtime, box)
    assert (box_doc["total"], box_doc["unseen"], box_doc["size"]) == (0, 0, 0)
    # the message's reference keys are gone (a subject key may stay: it is harmless)
    keys = [doc["_id"] for doc in await runtime.repositories.threads.find({"user": user})]
    assert not [key for key in keys if ":r:" in key]
    assert await runtime.repositories.attachment_refs.count({}) == len(
        await Bucket(runtime.database, "attachments").sizes()
    )
    bodies = await Bucket(runtime.database, "bodies").sizes()
    live = {m.get("segmentsFile") for m in await runtime.repositories.messages.find({})}
    archived = {m.get("segmentsFile") for m in await runtime.repositories.archived.find({})}
    assert set(bodies) <= live | archived
    await assert_consistent(runtime, user)


async def test_cancelled_add_finishes_or_undoes_itself(runtime: Runtime) -> None:
    user = await new_user(runtime)
    box = await inbox(runtime, user)
    for delay in (0.0, 0.002, 0.01, 0.05):
        raw = with_attachment(os.urandom(300_000), subject=f"cancel {delay}")
        task = asyncio.create_task(runtime.messages.add_message(user, box, raw))
        await asyncio.sleep(delay)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await runtime.messages.settle()
        await assert_consistent(runtime, user)


# ------------------------------------------------------------------------------ threads


async def test_threads(runtime: Runtime) -> None:
    user = await new_user(runtime)
    box = await inbox(runtime, user)
    first = plain(subject="Lunch", Message_ID="<root@x>")
    first = first.replace(first.split(b"Message-ID: ")[1].split(b"\r\n")[0], b"<root@x>", 1)
    a = await runtime.messages.add_message(user, box, first)
    reply = await runtime.messages.add_message(
        user, box, plain(subject="Re: Lunch", In_Reply_To="<root@x>", References="<root@x>")
    )
    by_subject = await runtime.messages.add_message(user, box, plain(subject="RE: [team] lunch"))
    unrelated = await runtime.messages.add_message(user, box, plain(subject="Lunch"))
    other_subject = await runtime.messages.add_message(
        user, box, plain(subject="Dinner", References="<root@x>")
    )
    assert reply.thread == a.thread
    assert by_subject.thread == a.thread
    assert unrelated.thread != a.thread
    assert other_subject.thread not in (a.thread, unrelated.thread)


# ------------------------------------------------------------------------------ changes


async def test_flags_move_and_journal(runtime: Runtime) -> None:
    user = await new_user(runtime)
    box = await inbox(runtime, user)
    trash = str((await runtime.mailboxes.by_special_use(user, "\\Trash"))["_id"])
    added = await runtime.messages.add_message(user, box, plain())
    change = await runtime.messages.update_flags(user, box, added.uid, add=["\\Seen", "\\Flagged"])
    assert change.changed and change.modseq == 2 and change.flags == ["\\Seen", "\\Flagged"]
    assert (await mailbox_doc(runtime, box))["unseen"] == 0
    same = await runtime.messages.update_flags(user, box, added.uid, add=["\\seen"])
    assert not same.changed and same.modseq == 2
    change = await runtime.messages.update_flags(user, box, added.uid, remove=["\\Seen"])
    assert change.flags == ["\\Flagged"] and (await mailbox_doc(runtime, box))["unseen"] == 1
    moved = await runtime.messages.move(user, box, added.uid, trash)
    assert moved.mailbox == trash and moved.uid == 1 and moved.source_uid == added.uid
    doc = await runtime.messages.get(user, trash, moved.uid)
    assert doc["exp"] is True and doc["rdate"] > epoch_ms(utcnow())  # Trash keeps 30 days
    with pytest.raises(errors.MessageNotFound):
        await runtime.messages.get(user, box, added.uid)
    events = await runtime.journal.since(user, None)
    commands = [(e["command"], e.get("uid")) for e in events if e["command"] != "CREATE"]
    assert commands == [
        ("EXISTS", 1),
        ("FETCH", 1),
        ("FETCH", 1),
        ("EXPUNGE", 1),
        ("EXISTS", 1),
    ]
    await assert_consistent(runtime, user)


async def test_delete_archives_and_releases_quota(runtime: Runtime) -> None:
    user = await new_user(runtime)
    box = await inbox(runtime, user)
    kept = await runtime.messages.add_message(user, box, plain())
    draft = await runtime.messages.add_message(user, box, plain(), flags=["\\Draft"])
    gone = await runtime.messages.delete(user, box, kept.uid)
    assert gone.archived is True
    not_archived = await runtime.messages.delete(user, box, draft.uid)
    assert not_archived.archived is False
    assert await storage_used(runtime, user) == 0
    archived = await runtime.repositories.archived.find({"user": user})
    assert [a["_id"] for a in archived] == [kept.id]
    assert await runtime.messages.get_raw(user, archived[0]) == await _raw_of(archived[0])
    with pytest.raises(errors.MessageNotFound):
        await runtime.messages.delete(user, box, kept.uid)
    await assert_consistent(runtime, user)


async def _raw_of(doc: Document) -> bytes:
    return b"".join(inline_bytes(segment, doc) for segment in doc["segments"])


async def test_retention_expires_with_tombstones(runtime: Runtime) -> None:
    user = await new_user(runtime)
    box = await inbox(runtime, user)
    junk = str((await runtime.mailboxes.by_special_use(user, "\\Junk"))["_id"])
    spam = await runtime.messages.add_message(user, junk, with_attachment(os.urandom(100_000)))
    keep = await runtime.messages.add_message(user, box, plain())
    later = utcnow() + timedelta(days=31)
    report = await runtime.retention.run_once(later)
    assert report.expired >= 1
    with pytest.raises(errors.MessageGone):
        await runtime.messages.get(user, junk, spam.uid)
    with pytest.raises(errors.MessageGone):
        await runtime.messages.get_by_id(user, spam.id)
    assert (await runtime.messages.get(user, box, keep.uid))["uid"] == keep.uid
    assert await storage_used(runtime, user) == keep.size
    await assert_consistent(runtime, user)
    await runtime.retention.run_once(later + timedelta(days=31))  # tombstones are dropped
    with pytest.raises(errors.MessageNotFound):
        await runtime.messages.get(user, junk, spam.uid)


async def test_purged_archive_answers_gone(runtime: Runtime) -> None:
    user = await new_user(runtime)
    box = await inbox(runtime, user)
    added = await runtime.messages.add_message(user, box, plain())
    await runtime.messages.delete(user, box, added.uid)
    await runtime.retention.run_once(utcnow() + timedelta(days=31))
    assert await runtime.repositories.archived.count({"user": user}) == 0
    tombstone = await runtime.repositories.tombstones.get(added.id)
    assert tombstone is not None and tombstone["reason"] == "purged"
    # the uid itself was deleted by its user: that stays a plain 404
    with pytest.raises(errors.MessageNotFound):
        await runtime.messages.get(user, box, added.uid)


async def test_delete_mailbox_messages_releases_everything(runtime: Runtime) -> None:
    user = await new_user(runtime)
    folder = await runtime.mailboxes.create(user, "Projects")
    content = os.urandom(50_000)
    for index in range(7):
        await runtime.messages.add_message(user, folder, with_attachment(content, f"p{index}"))
    await runtime.messages.add_message(user, folder, plain(body="b" * (1100 * 1024)))
    assert await runtime.messages.delete_mailbox_messages(user, folder, batch=3) == 8
    assert await runtime.messages.delete_mailbox_messages(user, folder) == 0
    assert await storage_used(runtime, user) == 0
    assert await runtime.repositories.messages.count({"user": user}) == 0
    await assert_consistent(runtime, user)
    # through the mailbox service, as REST and IMAP delete folders
    other = await runtime.mailboxes.create(user, "Old")
    await runtime.messages.add_message(user, other, plain())
    await runtime.mailboxes.delete(user, other)
    assert await storage_used(runtime, user) == 0


async def test_delete_user_messages_for_account_purge(runtime: Runtime) -> None:
    user = await new_user(runtime)
    box = await inbox(runtime, user)
    content = os.urandom(40_000)
    for index in range(4):
        await runtime.messages.add_message(user, box, with_attachment(content, f"u{index}"))
    await runtime.messages.delete(user, box, 1)  # archived, still holding the attachment
    assert await runtime.messages.delete_user_messages(user, batch=2) == 4
    assert await runtime.repositories.messages.count({"user": user}) == 0
    assert await runtime.repositories.archived.count({"user": user}) == 0
    assert await storage_used(runtime, user) == 0
    await assert_consistent(runtime, user)


async def test_listing_pages_newest_first(runtime: Runtime) -> None:
    user = await new_user(runtime)
    box = await inbox(runtime, user)
    for index in range(7):
        await runtime.messages.add_message(
            user, box, plain(subject=f"n{index}"), flags=["\\Seen"] if index % 2 else []
        )
    first = await runtime.messages.list_messages(user, box, limit=3)
    assert [m["uid"] for m in first.results] == [7, 6, 5] and first.total == 7
    assert "segments" not in first.results[0] and "text" not in first.results[0]
    assert isinstance(first.next_cursor, str) and first.previous_cursor is False
    second = await runtime.messages.list_messages(
        user, box, limit=3, next_cursor=first.next_cursor, page=2
    )
    assert [m["uid"] for m in second.results] == [4, 3, 2] and second.page == 2
    assert isinstance(second.previous_cursor, str)
    back = await runtime.messages.list_messages(
        user, box, limit=3, previous_cursor=second.previous_cursor, page=1
    )
    assert [m["uid"] for m in back.results] == [7, 6, 5]
    unseen = await runtime.messages.list_messages(user, box, limit=10, unseen=True)
    assert [m["uid"] for m in unseen.results] == [7, 5, 3, 1] and unseen.total == 4
    oldest = await runtime.messages.list_messages(user, box, limit=2, ascending=True)
    assert [m["uid"] for m in oldest.results] == [1, 2]


async def test_round_trips_per_add(runtime: Runtime) -> None:
    user = await new_user(runtime)
    box = await inbox(runtime, user)
    await runtime.messages.add_message(user, box, plain())  # warm up (connections)
    counter = runtime.database.commands
    counter.reset()
    await runtime.messages.add_message(user, box, plain(subject="counted"))
    assert counter.count <= 6, counter.by_name
