"""The messages REST API (WildDuck reference 5.6) through real requests against the real
(embedded) database: upload in every form, list and page both ways, read, download raw sources
and attachments byte for byte, flag, move, delete, restore from the archive, the errors of the
contract, and the events `/updates` streams meanwhile.

All tests of this module share one database, so each test works with its own users.
"""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from conftest import Api, assert_error
from message_samples import (
    PNG,
    Sample,
    all_pages,
    corpus,
    decoded_attachments,
    fetch,
    listing,
    mailbox_ids,
    new_user,
    plain,
    send,
    stored_file,
    upload,
    upload_raw,
)
from test_updates_api import open_stream

from wildpy.runtime import Runtime
from wildpy.storage.database import new_id
from wildpy.storage.keyset import SLACK, decode_position

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
LISTING_KEYS = {
    "id",
    "mailbox",
    "thread",
    "from",
    "to",
    "cc",
    "bcc",
    "messageId",
    "subject",
    "date",
    "idate",
    "intro",
    "attachments",
    "attachmentsList",
    "size",
    "seen",
    "deleted",
    "flagged",
    "draft",
    "answered",
    "forwarded",
    "references",
}


async def loaded_user(api: Api) -> tuple[str, str, list[Sample], dict[str, int]]:
    """A new user with the 20 sample messages in INBOX: (user, inbox, samples, uid by name)."""
    user = await new_user(api)
    inbox = (await mailbox_ids(api, user))["INBOX"]
    samples = corpus(await stored_file(api, user))
    uids = {}
    for sample in samples:
        uids[sample.name] = await upload(api, user, inbox, sample)
    return user, inbox, samples, uids


def message_path(user: str, mailbox: str, uid: int) -> str:
    return f"/users/{user}/mailboxes/{mailbox}/messages/{uid}"


# ---------------------------------------------------------------------------------- upload, read


async def test_upload_list_read_and_download_everything(api: Api) -> None:
    user, inbox, samples, uids = await loaded_user(api)
    assert sorted(uids.values()) == list(range(1, 21))

    # listing: newest first by internal date; the one uploaded with an old date comes last
    body = await listing(api, user, inbox, limit=250)
    assert body["total"] == 20 and body["page"] == 1
    assert body["previousCursor"] is False and body["nextCursor"] is False
    rows = body["results"]
    assert rows[-1]["id"] == uids["old20"] and rows[-1]["idate"] == "2020-01-02T03:04:05.000Z"
    idates = [row["idate"] for row in rows]
    assert idates == sorted(idates, reverse=True)
    for row in rows:
        assert set(row) >= LISTING_KEYS, row
        assert row["mailbox"] == inbox and ISO.match(row["idate"])
        assert "metaData" not in row and "headers" not in row
    by_uid = {row["id"]: row for row in rows}

    for sample in samples:
        uid = uids[sample.name]
        row = by_uid[uid]
        assert row["subject"] == sample.subject, sample.name
        if sample.from_address:
            assert row["from"]["address"] == sample.from_address
        if sample.to_address:
            assert sample.to_address in [a["address"] for a in row["to"]]

        # the full message
        status, message = await api.get(message_path(user, inbox, uid))
        assert status == 200, message
        assert message["id"] == uid and message["user"] == user and message["mailbox"] == inbox
        assert message["subject"] == sample.subject
        assert sample.word in message["text"] or sample.name == "broken15", sample.name
        assert isinstance(message["html"], list)
        assert message["attachments"] == row["attachmentsList"]

        # the raw source, byte for byte
        status, headers, raw = await fetch(api, message_path(user, inbox, uid) + "/message.eml")
        assert status == 200
        assert headers["Content-Type"] == "message/rfc822"
        assert headers["X-Request-Id"]  # binary answers carry it too
        if sample.raw is not None:
            assert raw == sample.raw, sample.name
        assert len(raw) == message["size"] == row["size"]

        # every attachment, decoded, with its content type
        contents = []
        for info in message["attachments"]:
            status, headers, content = await fetch(
                api, message_path(user, inbox, uid) + f"/attachments/{info['id']}"
            )
            assert status == 200, info
            assert headers["Content-Type"].split(";")[0] == info["contentType"]
            assert headers["X-Content-Type-Options"] == "nosniff"
            assert len(content) == info["size"]
            contents.append(content)
        if sample.attachments is not None:
            assert contents == sample.attachments, sample.name
        if sample.name.startswith("mixed"):
            assert contents == decoded_attachments(raw)


