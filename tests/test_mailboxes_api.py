"""Mailboxes through the REST API (WildDuck reference 5.5), against the real database."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from conftest import Api, assert_error

from wildpy.runtime import Runtime
from wildpy.services.mailboxes import JUNK_RETENTION
from wildpy.storage.database import new_id

PASSWORD = "correct horse 1"
DAY = 24 * 3600 * 1000
DEFAULT_USES = ["\\Drafts", "\\Junk", "\\Sent", "\\Trash"]


async def new_user(api: Api, **fields: Any) -> str:
    username = fields.pop("username", "mb" + uuid.uuid4().hex[:10])
    status, body = await api.post("/users", {"username": username, "password": PASSWORD, **fields})
    assert status == 200, body
    return str(body["id"])


async def mailboxes(api: Api, user: str, **params: str) -> list[dict[str, Any]]:
    status, body = await api.get(f"/users/{user}/mailboxes", params=params)
    assert status == 200, body
    return list(body["results"])


async def create(api: Api, user: str, path: str, **fields: Any) -> str:
    status, body = await api.post(f"/users/{user}/mailboxes", {"path": path, **fields})
    assert status == 200, body
    return str(body["id"])


def paths(rows: list[dict[str, Any]]) -> list[str]:
    return [row["path"] for row in rows]


# ---------------------------------------------------------------------------------- defaults

LANGUAGES = [
    ("", ("Sent Mail", "Trash", "Junk", "Drafts")),
    ("en", ("Sent Mail", "Trash", "Junk", "Drafts")),
    ("et", ("Saadetud kirjad", "Prügikast", "Rämpspost", "Mustandid")),
    ("de", ("Gesendet", "Gelöscht", "Spam", "Entwürfe")),
    ("de-AT", ("Gesendet", "Gelöscht", "Spam", "Entwürfe")),
    ("fr", ("Envoyés", "Corbeille", "Pourriels", "Brouillons")),
    ("es", ("Enviados", "Papelera", "No deseado", "Borradores")),
    ("pt_BR", ("Enviados", "Lixeira", "Spam", "Rascunhos")),
    ("ru", ("Отправленные", "Корзина", "СПАМ", "Черновики")),
    ("zz", ("Sent Mail", "Trash", "Junk", "Drafts")),
]


@pytest.mark.parametrize(("language", "names"), LANGUAGES)
async def test_defaults_are_named_by_language(
    api: Api, language: str, names: tuple[str, str, str, str]
) -> None:
    user = await new_user(api, language=language) if language else await new_user(api)
    rows = await mailboxes(api, user)
    by_use = {row.get("specialUse", "INBOX"): row for row in rows}
    assert set(by_use) == {"INBOX", *DEFAULT_USES}
    sent, trash, junk, drafts = names
    assert by_use["INBOX"]["path"] == "INBOX"
    assert "specialUse" not in by_use["INBOX"]
    assert by_use["\\Sent"]["path"] == sent
    assert by_use["\\Trash"]["path"] == trash
    assert by_use["\\Junk"]["path"] == junk
    assert by_use["\\Drafts"]["path"] == drafts
    # Trash and Junk keep mail 30 days; the rest for ever
    assert by_use["\\Trash"]["retention"] == by_use["\\Junk"]["retention"] == 30 * DAY
    for use in ("INBOX", "\\Sent", "\\Drafts"):
        assert "retention" not in by_use[use]
    assert rows[0]["path"] == "INBOX"
    for row in rows:
        assert row["subscribed"] is True
        assert row["hidden"] is False
        assert row["modifyIndex"] == 0
        assert row["name"] == row["path"]


async def test_defaults_in_one_round_trip(runtime: Runtime) -> None:
    user = new_id()
    commands = runtime.database.commands
    commands.reset()
    await runtime.mailboxes.create_defaults(user, "et")
    assert commands.by_name == {"insert": 1}
    assert len(await runtime.repositories.mailboxes.find({"user": user})) == 5


async def test_defaults_follow_account_retention_and_custom_names(api: Api) -> None:
    short = await new_user(api, retention=10 * DAY)
    rows = {row.get("specialUse", "INBOX"): row for row in await mailboxes(api, short)}
    assert rows["INBOX"]["retention"] == rows["\\Sent"]["retention"] == 10 * DAY
    assert rows["\\Trash"]["retention"] == rows["\\Junk"]["retention"] == 10 * DAY

    long = await new_user(
        api,
        retention=90 * DAY,
        mailboxes={"sent": "Outbox", "trash": "Bin", "junk": "Folders/Spam", "drafts": "Ideas"},
    )
    rows = {row.get("specialUse", "INBOX"): row for row in await mailboxes(api, long)}
    assert rows["INBOX"]["retention"] == 90 * DAY
    assert rows["\\Trash"]["retention"] == JUNK_RETENTION
    assert [rows[use]["path"] for use in ("\\Sent", "\\Trash", "\\Junk", "\\Drafts")] == [
        "Outbox",
        "Bin",
        "Folders/Spam",
        "Ideas",
    ]
    assert rows["\\Junk"]["name"] == "Spam"


async def test_failed_defaults_leave_no_account(api: Api, runtime: Runtime) -> None:
    username = "half" + uuid.uuid4().hex[:8]
    address = f"{username}@example.com"
    status, body = await api.post(
        "/users",
        {
            "username": username,
            "password": PASSWORD,
            "address": address,
            "mailboxes": {"sent": "Same", "trash": "Same"},
        },
    )
    assert_error(status, body, 400, "InputValidationError")
    assert body["error"] == "Duplicate mailbox name: Same"
    assert await runtime.repositories.users.find_one({"username": username}) is None
    assert await runtime.repositories.addresses.find_one({"address": address}) is None
    status, body = await api.get(f"/addresses/resolve/{address}")
    assert_error(status, body, 404, "AddressNotFound")
    # username and address are free again
    await new_user(api, username=username, address=address)


# ---------------------------------------------------------------------------------- listing


async def test_listing_order_filters_and_shape(api: Api) -> None:
    user = await new_user(api)
    for path in ("zeta", "Alpha", "INBOX/Receipts", "beta", "Éclair", "ecole", "Hidden", "Quiet"):
        await create(api, user, path, hidden=path == "Hidden")
    quiet = await runtime_id(api, user, "Quiet")
    status, body = await api.put(f"/users/{user}/mailboxes/{quiet}", {"subscribed": False})
    assert status == 200, body

    rows = await mailboxes(api, user)
    assert paths(rows) == [
        "INBOX",
        "INBOX/Receipts",
        "Alpha",
        "beta",
        "Drafts",
        "Éclair",  # accents and case count only after the letters
        "ecole",
        "Junk",
        "Sent Mail",
        "Trash",
        "zeta",
        "Quiet",  # unsubscribed after every subscribed one
    ]
    receipts = rows[1]
    assert receipts["name"] == "Receipts"
    assert set(receipts) == {
        "id",
        "name",
        "path",
        "modifyIndex",
        "subscribed",
        "hidden",
        "encryptMessages",
    }
    assert rows[-1]["subscribed"] is False

    assert "Hidden" in paths(await mailboxes(api, user, showHidden="true"))
    assert paths(await mailboxes(api, user, specialUse="true")) == [
        "INBOX",
        "Drafts",
        "Junk",
        "Sent Mail",
        "Trash",
    ]
    with_counts = await mailboxes(api, user, counters="true", sizes="yes")
    assert all({"total", "unseen", "size"} <= set(row) for row in with_counts)


async def runtime_id(api: Api, user: str, path: str) -> str:
    status, body = await api.get(f"/users/{user}/mailboxes/resolve", params={"path": path})
    assert status == 200, body
    return str(body["id"])


async def test_counters_come_from_the_mailbox_document(api: Api, runtime: Runtime) -> None:
    user = await new_user(api)
    inbox = await runtime.mailboxes.inbox(user)
    # what the message store does when mail arrives: $inc on the mailbox document
    await runtime.repositories.mailboxes.update_one(
        {"_id": inbox["_id"]}, {"$inc": {"total": 3, "unseen": 2, "size": 4096, "modifyIndex": 3}}
    )
    commands = runtime.database.commands
    commands.reset()
    rows = await mailboxes(api, user, counters="true", sizes="true")
    # the user check and the one listing query (the counters need no extra query)
    assert commands.by_name == {"find": 2}
    assert rows[0] | {"id": None} == {
        "id": None,
        "name": "INBOX",
        "path": "INBOX",
        "modifyIndex": 3,
        "subscribed": True,
        "hidden": False,
        "encryptMessages": False,
        "total": 3,
        "unseen": 2,
        "size": 4096,
    }
    assert all((row["total"], row["unseen"], row["size"]) == (0, 0, 0) for row in rows[1:])
    assert "total" not in (await mailboxes(api, user, sizes="true"))[0]
    assert "size" not in (await mailboxes(api, user, counters="true"))[0]

    status, body = await api.get(f"/users/{user}/mailboxes/{inbox['_id']}")
    assert status == 200, body
    assert (body["total"], body["unseen"], body["modifyIndex"]) == (3, 2, 3)

    counts = await runtime.mailboxes.counters(user, [inbox["_id"], new_id()])
    assert counts == [{"mailbox": inbox["_id"], "total": 3, "unseen": 2}]


async def test_listing_errors(api: Api) -> None:
    status, body = await api.get(f"/users/{new_id()}/mailboxes")
    assert_error(status, body, 404, "UserNotFound")
    status, body = await api.get("/users/nope/mailboxes")
    assert_error(status, body, 400, "InputValidationError")
    user = await new_user(api)
    status, body = await api.get(f"/users/{user}/mailboxes", params={"counters": "maybe"})
    assert_error(status, body, 400, "InputValidationError")
    status, body = await api.get(f"/users/{user}/mailboxes", params={"foo": "1"})
    assert_error(status, body, 400, "InputValidationError")
    assert body["details"] == {"foo": '"foo" is not allowed'}


# ---------------------------------------------------------------------------------- create


async def test_create_and_get(api: Api, runtime: Runtime) -> None:
    user = await new_user(api, retention=5 * DAY)
    mailbox = await create(api, user, "Projects/2026", encryptMessages=True)
    status, body = await api.get(f"/users/{user}/mailboxes/{mailbox}")
    assert status == 200, body
    assert body == {
        "success": True,
        "id": mailbox,
        "name": "2026",
        "path": "Projects/2026",
        "modifyIndex": 0,
        "subscribed": True,
        "hidden": False,
        "encryptMessages": True,
        "retention": 5 * DAY,  # the account's, when none is given
        "size": 0,
        "total": 0,
        "unseen": 0,
    }
    stored = await runtime.repositories.mailboxes.get(mailbox)
    assert stored is not None
    assert (stored["uidNext"], stored["modifyIndex"], stored["user"]) == (1, 0, user)
    assert abs(stored["uidValidity"] - datetime.now(UTC).timestamp()) < 60
    assert "specialUse" not in stored

    own = await create(api, user, "Kept", retention=DAY, hidden="yes")
    status, body = await api.get(f"/users/{user}/mailboxes/{own}")
    assert (body["retention"], body["hidden"]) == (DAY, True)

    # the journal knows
    events = await runtime.journal.since(user, None)
    assert [(e["command"], e["mailbox"], e["path"]) for e in events] == [
        ("CREATE", mailbox, "Projects/2026"),
        ("CREATE", own, "Kept"),
    ]


async def test_path_normalisation(api: Api) -> None:
    user = await new_user(api)
    first = await create(api, user, "inbox/Bills")
    second = await create(api, user, "/Leading")
    third = await create(api, user, "Mixed/inbox")
    found = {row["id"]: row["path"] for row in await mailboxes(api, user)}
    assert (found[first], found[second], found[third]) == ("INBOX/Bills", "Leading", "Mixed/inbox")
    # resolve normalises the same way
    assert await runtime_id(api, user, "Inbox/Bills") == first


async def test_create_errors(api: Api, runtime: Runtime) -> None:
    user = await new_user(api)
    await create(api, user, "Existing")
    for path in ("Existing", "INBOX", "inbox", "Trash", "/Existing"):
        status, body = await api.post(f"/users/{user}/mailboxes", {"path": path})
        assert_error(status, body, 409, "MailboxExistsError")
        assert body["error"] == "Mailbox creation failed with code MailboxAlreadyExists"

    invalid = {
        "a/": '"path" with value "a/" matches the inverted pattern: /\\/{2,}|\\/$/',
        "a//b": '"path" with value "a//b" matches the inverted pattern: /\\/{2,}|\\/$/',
        "/".join(["x"] * 129): "The mailbox path cannot be more than 128 levels deep",
        "ok/" + "y" * 513: "Any part of the mailbox path cannot be longer than 512 chars long",
    }
    for path, message in invalid.items():
        status, body = await api.post(f"/users/{user}/mailboxes", {"path": path})
        assert_error(status, body, 400, "InputValidationError")
        assert body["error"] == message
        assert body["details"] == {"path": message}
    # the longest allowed forms pass
    await create(api, user, "/".join(["l"] * 128))
    await create(api, user, "z" * 512)

    for bad in ({}, {"path": ""}, {"path": "x", "retention": -1}, {"path": "x", "extra": 1}):
        status, body = await api.post(f"/users/{user}/mailboxes", bad)
        assert_error(status, body, 400, "InputValidationError")
    status, body = await api.post(f"/users/{new_id()}/mailboxes", {"path": "Lost"})
    assert_error(status, body, 404, "UserNotFound")
    assert len(await runtime.repositories.mailboxes.find({"path": "Lost"})) == 0


async def test_concurrent_creates(api: Api, runtime: Runtime) -> None:
    user = await new_user(api)
    distinct = await asyncio.gather(
        *(api.post(f"/users/{user}/mailboxes", {"path": f"Par/{n}"}) for n in range(20))
    )
    assert [status for status, _ in distinct] == [200] * 20
    assert len({body["id"] for _, body in distinct}) == 20

    same = await asyncio.gather(
        *(api.post(f"/users/{user}/mailboxes", {"path": "Contested"}) for _ in range(12))
    )
    winners = [body for status, body in same if status == 200]
    losers = [(status, body) for status, body in same if status != 200]
    assert len(winners) == 1
    for status, body in losers:
        assert_error(status, body, 409, "MailboxExistsError")
    stored = await runtime.repositories.mailboxes.find({"user": user, "path": "Contested"})
    assert [row["_id"] for row in stored] == [winners[0]["id"]]
    assert len(await mailboxes(api, user)) == 5 + 20 + 1


async def test_mailbox_limit(api: Api, runtime: Runtime) -> None:
    user = await new_user(api)
    limit = runtime.mailboxes.max_mailboxes
    assert limit == 1500
    # fill up to one below the limit directly, as an old account would be
    filler = [
        {
            "_id": new_id(),
            "user": user,
            "path": f"Old/{n:04d}",
            "uidValidity": 1,
            "uidNext": 1,
            "modifyIndex": 0,
            "subscribed": True,
            "hidden": False,
            "encryptMessages": False,
            "retention": 0,
        }
        for n in range(limit - 1 - 5)
    ]
    await runtime.repositories.mailboxes.insert_many(filler)
    await create(api, user, "The last one")
    status, body = await api.post(f"/users/{user}/mailboxes", {"path": "One too many"})
    assert_error(status, body, 403, "DisallowedMailboxMethod")
    assert body["error"] == (
        "Mailbox creation failed with code ReachedMailboxCountLimit. Max mailboxes count reached."
    )
    assert body["details"] == {"allowed": limit}
    assert len(await mailboxes(api, user)) == limit
    # renaming still works at the limit, and a deletion makes room
    last = await runtime_id(api, user, "The last one")
    status, body = await api.put(f"/users/{user}/mailboxes/{last}", {"path": "Renamed"})
    assert status == 200, body
    status, body = await api.delete(f"/users/{user}/mailboxes/{last}")
    assert status == 200, body
    await create(api, user, "One too many")


# ---------------------------------------------------------------------------------- get


async def test_get_and_resolve_errors(api: Api) -> None:
    user = await new_user(api)
    other = await new_user(api)
    theirs = await create(api, other, "Private")
    for path in (f"/users/{user}/mailboxes/{new_id()}", f"/users/{user}/mailboxes/{theirs}"):
        status, body = await api.get(path)
        assert_error(status, body, 404, "NoSuchMailbox")
        assert body["error"] == "This mailbox does not exist"
    status, body = await api.get(f"/users/{user}/mailboxes/resolve", params={"path": "Private"})
    assert_error(status, body, 404, "NoSuchMailbox")
    status, body = await api.get(f"/users/{user}/mailboxes/resolve")
    assert_error(status, body, 400, "InputValidationError")
    assert body["details"] == {"path": '"path" is required'}
    status, body = await api.get(f"/users/{user}/mailboxes/resolve", params={"path": "x//y"})
    assert_error(status, body, 400, "InputValidationError")
    status, body = await api.get(f"/users/{user}/mailboxes/not-an-id")
    assert_error(status, body, 400, "InputValidationError")
    assert body["details"] == {
        "mailbox": '"mailbox" must be a valid id (24 hex characters) or "resolve"'
    }
    status, body = await api.get(f"/users/{new_id()}/mailboxes/{theirs}")
    assert_error(status, body, 404, "UserNotFound")
    # upper-case ids are accepted, as WildDuck lowercases them
    status, body = await api.get(f"/users/{other}/mailboxes/{theirs.upper()}")
    assert (status, body.get("path")) == (200, "Private")


# ---------------------------------------------------------------------------------- update


async def test_update_fields(api: Api, runtime: Runtime) -> None:
    user = await new_user(api)
    mailbox = await create(api, user, "Settings")
    url = f"/users/{user}/mailboxes/{mailbox}"
    status, body = await api.put(
        url, {"subscribed": False, "hidden": True, "retention": 7 * DAY, "encryptMessages": "on"}
    )
    assert (status, body) == (200, {"success": True})
    status, body = await api.get(url)
    assert (body["subscribed"], body["hidden"], body["retention"], body["encryptMessages"]) == (
        False,
        True,
        7 * DAY,
        True,
    )
    # retention 0 means keep for ever (and is not shown); the same path is no rename
    status, body = await api.put(url, {"retention": 0, "path": "Settings"})
    assert status == 200, body
    status, body = await api.get(url)
    assert "retention" not in body
    # the same value again is fine (WildDuck answers success too)
    status, body = await api.put(url, {"subscribed": False})
    assert status == 200, body

    for empty in ({}, {"retention": ""}):
        status, body = await api.put(url, empty)
        assert_error(status, body, 400, "NoUpdates")
        assert body["error"] == "Nothing was changed"
    status, body = await api.put(f"/users/{user}/mailboxes/{new_id()}", {"hidden": True})
    assert_error(status, body, 404, "NoSuchMailbox")
    assert body["error"] == "Mailbox update failed with code NoSuchMailbox"
    other = await new_user(api)
    status, body = await api.put(f"/users/{other}/mailboxes/{mailbox}", {"hidden": False})
    assert_error(status, body, 404, "NoSuchMailbox")
    status, body = await api.put(url, {"subscribed": "perhaps"})
    assert_error(status, body, 400, "InputValidationError")
    assert (await runtime.repositories.mailboxes.get(mailbox) or {}).get("hidden")


async def test_rename_moves_children(api: Api, runtime: Runtime) -> None:
    user = await new_user(api)
    ids = {
        path: await create(api, user, path)
        for path in ("Work", "Work/A", "Work/A/Deep", "Workshop", "Work Old")
    }
    before = await runtime.journal.latest(user)
    assert before is not None

    status, body = await api.put(
        f"/users/{user}/mailboxes/{ids['Work']}", {"path": "Archive/Work", "subscribed": False}
    )
    assert (status, body) == (200, {"success": True})
    found = {row["id"]: row for row in await mailboxes(api, user)}
    assert found[ids["Work"]]["path"] == "Archive/Work"
    assert found[ids["Work"]]["subscribed"] is False
    assert found[ids["Work/A"]]["path"] == "Archive/Work/A"
    assert found[ids["Work/A/Deep"]]["path"] == "Archive/Work/A/Deep"
    # names that only start alike are not children
    assert found[ids["Workshop"]]["path"] == "Workshop"
    assert found[ids["Work Old"]]["path"] == "Work Old"

    events = await runtime.journal.since(user, before.id)
    assert sorted((e["command"], e["mailbox"], e["path"]) for e in events) == sorted(
        [
            ("RENAME", ids["Work"], "Archive/Work"),
            ("RENAME", ids["Work/A"], "Archive/Work/A"),
            ("RENAME", ids["Work/A/Deep"], "Archive/Work/A/Deep"),
        ]
    )

    # a child can be renamed on its own, out from under its parent
    status, body = await api.put(f"/users/{user}/mailboxes/{ids['Work/A/Deep']}", {"path": "Deep"})
    assert status == 200, body
    assert (await runtime.mailboxes.get(user, ids["Work/A/Deep"]))["path"] == "Deep"


async def test_rename_refusals_change_nothing(api: Api, runtime: Runtime) -> None:
    user = await new_user(api)
    ids = {
        path: await create(api, user, path) for path in ("Box", "Box/Kid", "Taken/Kid", "Taken2")
    }
    url = f"/users/{user}/mailboxes/{ids['Box']}"

    # the target itself exists ("Taken2"), or a child's target does ("Taken/Kid")
    for target in ("Taken2", "Taken"):
        status, body = await api.put(url, {"path": target})
        assert_error(status, body, 409, "MailboxExistsError")
        assert body["error"] == "Mailbox rename failed with code MailboxAlreadyExists"
    status, body = await api.put(url, {"path": "inbox"})
    assert_error(status, body, 409, "MailboxExistsError")

    # below itself
    status, body = await api.put(url, {"path": "Box/Kid/Box"})
    assert_error(status, body, 403, "DisallowedMailboxMethod")
    assert body["error"] == "Mailbox update failed with code DisallowedMailboxMethod"
    # a child path that would break the depth rule
    status, body = await api.put(url, {"path": "/".join(["d"] * 128)})
    assert_error(status, body, 400, "InputValidationError")
    assert body["error"] == "The mailbox path cannot be more than 128 levels deep"

    stored = {
        row["_id"]: row["path"] for row in await runtime.repositories.mailboxes.find({"user": user})
    }
    assert stored[ids["Box"]] == "Box"
    assert stored[ids["Box/Kid"]] == "Box/Kid"

    # INBOX and hidden mailboxes stay where they are (special-use ones may move, as in WildDuck)
    listing = await mailboxes(api, user, showHidden="true")
    inbox = next(row["id"] for row in listing if row["path"] == "INBOX")
    trash = next(row["id"] for row in listing if row.get("specialUse") == "\\Trash")
    hidden = await create(api, user, "Secret", hidden=True)
    for mailbox in (inbox, hidden):
        status, body = await api.put(f"/users/{user}/mailboxes/{mailbox}", {"path": "Elsewhere"})
        assert_error(status, body, 403, "DisallowedMailboxMethod")
    # but their other settings can change
    status, body = await api.put(f"/users/{user}/mailboxes/{trash}", {"retention": DAY})
    assert status == 200, body
    assert "Elsewhere" not in paths(await mailboxes(api, user, showHidden="true"))


async def test_moving_children_onto_a_path_taken_meanwhile(api: Api, runtime: Runtime) -> None:
    """The race a rename's check cannot close: a path created between the check and the move.
    The unique index refuses that one move; the others go through."""
    user = await new_user(api)
    first = await create(api, user, "Old/First")
    second = await create(api, user, "Old/Second")
    await create(api, user, "New/Second")  # the "concurrent" create
    refused = await runtime.repositories.mailboxes.move_paths(
        [(first, "Old/First", "New/First"), (second, "Old/Second", "New/Second")]
    )
    assert refused == {1}
    assert (await runtime.mailboxes.get(user, first))["path"] == "New/First"
    assert (await runtime.mailboxes.get(user, second))["path"] == "Old/Second"


# ---------------------------------------------------------------------------------- delete


class RecordingStore:
    """A message store over the real messages collection: removes a mailbox's messages and
    releases their size from the owner's quota, as the message service is to do."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.calls: list[tuple[str, str]] = []

    async def delete_mailbox_messages(self, user_id: str, mailbox_id: str) -> int:
        self.calls.append((user_id, mailbox_id))
        messages = self.runtime.database.mail["messages"]
        rows = await messages.find({"mailbox": mailbox_id}, {"size": 1}).to_list(None)
        if not rows:
            return 0
        await messages.delete_many({"_id": {"$in": [row["_id"] for row in rows]}})
        released = sum(int(row["size"]) for row in rows)
        await self.runtime.repositories.users.update_one(
            {"_id": user_id}, {"$inc": {"storageUsed": -released}}
        )
        return len(rows)


