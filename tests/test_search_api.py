"""GET /users/:user/search through real requests: every criterion on its own, combined, in the
`q` syntax, with paging both ways, and its errors. The 20 sample messages each carry a unique
word, so each search names exactly the messages it must find.
"""

from __future__ import annotations

from typing import Any

import pytest
from conftest import Api, assert_error
from message_samples import all_pages, corpus, mailbox_ids, new_user, stored_file, upload

from wildpy.runtime import Runtime
from wildpy.storage.database import new_id

Found = dict[str, int]
#: (user, mailbox ids by path and special use, uid in INBOX by sample name)
Setup = tuple[str, dict[str, str], Found]
#: the loaded user, per module database (`runtime` is module-scoped, the API client is not)
_LOADED: dict[int, Setup] = {}
#: samples moved out of INBOX by the fixture, and where to (each is uid 1 there)
MOVED = {"plain5": "\\Junk", "plain6": "\\Trash"}


@pytest.fixture
async def mailbox_user(api: Api, runtime: Runtime) -> Setup:
    """One user for the whole module: the 20 samples in INBOX, then plain5 moved to Junk and
    plain6 to Trash. Searches only read, so the tests share it."""
    if id(runtime) in _LOADED:
        return _LOADED[id(runtime)]
    user = await new_user(api)
    boxes = await mailbox_ids(api, user)
    inbox = boxes["INBOX"]
    uids = {}
    for sample in corpus(await stored_file(api, user)):
        uids[sample.name] = await upload(api, user, inbox, sample)
    for name, use in MOVED.items():
        status, body = await api.put(
            f"/users/{user}/mailboxes/{inbox}/messages/{uids[name]}", {"moveTo": boxes[use]}
        )
        assert status == 200, body
    _LOADED[id(runtime)] = (user, boxes, uids)
    return _LOADED[id(runtime)]


def places(setup: Setup) -> dict[tuple[str, int], str]:
    """Sample name by (mailbox, uid)."""
    _, boxes, uids = setup
    out = {}
    for name, uid in uids.items():
        if name in MOVED:
            out[(boxes[MOVED[name]], 1)] = name
        else:
            out[(boxes["INBOX"], uid)] = name
    return out


async def search(api: Api, user: str, **params: Any) -> dict[str, Any]:
    status, body = await api.get(
        f"/users/{user}/search", params={k: str(v) for k, v in params.items()}
    )
    assert status == 200, body
    return body


async def names(api: Api, setup: Setup, **params: Any) -> set[str]:
    """The sample names a search finds, checking that the total counts them all."""
    body = await search(api, setup[0], limit=250, **params)
    assert body["total"] == len(body["results"]), body
    where = places(setup)
    return {where[(row["mailbox"], row["id"])] for row in body["results"]}


async def sizes_by_name(api: Api, setup: Setup) -> dict[str, int]:
    rows = await all_pages(api, f"/users/{setup[0]}/search", limit=50)
    where = places(setup)
    return {where[(row["mailbox"], row["id"])]: int(row["size"]) for row in rows}


async def test_full_text(api: Api, mailbox_user: Setup) -> None:
    setup = mailbox_user
    assert await names(api, setup, query="plainword3") == {"plain3"}
    assert await names(api, setup, query="PLAINWORD3") == {"plain3"}  # case-insensitive
    assert await names(api, setup, query="htmlword8") == {"html8"}  # HTML only, as text
    assert await names(api, setup, query="composedword16") == {"composed16"}
    # any word (WildDuck's `$text` ORs them), in the subject here; a phrase needs them together
    invoices = {"mixed10", "mixed11", "mixed12", "mixed13"}
    assert await names(api, setup, query="Invoice 12") == invoices
    assert await names(api, setup, query='"Invoice 12"') == {"mixed12"}
    assert await names(api, setup, query='"about plainword2"') == {"plain2"}  # a phrase
    assert await names(api, setup, query='"plainword2 about"') == set()
    assert await names(api, setup, query="brokenword15") == {"broken15"}  # broken MIME too
    assert await names(api, setup, query="a.b") == set()  # literal, not a pattern
    # full text leaves Junk and Trash out unless a mailbox is named (WildDuck's `searchable`)
    assert await names(api, setup, query="plainword5") == set()
    junk = setup[1]["\\Junk"]
    assert await names(api, setup, query="plainword5", mailbox=junk) == {"plain5"}
    body = await search(api, setup[0], query="plainword1")
    assert body["query"] == "plainword1"


async def test_fields(api: Api, mailbox_user: Setup) -> None:
    setup = mailbox_user
    assert await names(api, setup, **{"from": "alice3@example.com"}) == {"plain3"}
    assert await names(api, setup, **{"from": "designer"}) == {"html7", "html8", "html9"}
    assert await names(api, setup, to="bob2@example.net") == {"plain2"}
    assert await names(api, setup, to="copy4@") == {"plain4"}  # Cc counts as a recipient
    assert await names(api, setup, subject="invoice") == {
        "mixed10",
        "mixed11",
        "mixed12",
        "mixed13",
    }
    assert await names(api, setup, subject="invoice 1", **{"from": "accounts12"}) == {"mixed12"}