async def test_listing_pages_both_ways(api: Api) -> None:
    user, inbox, _, _ = await loaded_user(api)
    path = f"/users/{user}/mailboxes/{inbox}/messages"
    newest_first = [row["id"] for row in (await listing(api, user, inbox, limit=250))["results"]]
    oldest_first = [
        row["id"] for row in (await listing(api, user, inbox, limit=250, order="asc"))["results"]
    ]
    assert oldest_first == newest_first[::-1]
    for order, expected in (("desc", newest_first), ("asc", oldest_first)):
        assert [row["id"] for row in await all_pages(api, path, limit=7, order=order)] == expected

    # forward three pages of 7, then back again with the previous cursors
    pages = []
    params: dict[str, Any] = {"limit": 7}
    for number in (1, 2, 3):
        body = await listing(api, user, inbox, **params)
        assert body["page"] == number
        pages.append([row["id"] for row in body["results"]])
        params = {"limit": 7, "next": body["nextCursor"], "page": number + 1}
    assert [len(p) for p in pages] == [7, 7, 6] and body["nextCursor"] is False
    back = await listing(api, user, inbox, limit=7, previous=body["previousCursor"], page=2)
    assert [row["id"] for row in back["results"]] == pages[1]
    back = await listing(api, user, inbox, limit=7, previous=back["previousCursor"], page=2)
    assert [row["id"] for row in back["results"]] == pages[0]
    assert back["previousCursor"] is False and back["page"] == 1

    # the unseen filter and its total (two were uploaded unseen)
    unseen = await listing(api, user, inbox, unseen="true")
    assert unseen["total"] == 2 and len(unseen["results"]) == 2
    assert all(row["seen"] is False for row in unseen["results"])
    seen = await listing(api, user, inbox, unseen="false", limit=250)
    assert seen["total"] == 18 and len(seen["results"]) == 18

    # cursors are checked
    status, body = await api.get(path, params={"next": "not*valid"})
    assert_error(status, body, 400, "InputValidationError")


async def test_listing_options(api: Api) -> None:
    user, inbox, _, uids = await loaded_user(api)
    body = await listing(
        api, user, inbox, limit=250, includeHeaders="subject,x-campaign", metaData="true"
    )
    rows = {row["id"]: row for row in body["results"]}
    composed = rows[uids["composed16"]]
    assert composed["headers"] == {"subject": "Composed message 16", "x-campaign": "spring"}
    assert rows[uids["meta19"]]["metaData"] == {"kind": "meta", "n": 19}
    assert rows[uids["plain1"]]["metaData"] == {}
    assert rows[uids["meta19"]]["flagged"] is True

    everything = await listing(api, user, inbox, limit=1, includeHeaders="true")
    assert "from" in everything["results"][0]["headers"]

    threads = await listing(api, user, inbox, limit=250, threadCounters="true")
    assert all(row["threadMessageCount"] >= 1 for row in threads["results"])

    # attachment flags: a related inline image is listed but is not "an attachment"
    assert rows[uids["html7"]]["attachments"] is False
    assert rows[uids["html7"]]["attachmentsList"][0]["related"] is True
    assert rows[uids["mixed10"]]["attachments"] is True
    assert [a["filename"] for a in rows[uids["mixed10"]]["attachmentsList"]] == [
        "report.pdf",
        "notes.txt",
        "shared.bin",
    ]


