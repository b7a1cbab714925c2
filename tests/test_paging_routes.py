"""Back-and-forth paging (1 -> 2 -> 3 -> 2 -> 1) on every paged route, by cursors alone.

A client that sends only `next`/`previous` (no `page`) must land on the page it asked for:
`previous` counts whatever `page` says.
"""

from __future__ import annotations

import uuid
from typing import Any

from conftest import Api
from message_samples import mailbox_ids, new_user, plain, upload_raw

LIMIT = 2
ROWS = 7  # pages of 2, 2, 2, 1


async def walk(api: Api, path: str, **params: Any) -> None:
    """Pages 1, 2, 3 by `next`, then 2 and 1 by `previous`, with and without `page`."""
    query = {"limit": str(LIMIT), **{k: str(v) for k, v in params.items()}}
    for numbered in (False, True):
        pages: list[list[Any]] = []
        bodies: list[dict[str, Any]] = []
        step: dict[str, str] = {}
        for number in (1, 2, 3):
            status, body = await api.get(path, params={**query, **step})
            assert status == 200, body
            assert body["total"] == ROWS, body
            pages.append([row["id"] for row in body["results"]])
            bodies.append(body)
            step = {"next": body["nextCursor"]}
            if numbered:
                step["page"] = str(number + 1)
        assert [len(page) for page in pages] == [2, 2, 2]
        assert len({ident for page in pages for ident in page}) == 6
        body = bodies[-1]
        for number in (2, 1):
            step = {"previous": body["previousCursor"]}
            if numbered:
                step["page"] = str(number)
            status, body = await api.get(path, params={**query, **step})
            assert status == 200, body
            assert [row["id"] for row in body["results"]] == pages[number - 1], (path, number)
        assert body["previousCursor"] is False and body["page"] == 1


async def test_users_and_addresses(api: Api) -> None:
    marker = "pg" + uuid.uuid4().hex[:8]
    for n in range(ROWS):
        await new_user(api, username=f"{marker}u{n}", tags=[marker], address=f"{marker}{n}@x.com")
    await walk(api, "/users", tags=marker)
    await walk(api, "/addresses", query=marker)


async def test_domain_aliases(api: Api) -> None:
    marker = "pg" + uuid.uuid4().hex[:8]
    for n in range(ROWS):
        status, body = await api.post(
            "/domainaliases", {"alias": f"{marker}{n}.example", "domain": "target.example"}
        )
        assert status == 200, body
    await walk(api, "/domainaliases", query=marker)


async def test_storage(api: Api) -> None:
    user = await new_user(api)
    for n in range(ROWS):
        status, body = await api.post(
            f"/users/{user}/storage", {"filename": f"f{n}.txt", "content": f"file {n}"}
        )
        assert status == 200, body
    await walk(api, f"/users/{user}/storage")


async def test_messages_search_and_archive(api: Api) -> None:
    user = await new_user(api)
    inbox = (await mailbox_ids(api, user))["INBOX"]
    uids = []
    for n in range(ROWS):
        raw = plain(n, "pagingword", sender="s@x.com", to="t@x.com", subject=f"Page {n}")
        uids.append(await upload_raw(api, user, inbox, raw))
    for order in ("desc", "asc"):
        await walk(api, f"/users/{user}/mailboxes/{inbox}/messages", order=order)
    await walk(api, f"/users/{user}/search", q="pagingword")
    for uid in uids:
        status, body = await api.delete(f"/users/{user}/mailboxes/{inbox}/messages/{uid}")
        assert status == 200, body
    for order in ("desc", "asc"):
        await walk(api, f"/users/{user}/archived/messages", order=order)