async def test_dates_sizes_and_flags(api: Api, mailbox_user: Setup) -> None:
    setup = mailbox_user
    assert await names(api, setup, dateend="2021-01-01T00:00:00Z") == {"old20"}
    recent = await names(api, setup, datestart="2021-01-01T00:00:00Z")
    assert len(recent) == 19 and "old20" not in recent
    assert await names(
        api, setup, datestart="2020-01-02T03:04:05.000Z", dateend="2020-01-02T03:04:05.000Z"
    ) == {"old20"}
    assert await names(api, setup, minSize=40_000) == {"mixed10", "mixed11", "mixed12", "mixed13"}
    sizes = await sizes_by_name(api, setup)
    limit = sorted(sizes.values())[7]
    assert await names(api, setup, maxSize=limit) == {n for n, v in sizes.items() if v <= limit}
    assert await names(api, setup, minSize=40_000, maxSize=40_001) == set()

    user, boxes, uids = setup
    listing = await all_pages(api, f"/users/{user}/mailboxes/{boxes['INBOX']}/messages", limit=50)
    by_uid = {row["id"]: row for row in listing}
    with_attachments = {
        name for name, uid in uids.items() if by_uid.get(uid, {}).get("attachments")
    }
    assert {"mixed10", "forward14", "composed16", "files17"} <= with_attachments
    assert "html7" not in with_attachments  # an inline image only
    assert await names(api, setup, attachments="true") == with_attachments
    assert await names(api, setup, flagged="true") == {"meta19"}
    assert await names(api, setup, unseen="true") == {"rfc18", "old20"}


async def test_mailbox_uids_thread_and_searchable(api: Api, mailbox_user: Setup) -> None:
    setup = mailbox_user
    user, boxes, _ = setup
    inbox = boxes["INBOX"]
    everything = await names(api, setup)
    assert len(everything) == 20
    assert await names(api, setup, searchable="true") == everything - {"plain5", "plain6"}
    assert await names(api, setup, mailbox=boxes["\\Trash"]) == {"plain6"}
    assert await names(api, setup, mailbox=inbox, id="1:3") == {"plain1", "plain2", "plain3"}
    assert await names(api, setup, mailbox=inbox, id="2,4,99") == {"plain2", "plain4"}
    assert await names(api, setup, mailbox=inbox, id="19:*") == {"meta19", "old20"}

    body = await search(api, user, query="plainword1", threadCounters="true", includeHeaders="to")
    row = body["results"][0]
    assert row["threadMessageCount"] == 1 and row["headers"] == {"to": "Reader <bob1@example.net>"}
    assert await names(api, setup, thread=row["thread"]) == {"plain1"}

    # or: any of them
    terms = {"or.from": "alice1@", "or.subject": "invoice 13"}
    assert await names(api, setup, **terms) == {"plain1", "mixed13"}
    assert await names(api, setup, **terms, flagged="true") == set()


async def test_query_string(api: Api, mailbox_user: Setup) -> None:
    setup = mailbox_user
    assert await names(api, setup, q="from:alice1@example.com") == {"plain1"}
    assert await names(api, setup, q="plainword1 OR plainword2") == {"plain1", "plain2"}
    assert await names(api, setup, q="subject:invoice -attachword10") == {
        "mixed11",
        "mixed12",
        "mixed13",
    }
    assert await names(api, setup, q='subject:"invoice 11"') == {"mixed11"}
    assert await names(
        api, setup, q="(plainword1 OR htmlword7 OR attachword11) has:attachment"
    ) == {"mixed11"}
    assert await names(api, setup, q="in:junk") == {"plain5"}
    assert await names(api, setup, q="in:trash OR in:spam") == {"plain5", "plain6"}
    inbox_only = await names(api, setup, q="in:inbox")
    assert len(inbox_only) == 18
    assert await names(api, setup, q="-in:inbox") == {"plain5", "plain6"}
    assert await names(api, setup, q="in:nosuchfolder") == set()
    assert await names(api, setup, q="is:unseen") == {"rfc18", "old20"}
    assert await names(api, setup, q="to:reader16 is:seen") == {"composed16"}
    assert await names(api, setup, q="-(subject:invoice OR in:inbox)") == {"plain5", "plain6"}
    # q combines with the explicit fields
    assert await names(api, setup, q="subject:invoice", minSize=1, query="attachword12") == {
        "mixed12"
    }
    user = setup[0]
    body = await search(api, user, q="plainword1")
    assert body["query"] == "plainword1"

    for bad in ("(plainword1", "plainword1)", "OR", "-()"):
        status, body = await api.get(f"/users/{user}/search", params={"q": bad})
        assert_error(status, body, 400, "InputValidationError")
    deep = "(" * 12 + "x" + ")" * 12
    status, body = await api.get(f"/users/{user}/search", params={"q": deep})
    assert_error(status, body, 400, "InputValidationError")
    many = " ".join(f"w{n}" for n in range(40))
    status, body = await api.get(f"/users/{user}/search", params={"q": many})
    assert_error(status, body, 400, "InputValidationError")