async def test_delete_releases_messages_through_the_store(api: Api, runtime: Runtime) -> None:
    user = await new_user(api)
    doomed = await create(api, user, "Doomed")
    kept = await create(api, user, "Kept")
    messages = runtime.database.mail["messages"]
    await messages.insert_many(
        [
            {"_id": new_id(), "user": user, "mailbox": box, "uid": uid, "size": 1000}
            for box in (doomed, kept)
            for uid in (1, 2, 3)
        ]
    )
    await runtime.repositories.users.update_one({"_id": user}, {"$set": {"storageUsed": 6000}})
    store = RecordingStore(runtime)
    previous, runtime.mailboxes.messages = runtime.mailboxes.messages, store
    try:
        status, body = await api.delete(f"/users/{user}/mailboxes/{doomed}")
    finally:
        runtime.mailboxes.messages = previous
    assert (status, body) == (200, {"success": True})
    # asked before and after the mailbox went (mail delivered in between is not left behind)
    assert store.calls == [(user, doomed), (user, doomed)]
    assert await messages.count_documents({"mailbox": doomed}) == 0
    assert await messages.count_documents({"mailbox": kept}) == 3
    status, body = await api.get(f"/users/{user}")
    assert body["limits"]["quota"]["used"] == 3000
    status, body = await api.get(f"/users/{user}/mailboxes/{doomed}")
    assert_error(status, body, 404, "NoSuchMailbox")
    events = await runtime.journal.since(user, None)
    assert (events[-1]["command"], events[-1]["mailbox"], events[-1]["path"]) == (
        "DELETE",
        doomed,
        "Doomed",
    )


