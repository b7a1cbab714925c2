"""How a message is stored without keeping its body twice, against the real (embedded) database.

The detail view's text and HTML are rendered from the raw message (equal to a fresh parse,
attachments stored apart never read); the body is compressed with the search text as zlib
dictionary (byte-identical round trips whatever the characters); the header block is kept
apart for `includeHeaders`, the `headers` index holds only what search reads; full text search
covers the first 64 KiB of text and matches phrases across line breaks.
"""

from __future__ import annotations

import hashlib
import zlib
from typing import Any

import bson
import pytest
from test_message_store import (
    BROKEN,
    FORWARDED,
    HTML,
    ONE_MB,
    SAMPLES,
    inbox,
    new_user,
    plain,
    with_attachment,
)

from wildpy.handlers.message_views import listing_item
from wildpy.mime import parse_message
from wildpy.runtime import Runtime
from wildpy.storage.blobs import AttachmentStore
from wildpy.storage.database import Document
from wildpy.storage.pagination import PageRequest
from wildpy.store.compression import MAIL_DICTIONARY, decompress
from wildpy.store.documents import (
    MAX_HTML_CHARS,
    MAX_TEXT_CHARS,
    SEARCH_TEXT_CHARS,
    unpack_view,
)
from wildpy.store.projections import listing_projection
from wildpy.store.search import SearchCriteria
from wildpy.store.segments import inline_bytes

#: an inline forwarded message that carries a big attachment: cut out from inside the body
FORWARDED_INLINE_BIG = (
    b"From: carol@example.com\r\nTo: bob@example.com\r\nSubject: Fwd: With file\r\n"
    b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b1\r\n\r\n"
    b"--b1\r\nContent-Type: text/plain\r\n\r\nSee below.\r\n"
    b"--b1\r\nContent-Type: message/rfc822\r\n\r\n"
    + with_attachment(ONE_MB, subject="Inner")
    + b"\r\n--b1--\r\n"
)
#: a forwarded message attached as a whole, big: its parts lie inside the range cut out
FORWARDED_ATTACHED_BIG = FORWARDED_INLINE_BIG.replace(
    b"Content-Type: message/rfc822\r\n",
    b"Content-Type: message/rfc822\r\nContent-Disposition: attachment\r\n",
)
#: an HTML message whose own bytes are over 1 MiB: kept in a bodies file, not inline
BIG_HTML = (
    b"From: shop@example.com\r\nTo: bob@example.com\r\nSubject: Big\r\n"
    b"Content-Type: text/html; charset=utf-8\r\n\r\n<html><body>"
    + b"<p>row <b>bold</b> &amp; more</p>\r\n" * 40_000
    + b"</body></html>\r\n"
)
#: text in many scripts and odd code points: the stored text must come back byte for byte,
#: since the body is compressed with it as dictionary
UNUSUAL = (
    "Caf\u00e9 \u00fcber \u0441\u043b\u043e\u0432\u043e \u05e9\u05dc\u05d5\u05dd "
    "\u0645\u0631\u062d\u0628\u0627 \u4e2d\u6587 \U0001f600\U0001f3f3\ufe0f\u200d\U0001f308 "
    "e\u0301 \u2028\u2029 \ufeff \ufffd \u00a0nbsp \x01\x7f\x1b tab\there \uffff \U0010fffd "
    "\ud7ff unusualword"
)


def fresh(raw: bytes) -> tuple[str, list[str]]:
    """What the detail view showed when text and HTML were stored at add time."""
    parsed = parse_message(raw)
    html: list[str] = []
    room = MAX_HTML_CHARS
    for part in parsed.html:
        if room <= 0:
            break
        html.append(part[:room])
        room -= len(html[-1])
    return parsed.text[:MAX_TEXT_CHARS], html