async def test_paging_and_errors(api: Api, mailbox_user: Setup) -> None:
    user, boxes, _ = mailbox_user
    path = f"/users/{user}/search"
    newest = [(r["mailbox"], r["id"]) for r in await all_pages(api, path, limit=6)]
    assert len(newest) == 20
    oldest = [(r["mailbox"], r["id"]) for r in await all_pages(api, path, limit=6, order="asc")]
    assert oldest == newest[::-1]
    first = await search(api, user, limit=6)
    second = await search(api, user, limit=6, next=first["nextCursor"], page=2)
    assert second["page"] == 2 and second["total"] == 20
    back = await search(api, user, limit=6, previous=second["previousCursor"], page=2)
    assert [r["id"] for r in back["results"]] == [r["id"] for r in first["results"]]

    status, body = await api.get(f"/users/{new_id()}/search", params={"query": "x"})
    assert_error(status, body, 404, "UserNotFound")
    other = await new_user(api)
    other_inbox = (await mailbox_ids(api, other))["INBOX"]
    status, body = await api.get(path, params={"mailbox": other_inbox})
    assert_error(status, body, 404, "NoSuchMailbox")
    status, body = await api.get(path, params={"id": "1:2"})
    assert_error(status, body, 400, "InputValidationError")
    status, body = await api.get(path, params={"mailbox": boxes["INBOX"], "id": "1-2"})
    assert_error(status, body, 400, "InputValidationError")
    status, body = await api.get(path, params={"or.bogus": "x"})
    assert_error(status, body, 400, "InputValidationError")
    status, body = await api.get(path, params={"datestart": "yesterday"})
    assert_error(status, body, 400, "InputValidationError")
    # unknown keys are ignored on this route, as WildDuck does
    assert (await search(api, user, whatever="1", limit=1))["total"] == 20


async def test_query_string_keys_of_wildduck(api: Api, mailbox_user: Setup) -> None:
    """Every key of WildDuck's search-query.js, case-insensitive, truthy aliases, trimming."""
    setup = mailbox_user
    user, boxes, _ = setup
    everything = await names(api, setup)
    assert await names(api, setup, q="cc:copy4@") == {"plain4"}
    assert await names(api, setup, q="CC:copy4@") == {"plain4"}
    assert await names(api, setup, q="bcc:copy4@") == set()
    assert await names(api, setup, q="mailbox:" + boxes["\\Junk"]) == {"plain5"}
    assert await names(api, setup, q="mailbox:nothex") == everything  # no condition
    assert await names(api, setup, q="in:inbox id:1:3") == {"plain1", "plain2", "plain3"}
    assert await names(api, setup, q="in:inbox ID:2,4,99") == {"plain2", "plain4"}
    assert await names(api, setup, q="dateend:2021-01-01T00:00:00Z") == {"old20"}
    recent = await names(api, setup, q="datestart:2021-01-01")
    assert len(recent) == 19 and "old20" not in recent
    assert await names(api, setup, q="before:2021-01-01 after:2020-01-01") == {"old20"}
    invoices = {"mixed10", "mixed11", "mixed12", "mixed13"}
    assert await names(api, setup, q="minSize:40000") == invoices
    assert await names(api, setup, q="minsize:40000 maxSize:40001") == set()
    attached = await names(api, setup, attachments="true")
    assert await names(api, setup, q="ATTACHMENTS:yes") == attached
    assert await names(api, setup, q="attachments:on") == attached
    assert await names(api, setup, q="attachments:no") == everything
    assert await names(api, setup, q="flagged:true") == {"meta19"}
    assert await names(api, setup, q="is:starred") == {"meta19"}
    assert await names(api, setup, q="unseen:1") == {"rfc18", "old20"}
    assert await names(api, setup, q="is:unread") == {"rfc18", "old20"}
    assert await names(api, setup, q="seen:y") == everything - {"rfc18", "old20"}
    assert await names(api, setup, q="is:read") == everything - {"rfc18", "old20"}
    assert await names(api, setup, q="searchable:true") == everything - {"plain5", "plain6"}
    assert await names(api, setup, q="-searchable:true") == {"plain5", "plain6"}

    # plain words: any of them; quoted values trimmed; a phrase keeps its words together
    assert await names(api, setup, q="plainword1 plainword2") == {"plain1", "plain2"}
    assert await names(api, setup, query="plainword1 plainword2") == {"plain1", "plain2"}
    assert await names(api, setup, q="plainword1 plainword2 -plainword2") == {"plain1"}
    assert await names(api, setup, q='subject:" invoice 11 "') == {"mixed11"}
    assert await names(api, setup, q='"about   plainword2"') == {"plain2"}
    assert await names(api, setup, q='"plainword2 about"') == set()
    assert (await search(api, user, q="ATTACHMENTS:yes"))["total"] == len(attached)