async def test_delete_with_the_message_service(api: Api, runtime: Runtime) -> None:
    service = runtime.messages
    assert runtime.mailboxes.messages is service
    user = await new_user(api)
    doomed = await create(api, user, "Doomed")
    raw = b"From: a@example.com\r\nTo: b@example.com\r\nSubject: hi\r\n\r\nhello\r\n"
    for _ in range(3):
        await service.add_message(user, doomed, raw)
    status, body = await api.get(f"/users/{user}")
    assert body["limits"]["quota"]["used"] > 0
    status, body = await api.delete(f"/users/{user}/mailboxes/{doomed}")
    assert status == 200, body
    status, body = await api.get(f"/users/{user}")
    assert body["limits"]["quota"]["used"] == 0
    assert await runtime.database.mail["messages"].count_documents({"mailbox": doomed}) == 0


async def test_delete_refusals(api: Api) -> None:
    user = await new_user(api)
    listing = await mailboxes(api, user)
    for row in listing:  # INBOX and every special-use folder
        status, body = await api.delete(f"/users/{user}/mailboxes/{row['id']}")
        assert_error(status, body, 403, "DisallowedMailboxMethod")
        assert body["error"] == "Mailbox deletion failed with code DisallowedMailboxMethod"
    hidden = await create(api, user, "Hidden", hidden=True)
    status, body = await api.delete(f"/users/{user}/mailboxes/{hidden}")
    assert_error(status, body, 403, "DisallowedMailboxMethod")
    assert len(await mailboxes(api, user, showHidden="true")) == len(listing) + 1

    parent = await create(api, user, "Parent")
    child = await create(api, user, "Parent/Child")
    status, body = await api.delete(f"/users/{user}/mailboxes/{parent}")
    assert status == 200, body
    # the child stays (IMAP DELETE removes one name)
    status, body = await api.get(f"/users/{user}/mailboxes/{child}")
    assert (status, body.get("path")) == (200, "Parent/Child")
    for mailbox in (parent, new_id()):
        status, body = await api.delete(f"/users/{user}/mailboxes/{mailbox}")
        assert_error(status, body, 404, "NoSuchMailbox")
        assert body["error"] == "Mailbox deletion failed with code NoSuchMailbox"