async def test_message_view_details(api: Api, runtime: Runtime) -> None:
    user, inbox, _, uids = await loaded_user(api)
    path = message_path(user, inbox, uids["html7"])

    status, body = await api.get(path)
    assert status == 200
    html = "".join(body["html"])
    assert 'src="attachment:ATT00001"' in html and "cid:" not in html
    status, body = await api.get(path, params={"replaceCidLinks": "true"})
    assert f'src="{path}/attachments/ATT00001"' in "".join(body["html"])
    status, headers, content = await fetch(api, f"{path}/attachments/ATT00001")
    assert (status, content) == (200, PNG)

    # composed: From, Cc, the data: image became an inline attachment, the extra header
    status, body = await api.get(message_path(user, inbox, uids["composed16"]))
    assert body["from"] == {"name": "Composer", "address": "composer@example.com"}
    assert body["cc"] == [{"name": "", "address": "cc16@example.net"}]
    assert [a["contentType"] for a in body["attachments"]] == ["image/png", "text/csv"]
    assert "attachment:ATT00001" in "".join(body["html"])
    assert body["seen"] is True and body["draft"] is False

    # files from storage are listed in the message, metaData comes back
    status, body = await api.get(message_path(user, inbox, uids["files17"]))
    assert body["files"][0]["filename"] == "stored.txt"
    assert body["from"]["address"].startswith("msg")  # the user's own address by default
    status, body = await api.get(message_path(user, inbox, uids["meta19"]))
    assert body["metaData"] == {"kind": "meta", "n": 19}

    # markAsSeen
    unseen_uid = uids["rfc18"]
    status, body = await api.get(message_path(user, inbox, unseen_uid))
    assert body["seen"] is False
    status, body = await api.get(message_path(user, inbox, unseen_uid), params={"markAsSeen": "1"})
    assert body["seen"] is True
    status, body = await api.get(message_path(user, inbox, unseen_uid))
    assert body["seen"] is True

    # the broken one is stored and readable all the same
    status, body = await api.get(message_path(user, inbox, uids["broken15"]))
    assert status == 200 and "brokenword15" in body["text"]

    # sendAsString gives text attachments as UTF-8 text
    status, headers, content = await fetch(
        api,
        message_path(user, inbox, uids["mixed10"]) + "/attachments/att00002",
        sendAsString="true",
    )
    assert status == 200 and content == b"notes for 10\n"
    assert headers["Content-Type"] == "text/plain; charset=utf-8"
    assert 'filename="notes.txt"' in headers["Content-Disposition"]


async def test_upload_variants(api: Api) -> None:
    user = await new_user(api)
    boxes = await mailbox_ids(api, user)
    inbox, drafts = boxes["INBOX"], boxes["\\Drafts"]
    raw = plain(1, "variantword", sender="a@example.com", to="b@example.com", subject="Orig")

    status, body = await api.post(
        f"/users/{user}/mailboxes/{inbox}/messages",
        {"raw": raw, "flagged": "yes", "draft": True, "metaData": '{"a": 1}'},
    )
    assert status == 200, body
    assert body["message"] == {"id": 1, "mailbox": inbox, "size": len(raw.encode())}
    status, body = await api.get(message_path(user, inbox, 1))
    assert (body["flagged"], body["draft"], body["seen"], body["metaData"]) == (
        True,
        True,
        True,
        {"a": 1},
    )

    # a reply: In-Reply-To and References, recipients from the original, stored as a draft
    status, body = await api.post(
        f"/users/{user}/mailboxes/{drafts}/messages",
        {
            "text": "My answer",
            "reference": {"mailbox": inbox, "id": 1, "action": "reply"},
        },
    )
    assert status == 200, body
    status, reply = await api.get(message_path(user, drafts, body["message"]["id"]))
    assert reply["draft"] is True and reply["subject"] == "Orig"
    assert reply["to"] == [{"name": "Sender 1", "address": "a@example.com"}]
    assert reply["reference"] == {"action": "reply", "mailbox": inbox, "id": 1}
    status, _, source = await fetch(
        api, message_path(user, drafts, body["message"]["id"]) + "/message.eml"
    )
    assert b"In-Reply-To: <plain1." in source

    # replacePrevious: the new draft replaces the older one
    status, body = await api.post(
        f"/users/{user}/mailboxes/{drafts}/messages",
        {"text": "Second version", "draft": True, "replacePrevious": {"id": body["message"]["id"]}},
    )
    assert status == 200 and body["previousDeleted"] is True
    status, body2 = await api.post(
        f"/users/{user}/mailboxes/{drafts}/messages",
        {"text": "Third", "replacePrevious": {"id": 999}},
    )
    assert status == 200 and body2["previousDeleteError"].startswith("Failed to delete previous")

    # unknown keys, bad addresses and bad attachment content are refused
    path = f"/users/{user}/mailboxes/{inbox}/messages"
    status, body = await api.post(path, {"raw": raw, "bogus": 1})
    assert_error(status, body, 400, "InputValidationError")
    status, body = await api.post(path, {"to": [{"address": "not an address"}]})
    assert_error(status, body, 400, "InputValidationError")
    status, body = await api.post(path, {"attachments": [{"content": "***"}]})
    assert_error(status, body, 400, "InputValidationError")
    status, body = await api.post(path, {"headers": [{"key": "X-A", "value": "a\r\nBcc: x@y"}]})
    assert_error(status, body, 400, "InputValidationError")
    status, body = await api.post(path, {"metaData": "[1, 2]"})
    assert_error(status, body, 400, "InputValidationError")
    status, body = await api.post(path, {"files": [new_id()]})
    assert_error(status, body, 404, "FileNotFound")

    # a recipient that policy.SMTP cannot write (a non-ASCII local part needs SMTPUTF8)
    status, body = await api.post(path, {"to": [{"address": "üser@example.com"}], "text": "x"})
    assert_error(status, body, 500, "ERRCOMPOSE")
    assert "ASCII" not in body["error"]  # no exception text in a 5xx body


