"""The store's door-neutral reads: a mailbox's uids and flags changed since a modseq, and reading
a message with \\Seen set on the way (what IMAP SELECT/FETCH and the REST routes share),
and the `[store]` configuration reaching the store."""

from __future__ import annotations

import pytest
from test_message_store import inbox, mailbox_doc, new_user, plain

from wildpy import errors
from wildpy.config import Config
from wildpy.runtime import Runtime, open_runtime
from wildpy.services.paging import PageRequest
from wildpy.storage.database import new_id


async def test_changed_since_lists_what_moved_past_a_modseq(runtime: Runtime) -> None:
    user = await new_user(runtime)
    box = await inbox(runtime, user)
    trash = str((await runtime.mailboxes.by_special_use(user, "\\Trash"))["_id"])
    first, second, third = [
        await runtime.messages.add_message(user, box, plain(subject=f"m{n}")) for n in range(3)
    ]
    everything = await runtime.messages.changed_since(user, box, 0)
    assert [(row.id, row.uid, row.modseq) for row in everything] == [
        (added.id, added.uid, added.modseq) for added in (first, second, third)
    ]
    assert all(row.flags == [] for row in everything)

    mark = int((await mailbox_doc(runtime, box))["modifyIndex"])
    flagged = await runtime.messages.update_flags(user, box, second.uid, add=["\\Flagged"])
    await runtime.messages.move(user, box, third.uid, trash)

    [changed] = await runtime.messages.changed_since(user, box, mark)
    assert (changed.uid, changed.modseq, changed.flags) == (
        second.uid,
        flagged.modseq,
        ["\\Flagged"],
    )
    assert [row.id for row in await runtime.messages.changed_since(user, trash, 0)] == [third.id]
    assert await runtime.messages.changed_since(user, box, flagged.modseq + 10) == []


async def test_changed_since_reads_in_batches_in_uid_order(runtime: Runtime) -> None:
    user = await new_user(runtime)
    box = await inbox(runtime, user)
    added = [await runtime.messages.add_message(user, box, plain()) for _ in range(7)]
    rows = await runtime.messages._reader.changed_since(user, box, 0, batch=3)
    assert [row.uid for row in rows] == [message.uid for message in added]


async def test_changed_since_refuses_another_users_mailbox(runtime: Runtime) -> None:
    owner, other = await new_user(runtime), await new_user(runtime)
    box = await inbox(runtime, owner)
    await runtime.messages.add_message(owner, box, plain())
    with pytest.raises(errors.NoSuchMailbox):
        await runtime.messages.changed_since(other, box, 0)


async def test_read_message_marks_seen_once_and_journals_it(runtime: Runtime) -> None:
    user = await new_user(runtime)
    box = await inbox(runtime, user)
    added = await runtime.messages.add_message(user, box, plain(body="Read me.\r\n"))
    before = await mailbox_doc(runtime, box)

    plain_read = await runtime.messages.read_message(user, box, added.uid)
    assert plain_read.message["unseen"] is True and "Read me." in plain_read.body.text
    assert (await mailbox_doc(runtime, box))["unseen"] == before["unseen"]

    seen = await runtime.messages.read_message(user, box, added.uid, mark_seen=True)
    assert seen.message["unseen"] is False and seen.message["flags"] == ["\\Seen"]
    after = await mailbox_doc(runtime, box)
    assert after["unseen"] == before["unseen"] - 1
    [changed] = await runtime.messages.changed_since(user, box, added.modseq)
    assert changed.flags == ["\\Seen"]

    again = await runtime.messages.read_message(user, box, added.uid, mark_seen=True)
    assert again.message["flags"] == ["\\Seen"]
    assert (await mailbox_doc(runtime, box))["modifyIndex"] == after["modifyIndex"]


async def test_read_message_tells_a_foreign_mailbox_from_a_missing_message(
    runtime: Runtime,
) -> None:
    owner, other = await new_user(runtime), await new_user(runtime)
    box = await inbox(runtime, owner)
    with pytest.raises(errors.MessageNotFound):
        await runtime.messages.read_message(owner, box, 99)
    with pytest.raises(errors.NoSuchMailbox):
        await runtime.messages.read_message(other, box, 1)


async def test_the_store_section_of_the_config_reaches_the_store(config: Config) -> None:
    tight = config.with_overrides({"store": {"maxSize": 2048, "retentionBatch": 7}})
    async with open_runtime(tight, ensure_indexes=False) as rt:
        assert rt.messages.settings.max_size == 2048
        assert rt.retention.batch == 7
        with pytest.raises(errors.PayloadTooLarge):
            await rt.messages.add_message(new_id(), new_id(), plain(body="x" * 3000))


async def test_the_archive_page_tells_an_empty_archive_from_a_missing_user(
    runtime: Runtime,
) -> None:
    archive = runtime.message_api.archive
    user = await new_user(runtime)
    page = await archive.page(user, PageRequest(), ascending=False)
    assert page.results == [] and page.total == 0
    with pytest.raises(errors.UserNotFound):
        await archive.page(new_id(), PageRequest(), ascending=False)
