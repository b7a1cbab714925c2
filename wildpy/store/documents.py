"""The stored form of a message: flags, the message document built from a parse, projections.

Pure functions, no I/O: wildpy/services/messages.py decides when they run and stores the result.
The fields are listed in docs/mail-store.md.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import bson

from wildpy.mime import (
    MimeNode,
    ParsedMessage,
    drop_ranges,
    format_body,
    format_envelope,
    header_index,
    render_body,
)
from wildpy.storage.database import Document

from .compression import MAIL_DICTIONARY, compress, decompress
from .segments import Segment

SYSTEM_FLAGS = {
    flag.lower(): flag for flag in ("\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft")
}
MAX_FLAGS = 128
MAX_FLAG_LENGTH = 255

#: the text and HTML a detail view shows are capped (rendered from the raw message, which
#: always has the complete content)
MAX_TEXT_CHARS = 256 * 1024
MAX_HTML_CHARS = 1024 * 1024
#: full-text search reads this much of the plain text (`text`, stored for the database to
#: search; also the dictionary the body is compressed with, see segments.py)
SEARCH_TEXT_CHARS = 64 * 1024
#: the headers kept in the `headers` index: those search filters on (`from:`, `to:`...);
#: `includeHeaders` reads the stored header block (`head`) instead
SEARCH_HEADERS = frozenset({"from", "to", "cc", "bcc"})

#: what reading the raw bytes needs (`MessageService.read_range`): the segments, the header
#: block kept apart and the text the body is compressed with
RAW_FIELDS = ("user", "size", "segments", "segmentsFile", "head", "text")

#: what every summary of a message reads (a listing row, the head of the detail view); the heavy
#: fields (text, the packed view, the raw segments) stay out
SUMMARY_FIELDS = (
    "_id",
    "user",
    "mailbox",
    "uid",
    "thread",
    "idate",
    "hdate",
    "size",
    "flags",
    "unseen",
    "flagged",
    "draft",
    "deleted",
    "msgid",
    "subject",
    "from",
    "sender",
    "to",
    "cc",
    "bcc",
    "intro",
    "ha",
    "attachments",
    "references",
    "contentType",
    "rdate",
)
#: the fields the service's own listing reads
LISTING_FIELDS = (*SUMMARY_FIELDS, "modseq", "exp", "meta")
LISTING_PROJECTION: Document = dict.fromkeys(LISTING_FIELDS, 1)

#: what the release of a message (delete, expiry, purge) needs to read
RELEASE_PROJECTION: Document = dict.fromkeys(
    ("_id", "user", "mailbox", "uid", "modseq", "size", "unseen", "atts", "segmentsFile"), 1
)


def normalize_flags(flags: Iterable[str]) -> list[str]:
    """System flags in their canonical case, keywords as given; no duplicates, no \\Recent."""
    out: dict[str, str] = {}
    for flag in flags:
        flag = flag.strip()
        if not flag or len(flag) > MAX_FLAG_LENGTH:
            continue
        key = flag.lower()
        if key == "\\recent":
            continue
        out.setdefault(key, SYSTEM_FLAGS.get(key, flag))
        if len(out) >= MAX_FLAGS:
            break
    return list(out.values())


def flag_fields(flags: Sequence[str]) -> Document:
    """The denormalised booleans kept next to `flags` for indexed filters and counters."""
    present = {flag.lower() for flag in flags}
    return {
        "flags": list(flags),
        "unseen": "\\seen" not in present,
        "flagged": "\\flagged" in present,
        "draft": "\\draft" in present,
        "deleted": "\\deleted" in present,
    }


def _addresses(items: Sequence[Any]) -> list[dict[str, str]]:
    return [item.as_dict() for item in items]


def _capped_html(parts: Sequence[str]) -> list[str]:
    out: list[str] = []
    room = MAX_HTML_CHARS
    for part in parts:
        if room <= 0:
            break
        out.append(part[:room])
        room -= len(out[-1])
    return out


def search_text(parsed: ParsedMessage) -> str:
    """The stored `text`: the plain text search reads (and the body's compression dictionary)."""
    return parsed.text[:SEARCH_TEXT_CHARS]


@dataclass(frozen=True)
class MessageView:
    """What IMAP needs of many messages at once, without their raw bytes: kept out of queries
    and listings, and stored zlib-compressed (the embedded server keeps documents
    uncompressed). The HTML and text a detail view shows are rendered from the raw message
    instead (`MessageService.body`), so that no body is stored twice."""

    #: the MIME tree (`MimeNode.to_dict()`; `MimeNode.from_dict(mime, raw)` rebuilds it)
    mime: dict[str, Any]
    #: IMAP ENVELOPE, BODYSTRUCTURE and BODY, ready to send
    envelope: bytes
    bodystructure: bytes
    body: bytes


@dataclass(frozen=True)
class MessageBody:
    """What the detail view shows of a message's content, as `parse_message` renders it."""

    #: the plain text (text parts, HTML rendered as text), up to MAX_TEXT_CHARS
    text: str
    #: sanitised HTML parts (text parts rendered as HTML too), up to MAX_HTML_CHARS in all
    html: list[str]


def pack_view(view: MessageView) -> bytes:
    # the tree goes in as JSON text: MIME parameter names may contain "." or "$"
    data = {
        "mime": json.dumps(view.mime, separators=(",", ":"), ensure_ascii=False),
        "envelope": view.envelope,
        "bodystructure": view.bodystructure,
        "body": view.body,
    }
    # the dictionary holds the tree's keys and common BODYSTRUCTURE pieces: a few hundred
    # bytes less per message than zlib alone
    return compress(bson.encode(data), MAIL_DICTIONARY)


def unpack_view(packed: bytes) -> MessageView:
    # views stored before the dictionary (and with `html`) read the same: a stream made
    # without a dictionary ignores the one offered, and the extra field is not read
    data = bson.decode(decompress(packed, MAIL_DICTIONARY))
    return MessageView(
        mime=json.loads(data["mime"]),
        envelope=bytes(data["envelope"]),
        bodystructure=bytes(data["bodystructure"]),
        body=bytes(data["body"]),
    )


def render_message_body(
    own: bytes, view: MessageView, cut_out: Sequence[tuple[int, int]] = ()
) -> MessageBody:
    """The detail view's text and HTML, the same as `parse_message(raw)` gives (capped): from
    the message's own bytes `own` (the raw message without the attachment bodies stored
    apart, at `cut_out` in it: `render_body` never reads them) and its stored view's tree."""
    tree = drop_ranges(view.mime, cut_out) if cut_out else view.mime
    text, html = render_body(own, MimeNode.from_dict(tree, own))
    return MessageBody(text=text[:MAX_TEXT_CHARS], html=_capped_html(html))


def head_headers(head: bytes) -> list[tuple[str, str]]:
    """The index pairs (`ParsedMessage.index_headers`) of a stored `head` field."""
    return header_index(decompress(head, MAIL_DICTIONARY))


@dataclass(frozen=True)
class Placement:
    """Where a new message goes: assigned by the mailbox and thread lookups."""

    id: str
    user: str
    mailbox: str
    uid: int
    modseq: int
    thread: str
    idate: datetime
    created: datetime
    #: expiry in epoch milliseconds (as WildDuck's `rdate`), for mailboxes with a retention
    rdate: int | None


def build_document(
    parsed: ParsedMessage,
    placement: Placement,
    flags: Sequence[str],
    segments: list[Segment],
    *,
    segments_file: str | None,
    attachment_digests: Sequence[str],
    meta: Mapping[str, Any] | None,
    head: bytes | None = None,
) -> Document:
    """The message document. Fields that would be None are omitted (storage.md).

    `segments` must have been built with `search_text(parsed)` as their text, and `head` is
    the compressed header block of their `{"head": n}` segment, if they have one
    (`segments.pack_head`). With a `head`, the `headers` index keeps only SEARCH_HEADERS.
    """
    attachments = []
    for info in parsed.attachments:
        entry = info.as_api()
        # where the encoded body lies in the raw message: read_attachment and IMAP BODY[n]
        entry.update(part=info.part, start=info.body_start, end=info.body_end)
        attachments.append(entry)
    doc: Document = {
        "_id": placement.id,
        "user": placement.user,
        "mailbox": placement.mailbox,
        "uid": placement.uid,
        "modseq": placement.modseq,
        "thread": placement.thread,
        "idate": placement.idate,
        "hdate": parsed.date or placement.idate,
        "size": parsed.size,
        **flag_fields(flags),
        "subject": parsed.subject,
        "from": _addresses(parsed.from_),
        "sender": _addresses(parsed.sender),
        "replyTo": _addresses(parsed.reply_to),
        "to": _addresses(parsed.to),
        "cc": _addresses(parsed.cc),
        "bcc": _addresses(parsed.bcc),
        "references": list(parsed.references),
        "intro": parsed.intro,
        # plain, for search (and the dictionary of the compressed body); what IMAP needs of
        # many messages is in the compressed `view`; the detail view renders from the raw
        "text": search_text(parsed),
        "view": pack_view(
            MessageView(
                mime=parsed.root.to_dict(),
                envelope=format_envelope(parsed.envelope),
                bodystructure=format_body(parsed.bodystructure),
                body=format_body(parsed.body),
            )
        ),
        "ha": parsed.has_attachments,
        "attachments": attachments,
        "headers": [
            {"key": key, "value": value}
            for key, value in parsed.index_headers
            if head is None or key in SEARCH_HEADERS
        ],
        "contentType": parsed.content_type,
        "segments": segments,
        "atts": list(attachment_digests),
        "exp": placement.rdate is not None,
        "created": placement.created,
    }
    if placement.rdate is not None:
        doc["rdate"] = placement.rdate
    if segments_file is not None:
        doc["segmentsFile"] = segments_file
    if head is not None:
        doc["head"] = head
    if parsed.message_id:
        doc["msgid"] = parsed.message_id
    if parsed.in_reply_to:
        doc["inReplyTo"] = parsed.in_reply_to
    if parsed.list_id or parsed.list_unsubscribe:
        doc["list"] = {
            key: value
            for key, value in (("id", parsed.list_id), ("unsubscribe", parsed.list_unsubscribe))
            if value
        }
    if parsed.cid_map:
        doc["cidMap"] = [{"cid": cid, "id": ident} for cid, ident in parsed.cid_map.items()]
    if meta:
        doc["meta"] = dict(meta)
    return doc