# ---------------------------------------------------------------------------------- changes


async def test_flag_move_and_bulk_updates(api: Api) -> None:
    user = await new_user(api)
    boxes = await mailbox_ids(api, user)
    inbox = boxes["INBOX"]
    status, body = await api.post(f"/users/{user}/mailboxes", {"path": "Projects"})
    assert status == 200, body
    projects = body["id"]
    for n in range(1, 11):
        raw = plain(n, f"w{n}", sender="s@example.com", to="t@example.com", subject=f"M{n}")
        await upload_raw(api, user, inbox, raw, unseen=True)

    # one message
    status, body = await api.put(message_path(user, inbox, 3), {"seen": True, "flagged": True})
    assert (status, body) == (200, {"success": True, "updated": 1})
    status, body = await api.get(message_path(user, inbox, 3))
    assert (body["seen"], body["flagged"]) == (True, True)

    # a range, a list, an open range; the bulk form takes the set in the body
    status, body = await api.put(message_path(user, inbox, 1) + ":5", {"seen": True})
    assert body["updated"] == 5
    status, body = await api.put(
        f"/users/{user}/mailboxes/{inbox}/messages", {"message": "7,9,42", "deleted": True}
    )
    assert body["updated"] == 2
    status, body = await api.put(message_path(user, inbox, 8) + ":*", {"draft": True})
    assert body["updated"] == 3
    rows = {r["id"]: r for r in (await listing(api, user, inbox, limit=250))["results"]}
    assert [uid for uid, r in sorted(rows.items()) if r["seen"]] == [1, 2, 3, 4, 5]
    assert [uid for uid, r in sorted(rows.items()) if r["deleted"]] == [7, 9]
    assert [uid for uid, r in sorted(rows.items()) if r["draft"]] == [8, 9, 10]

    # counters follow
    status, body = await api.get(f"/users/{user}/mailboxes/{inbox}")
    assert (body["total"], body["unseen"]) == (10, 5)

    # expires and metaData
    soon = datetime.now(UTC) + timedelta(days=3)
    status, body = await api.put(
        message_path(user, inbox, 2), {"expires": soon.isoformat(), "metaData": {"tag": "x"}}
    )
    assert body["updated"] == 1
    status, body = await api.get(message_path(user, inbox, 2))
    assert body["expires"][:16] == soon.strftime("%Y-%m-%dT%H:%M")
    assert body["metaData"] == {"tag": "x"}
    status, body = await api.put(message_path(user, inbox, 2), {"expires": False})
    status, body = await api.get(message_path(user, inbox, 2))
    assert "expires" not in body

    # moves
    status, body = await api.put(message_path(user, inbox, 4), {"moveTo": projects})
    assert body == {"success": True, "mailbox": projects, "id": [[4, 1]]}
    status, body = await api.put(
        f"/users/{user}/mailboxes/{inbox}/messages",
        {"message": "5:6", "moveTo": projects, "flagged": True},
    )
    assert body["id"] == [[5, 2], [6, 3]]
    moved = await listing(api, user, projects, order="asc")
    assert [r["id"] for r in moved["results"]] == [1, 2, 3]
    assert [r["flagged"] for r in moved["results"]] == [False, True, True]
    status, body = await api.get(message_path(user, inbox, 4))
    assert_error(status, body, 404, "MessageNotFound")

    # nothing to change, nothing matched, a target that does not exist
    status, body = await api.put(message_path(user, inbox, 1), {})
    assert_error(status, body, 400, "NoUpdates")
    status, body = await api.put(message_path(user, inbox, 100) + ":200", {"seen": True})
    assert_error(status, body, 404, "MessageNotFound")
    status, body = await api.put(message_path(user, inbox, 1), {"moveTo": new_id()})
    assert_error(status, body, 404, "NoSuchMailbox")
    status, body = await api.put(message_path(user, inbox, 1) + ":x", {"seen": True})
    assert_error(status, body, 400, "InputValidationError")