@pytest.mark.parametrize(
    "raw",
    [
        plain(),
        HTML,
        with_attachment(ONE_MB),
        FORWARDED,
        FORWARDED_INLINE_BIG,
        FORWARDED_ATTACHED_BIG,
        BROKEN,
        BIG_HTML,
        *SAMPLES.values(),
    ],
    ids=[
        "plain",
        "html",
        "attachment",
        "forwarded",
        "forwarded-inline-big",
        "forwarded-attached-big",
        "broken",
        "big-html",
        *SAMPLES,
    ],
)
async def test_detail_view_renders_what_a_parse_gives(
    runtime: Runtime, raw: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = await new_user(runtime)
    box = await inbox(runtime, user)
    added = await runtime.messages.add_message(user, box, raw)
    doc = await runtime.messages.get(user, box, added.uid)
    # the stored view holds no HTML any more
    assert "html" not in bson.decode(decompress(doc["view"], MAIL_DICTIONARY))

    async def no_attachments(self: AttachmentStore, file_id: str) -> bytes:
        raise AssertionError("the detail view read an attachment")

    monkeypatch.setattr(AttachmentStore, "read", no_attachments)
    body = await runtime.messages.body(user, doc)
    assert (body.text, body.html) == fresh(raw)
    body = await runtime.messages.body(user, added.id)  # by id: fetches what it needs
    assert (body.text, body.html) == fresh(raw)


async def test_unusual_text_round_trips(runtime: Runtime) -> None:
    """The stored text is the body's compression dictionary: whatever its characters, the
    database must give it back exactly, or the raw message could not be read."""
    user = await new_user(runtime)
    box = await inbox(runtime, user)
    raw = (
        b"From: a@example.com\r\nSubject: odd\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        + (UNUSUAL * 40).encode("utf-8")
        + b"\r\n"
    )
    added = await runtime.messages.add_message(user, box, raw)
    doc = await runtime.messages.get(user, box, added.uid)
    assert any("zd" in segment for segment in doc["segments"])
    assert await runtime.messages.get_raw(user, added.id) == raw
    assert await runtime.messages.get_raw(user, doc) == raw
    assert b"".join(inline_bytes(segment, doc) for segment in doc["segments"]) == raw


async def test_stored_pieces_are_small(runtime: Runtime) -> None:
    """The body once (as search text; the raw pieces refer to it), the header block apart,
    no HTML: a message document is not much more than its own raw size."""
    user = await new_user(runtime)
    box = await inbox(runtime, user)
    words = " ".join(f"word{n}" for n in range(600))
    raw = plain(body=words + "\r\n")
    added = await runtime.messages.add_message(user, box, raw)
    doc = await runtime.messages.get(user, box, added.uid)
    assert doc["segments"][0] == {"head": raw.index(b"\r\n\r\n") + 4}
    body = doc["segments"][1]
    assert body["zd"] > 0 and len(body["zraw"]) < len(words) // 10
    assert [entry["key"] for entry in doc["headers"]] == ["from", "to"]
    assert len(bson.encode(doc)) < len(raw) + 1500


async def test_include_headers_come_from_the_stored_header_block(runtime: Runtime) -> None:
    user = await new_user(runtime)
    box = await inbox(runtime, user)
    raw = plain(
        Received="from relay.example.net by mx.example.com; Tue, 01 Oct 2024 10:00:00 +0000",
        DKIM_Signature="v=1; a=rsa-sha256; d=example.com; b=" + "x" * 300,
        Cc="carol@example.com",
        X_Campaign="spring",
    )
    added = await runtime.messages.add_message(user, box, raw)
    doc = await runtime.messages.get(user, box, added.uid)
    # only what search filters on is indexed
    assert {entry["key"] for entry in doc["headers"]} == {"from", "to", "cc"}
    page = await runtime.message_api.search.search(
        user,
        SearchCriteria(mailbox=box, from_="alice@example.com", to="carol@"),
        PageRequest(),
        ascending=True,
        projection=listing_projection(headers=True, metadata=False),
    )
    [row] = page.results
    item = listing_item(row, headers=frozenset({"received", "x-campaign", "cc"}))
    assert item["headers"] == {
        "received": "from relay.example.net by mx.example.com; Tue, 01 Oct 2024 10:00:00 +0000",
        "x-campaign": "spring",
        "cc": "carol@example.com",
    }
    everything = listing_item(row, headers=True)["headers"]
    assert everything == _as_listed(parse_message(raw).index_headers)


async def test_a_huge_header_block_stays_indexed(runtime: Runtime) -> None:
    """A header block over 64 KiB is not kept apart: the index keeps every header instead."""
    user = await new_user(runtime)
    box = await inbox(runtime, user)
    trace = {f"X_Trace_{n}": "hop " + "t" * 800 for n in range(90)}
    raw = plain(**trace)
    added = await runtime.messages.add_message(user, box, raw)
    doc = await runtime.messages.get(user, box, added.uid)
    assert "head" not in doc and "head" not in doc["segments"][0]
    assert len(doc["headers"]) == len(parse_message(raw).index_headers)
    projection = listing_projection(headers=True, metadata=False)
    [row] = await runtime.repositories.messages.find({"_id": added.id}, projection)
    assert listing_item(row, headers=True)["headers"] == _as_listed(
        parse_message(raw).index_headers
    )
    assert await runtime.messages.get_raw(user, added.id) == raw


def _as_listed(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key not in out:
            out[key] = value
        elif isinstance(out[key], list):
            out[key].append(value)
        else:
            out[key] = [out[key], value]
    return out


async def _found(runtime: Runtime, user: str, query: str) -> list[Document]:
    page = await runtime.message_api.search.search(
        user, SearchCriteria(query=query), PageRequest(), ascending=True, projection={"uid": 1}
    )
    return page.results


async def test_full_text_covers_64_kib_and_phrases_across_lines(runtime: Runtime) -> None:
    user = await new_user(runtime)
    box = await inbox(runtime, user)
    filler = "lorem ipsum dolor sit amet\r\n" * ((SEARCH_TEXT_CHARS - 2000) // 28)
    body = "a wrapped\r\nphrase here\r\n" + filler + "deepword\r\n" + "x" * 8000 + "\r\ntoodeep\r\n"
    await runtime.messages.add_message(user, box, plain(body=body))
    assert len(await _found(runtime, user, "deepword")) == 1  # near the end of 64 KiB
    assert await _found(runtime, user, "toodeep") == []  # beyond it
    assert len(await _found(runtime, user, '"wrapped phrase"')) == 1  # across a line break
    assert len(await _found(runtime, user, '"WRAPPED   phrase  here"')) == 1
    assert await _found(runtime, user, '"phrase wrapped"') == []


def test_old_stored_forms_still_read() -> None:
    """Documents stored before `head`, `zd` and the view's dictionary read the same."""
    piece = b"Subject: x\r\n\r\n" + b"body " * 100
    assert inline_bytes({"zraw": zlib.compress(piece), "len": len(piece)}) == piece
    assert inline_bytes({"raw": piece}) == piece
    old_view = zlib.compress(
        bson.encode(
            {
                "html": ["<p>x</p>"],
                "mime": "{}",
                "envelope": b"(NIL)",
                "bodystructure": b"()",
                "body": b"()",
            }
        )
    )
    view = unpack_view(old_view)
    assert view.envelope == b"(NIL)" and view.mime == {}


def test_the_mail_dictionary_never_changes() -> None:
    """Stored pieces can only be decompressed with exactly these bytes."""
    digest = hashlib.sha256(MAIL_DICTIONARY).hexdigest()
    assert digest == "bbd0d2e7ac7254fa81d19e7e231c20bf6bd5c8c4b007a0fd90230988d231c6fb"