# ---------------------------------------------------------------------------------- access


async def test_user_token_manages_own_mailboxes_only(api: Api) -> None:
    username = "tok" + uuid.uuid4().hex[:8]
    user = await new_user(api, username=username)
    other = await new_user(api)
    status, body = await api.post(
        "/authenticate", {"username": username, "password": PASSWORD, "token": True}
    )
    assert status == 200, body
    as_user = api.as_token(body["token"])

    mailbox = await create(as_user, user, "Mine")
    status, body = await as_user.get("/users/me/mailboxes")
    assert status == 200, body
    assert "Mine" in paths(body["results"])
    status, body = await as_user.put(f"/users/{user}/mailboxes/{mailbox}", {"path": "Ours"})
    assert status == 200, body
    status, body = await as_user.delete(f"/users/{user}/mailboxes/{mailbox}")
    assert status == 200, body

    theirs = await create(api, other, "Theirs")
    for method, path, payload in (
        ("GET", f"/users/{other}/mailboxes", None),
        ("POST", f"/users/{other}/mailboxes", {"path": "Intrusion"}),
        ("GET", f"/users/{other}/mailboxes/{theirs}", None),
        ("PUT", f"/users/{other}/mailboxes/{theirs}", {"hidden": True}),
        ("DELETE", f"/users/{other}/mailboxes/{theirs}", None),
    ):
        status, body = await as_user.call(method, path, payload)
        assert_error(status, body, 403, "MissingPrivileges")
    status, body = await api.as_token(None).get(f"/users/{user}/mailboxes")
    assert_error(status, body, 401, "InvalidToken")