async def test_delete_archive_and_restore(api: Api, runtime: Runtime) -> None:
    user = await new_user(api)
    boxes = await mailbox_ids(api, user)
    inbox = boxes["INBOX"]
    for n in range(1, 6):
        raw = plain(n, f"d{n}", sender="s@example.com", to="t@example.com", subject=f"Del {n}")
        await upload_raw(api, user, inbox, raw, flagged=n == 2)
    draft_uid = await upload_raw(
        api,
        user,
        inbox,
        plain(9, "dr", sender="s@x.com", to="t@x.com", subject="Draft"),
        draft=True,
    )
    status, _, source = await fetch(api, message_path(user, inbox, 2) + "/message.eml")
    assert status == 200
    used_before = (await api.get(f"/users/{user}"))[1]["limits"]["quota"]["used"]

    status, body = await api.delete(message_path(user, inbox, 2))
    assert (status, body) == (200, {"success": True})
    status, body = await api.delete(message_path(user, inbox, draft_uid))
    assert status == 200
    status, body = await api.get(message_path(user, inbox, 2))
    assert_error(status, body, 404, "MessageNotFound")
    used_after = (await api.get(f"/users/{user}"))[1]["limits"]["quota"]["used"]
    assert used_after == used_before - len(source) - len(
        plain(9, "dr", sender="s@x.com", to="t@x.com", subject="Draft").encode()
    )

    # the archive lists the deleted message (the draft is gone for good), with `success`
    status, archived = await api.get(f"/users/{user}/archived/messages")
    assert status == 200 and archived["success"] is True
    assert archived["total"] == 1 and len(archived["results"]) == 1
    entry = archived["results"][0]
    assert re.fullmatch(r"[0-9a-f]{24}", entry["id"]) and entry["subject"] == "Del 2"
    assert entry["mailbox"] == inbox

    # restore it by its archived id: back in INBOX with a new uid, same bytes, same flags
    status, body = await api.post(f"/users/{user}/archived/messages/{entry['id']}/restore")
    assert status == 200, body
    assert body["mailbox"] == inbox and body["id"] == draft_uid + 1
    status, _, restored = await fetch(api, message_path(user, inbox, body["id"]) + "/message.eml")
    assert restored == source
    status, message = await api.get(message_path(user, inbox, body["id"]))
    assert message["flagged"] is True and message["subject"] == "Del 2"
    assert (await api.get(f"/users/{user}"))[1]["limits"]["quota"]["used"] == used_before - len(
        plain(9, "dr", sender="s@x.com", to="t@x.com", subject="Draft").encode()
    )
    status, body = await api.post(f"/users/{user}/archived/messages/{entry['id']}/restore")
    assert_error(status, body, 404, "MessageNotFound")

    # empty the mailbox, then restore a date range into another mailbox... its own, INBOX
    status, body = await api.delete(f"/users/{user}/mailboxes/{inbox}/messages")
    assert (status, body) == (200, {"success": True, "deleted": 5, "errors": 0})
    assert (await listing(api, user, inbox))["total"] == 0
    rows = await all_pages(api, f"/users/{user}/archived/messages", limit=2)
    assert len(rows) == 5
    asc = await all_pages(api, f"/users/{user}/archived/messages", limit=2, order="asc")
    assert [r["id"] for r in asc] == [r["id"] for r in rows][::-1]

    # one goes to another mailbox of the user's choosing
    trash = boxes["\\Trash"]
    status, body = await api.post(
        f"/users/{user}/archived/messages/{rows[0]['id']}/restore", {"mailbox": trash}
    )
    assert status == 200 and body["mailbox"] == trash
    now = datetime.now(UTC)
    status, body = await api.post(
        f"/users/{user}/archived/restore",
        {
            "start": (now - timedelta(hours=1)).isoformat(),
            "end": (now + timedelta(hours=1)).isoformat(),
        },
    )
    assert (status, body) == (200, {"success": True, "restored": 4, "errors": 0})
    assert (await listing(api, user, inbox))["total"] == 4
    assert (await api.get(f"/users/{user}/archived/messages"))[1]["total"] == 0

    # skipArchive: gone for good
    status, body = await api.delete(
        f"/users/{user}/mailboxes/{inbox}/messages", params={"skipArchive": "true", "async": "true"}
    )
    assert body == {"success": True, "deleted": 4, "errors": 0}
    assert (await api.get(f"/users/{user}/archived/messages"))[1]["total"] == 0


# ---------------------------------------------------------------------------------- errors


async def test_contract_errors(api: Api, runtime: Runtime) -> None:
    user = await new_user(api)
    inbox = (await mailbox_ids(api, user))["INBOX"]
    raw = plain(1, "errword", sender="s@example.com", to="t@example.com", subject="Errors")
    uid = await upload_raw(api, user, inbox, raw)
    missing_box = new_id()

    # NoSuchMailbox, wherever a mailbox is named
    for method, path in (
        ("GET", f"/users/{user}/mailboxes/{missing_box}/messages"),
        ("GET", message_path(user, missing_box, 1)),
        ("GET", message_path(user, missing_box, 1) + "/message.eml"),
        ("DELETE", message_path(user, missing_box, 1)),
        ("DELETE", f"/users/{user}/mailboxes/{missing_box}/messages"),
    ):
        status, body = await api.call(method, path)
        assert_error(status, body, 404, "NoSuchMailbox")
    status, body = await api.put(message_path(user, missing_box, 1), {"seen": True})
    assert_error(status, body, 404, "NoSuchMailbox")
    status, body = await api.post(f"/users/{user}/mailboxes/{missing_box}/messages", {"raw": raw})
    assert_error(status, body, 404, "NoSuchMailbox")

    # MessageNotFound, AttachmentNotFound
    for method, path in (
        ("GET", message_path(user, inbox, 99)),
        ("GET", message_path(user, inbox, 99) + "/message.eml"),
        ("GET", message_path(user, inbox, 99) + "/attachments/ATT00001"),
        ("DELETE", message_path(user, inbox, 99)),
    ):
        status, body = await api.call(method, path)
        assert_error(status, body, 404, "MessageNotFound")
    status, body = await api.get(message_path(user, inbox, uid) + "/attachments/ATT00001")
    assert_error(status, body, 404, "AttachmentNotFound")
    status, body = await api.get(message_path(user, inbox, uid) + "/attachments/foo")
    assert_error(status, body, 400, "InputValidationError")
    status, body = await api.post(f"/users/{user}/archived/messages/{new_id()}/restore")
    assert_error(status, body, 404, "MessageNotFound")

    # EmptyMessage: an empty message/rfc822 body, or whitespace
    status, body = await api.post(
        f"/users/{user}/mailboxes/{inbox}/messages",
        data=b"",
        headers={"Content-Type": "message/rfc822"},
    )
    assert_error(status, body, 400, "EmptyMessage")
    status, body = await api.post(f"/users/{user}/mailboxes/{inbox}/messages", {"raw": " \r\n"})
    assert_error(status, body, 400, "EmptyMessage")

    # UserNotFound, UserDisabled
    status, body = await api.post(f"/users/{new_id()}/mailboxes/{inbox}/messages", {"raw": raw})
    assert_error(status, body, 404, "UserNotFound")
    disabled = await new_user(api)
    disabled_inbox = (await mailbox_ids(api, disabled))["INBOX"]
    status, body = await api.put(f"/users/{disabled}", {"disabled": True})
    assert status == 200, body
    status, body = await api.post(
        f"/users/{disabled}/mailboxes/{disabled_inbox}/messages", {"raw": raw}
    )
    assert_error(status, body, 403, "UserDisabled")

    # OverQuotaError: a quota smaller than what is stored already
    status, body = await api.put(f"/users/{user}", {"quota": len(raw) + 10})
    assert status == 200, body
    status, body = await api.post(f"/users/{user}/mailboxes/{inbox}/messages", {"raw": raw})
    assert_error(status, body, 403, "OverQuotaError")
    assert (await listing(api, user, inbox))["total"] == 1
    status, body = await api.put(f"/users/{user}", {"quota": 0})

    # 410 MessageGone: expired by the retention job while its tombstone lasts
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    status, body = await api.put(message_path(user, inbox, uid), {"expires": past})
    assert status == 200, body
    report = await runtime.retention.run_once()
    assert report.expired >= 1
    for method, path in (
        ("GET", message_path(user, inbox, uid)),
        ("GET", message_path(user, inbox, uid) + "/message.eml"),
        ("GET", message_path(user, inbox, uid) + "/attachments/ATT00001"),
        ("DELETE", message_path(user, inbox, uid)),
    ):
        status, body = await api.call(method, path)
        assert_error(status, body, 410, "MessageGone")
    status, body = await api.put(message_path(user, inbox, uid), {"seen": False})
    assert_error(status, body, 410, "MessageGone")
    assert (await listing(api, user, inbox))["total"] == 0

    # an archived copy past its grace period is purged: restoring it is 410 too
    uid = await upload_raw(api, user, inbox, raw)
    status, body = await api.delete(message_path(user, inbox, uid))
    assert status == 200, body
    status, body = await api.get(f"/users/{user}/archived/messages")
    archived_id = body["results"][0]["id"]
    report = await runtime.retention.run_once(datetime.now(UTC) + timedelta(days=31))
    assert report.purged >= 1
    status, body = await api.post(f"/users/{user}/archived/messages/{archived_id}/restore")
    assert_error(status, body, 410, "MessageGone")
    status, body = await api.get(f"/users/{user}/archived/messages")
    assert body["total"] == 0


async def test_permissions(api: Api) -> None:
    owner = await new_user(api)
    other = await new_user(api)
    inbox = (await mailbox_ids(api, owner))["INBOX"]
    raw = plain(1, "permword", sender="s@example.com", to="t@example.com", subject="Mine")
    await upload_raw(api, owner, inbox, raw)

    status, body = await api.post(
        "/authenticate",
        {
            "username": (await api.get(f"/users/{owner}"))[1]["username"],
            "password": "correct horse 1",
            "token": True,
        },
    )
    assert status == 200, body
    mine = api.as_token(body["token"])
    status, body = await mine.get(message_path(owner, inbox, 1))
    assert status == 200 and body["subject"] == "Mine"
    status, body = await mine.get("/users/me/search", params={"query": "permword"})
    assert status == 200 and body["total"] == 1
    other_inbox = (await mailbox_ids(api, other))["INBOX"]
    status, body = await mine.get(f"/users/{other}/mailboxes/{other_inbox}/messages")
    assert_error(status, body, 403, "MissingPrivileges")
    status, body = await mine.post(f"/users/{other}/mailboxes/{other_inbox}/messages", {"raw": raw})
    assert_error(status, body, 403, "MissingPrivileges")


# ---------------------------------------------------------------------------------- updates


async def test_updates_stream_follows_message_changes(api: Api) -> None:
    user = await new_user(api)
    boxes = await mailbox_ids(api, user)
    inbox = boxes["INBOX"]
    status, body = await api.post(f"/users/{user}/mailboxes", {"path": "Later"})
    assert status == 200, body
    later = body["id"]
    stream = await open_stream(api, user)
    try:
        raw = plain(1, "sseword", sender="s@example.com", to="t@example.com", subject="Live")
        await upload_raw(api, user, inbox, raw, unseen=True)
        events = await _events_until(stream, "COUNTERS")
        exists = next(e for e in events if e["command"] == "EXISTS")
        assert (exists["mailbox"], exists["uid"]) == (inbox, 1)
        counters = events[-1]
        assert (counters["mailbox"], counters["total"], counters["unseen"]) == (inbox, 1, 1)

        await api.put(message_path(user, inbox, 1), {"seen": True, "flagged": True})
        events = await _events_until(stream, "COUNTERS")
        fetch_event = next(e for e in events if e["command"] == "FETCH")
        assert fetch_event["uid"] == 1 and set(fetch_event["flags"]) == {"\\Seen", "\\Flagged"}
        assert events[-1]["unseen"] == 0

        await api.put(message_path(user, inbox, 1), {"moveTo": later})
        events = await _events_until(stream, "COUNTERS", count=2)
        commands = {(e["command"], e["mailbox"]) for e in events}
        assert ("EXPUNGE", inbox) in commands and ("EXISTS", later) in commands

        await api.delete(message_path(user, later, 1))
        events = await _events_until(stream, "COUNTERS")
        assert any(e["command"] == "EXPUNGE" and e["mailbox"] == later for e in events)
    finally:
        stream.close()


async def _events_until(stream: Any, command: str, count: int = 1) -> list[dict[str, Any]]:
    """Events up to and including the `count`-th `command` event."""
    seen: list[dict[str, Any]] = []
    async with asyncio.timeout(5):
        while sum(1 for e in seen if e["command"] == command) < count:
            _, data = await stream.event(within=5)
            seen.append(data)
    return seen


async def test_message_rfc822_body_with_query_flags(api: Api) -> None:
    user = await new_user(api)
    inbox = (await mailbox_ids(api, user))["INBOX"]
    raw = b"Subject: binary \xff\xfe body\r\n\r\nnot utf-8: \xe9\xe8\r\n"
    sample = Sample("bin", "binary", rfc822=raw, query={"unseen": "1", "flagged": "1"})
    status, body = await send(api, user, inbox, sample)
    assert status == 200, body
    status, _, source = await fetch(api, message_path(user, inbox, 1) + "/message.eml")
    assert source == raw
    status, body = await api.get(message_path(user, inbox, 1))
    assert (body["seen"], body["flagged"]) == (False, True)


async def test_pages_stay_right_while_the_mailbox_changes(api: Api) -> None:
    """Cursors find their row again when mail arrives or goes between two pages: nearby by
    position, or, when the list moved further than that, by value."""
    user = await new_user(api)
    inbox = (await mailbox_ids(api, user))["INBOX"]

    async def add(n: int) -> int:
        raw = plain(n, f"shift{n}", sender="s@example.com", to="t@example.com", subject=f"S{n}")
        return await upload_raw(api, user, inbox, raw)

    for n in range(30):
        await add(n)
    first = await listing(api, user, inbox, limit=5)
    assert decode_position(first["nextCursor"], "next").offset == 4
    expected = [r["id"] for r in (await listing(api, user, inbox, limit=250))["results"]]

    async def page_after(cursor: str) -> list[int]:
        body = await listing(api, user, inbox, limit=5, next=cursor, page=2)
        offsets.append(decode_position(body["nextCursor"], "next").offset)
        return [row["id"] for row in body["results"]]

    offsets: list[int | None] = []

    # three new messages on top, two of the first page deleted: page 2 is still page 2
    for n in range(30, 33):
        await add(n)
    for uid in expected[:2]:
        status, body = await api.delete(message_path(user, inbox, uid))
        assert status == 200, body
    assert await page_after(first["nextCursor"]) == expected[5:10]
    assert offsets[-1] == 10  # found by position: 3 new, 2 gone before it

    # moved by more than the window's slack: found by value instead (positions then unknown)
    for n in range(33, 33 + SLACK + 5):
        await add(n)
    assert await page_after(first["nextCursor"]) == expected[5:10]
    assert offsets[-1] is None

    # and back: the five rows before page 2 as the list is now, new ones included
    now = [r["id"] for r in (await listing(api, user, inbox, limit=250))["results"]]
    second = await listing(api, user, inbox, limit=5, next=first["nextCursor"], page=2)
    back = await listing(api, user, inbox, limit=5, previous=second["previousCursor"], page=2)
    where = now.index(expected[5])
    assert [r["id"] for r in back["results"]] == now[where - 5 : where]
    assert back["previousCursor"] is not False and back["page"] == 2
