"""The stored form of a message: flags, the message document built from a parse, projections.

Pure functions, no I/O: wildpy/services/messages.py decides when they run and stores the result.
The fields are listed in docs/mail-store.md.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import bson

from wildpy.mime import ParsedMessage, format_body, format_envelope
from wildpy.storage.database import Document

from .segments import ZLIB_LEVEL, Segment

SYSTEM_FLAGS = {
    flag.lower(): flag for flag in ("\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft")
}
MAX_FLAGS = 128
MAX_FLAG_LENGTH = 255

#: stored text and HTML are capped: they serve listing, search and the message view, and the
#: complete content is always available from the raw message
MAX_TEXT_CHARS = 256 * 1024
MAX_HTML_CHARS = 1024 * 1024

#: the fields a message listing reads; excludes the heavy ones (segments, text, html, mime)
LISTING_FIELDS = (
    "_id",
    "user",
    "mailbox",
    "uid",
    "modseq",
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
    "to",
    "cc",
    "bcc",
    "intro",
    "ha",
    "attachments",
    "references",
    "contentType",
    "exp",
    "rdate",
    "meta",
)
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


@dataclass(frozen=True)
class MessageView:
    """What only a detail view of one message needs: kept out of queries and listings, and
    stored zlib-compressed (the embedded server keeps documents uncompressed; this is about
    half a typical message document)."""

    #: sanitised HTML parts (text parts rendered as HTML too), as the API shows them
    html: list[str]
    #: the MIME tree (`MimeNode.to_dict()`; `MimeNode.from_dict(mime, raw)` rebuilds it)
    mime: dict[str, Any]
    #: IMAP ENVELOPE, BODYSTRUCTURE and BODY, ready to send
    envelope: bytes
    bodystructure: bytes
    body: bytes


def pack_view(view: MessageView) -> bytes:
    # the tree goes in as JSON text: MIME parameter names may contain "." or "$"
    data = {
        "html": view.html,
        "mime": json.dumps(view.mime, separators=(",", ":"), ensure_ascii=False),
        "envelope": view.envelope,
        "bodystructure": view.bodystructure,
        "body": view.body,
    }
    return zlib.compress(bson.encode(data), ZLIB_LEVEL)


def unpack_view(packed: bytes) -> MessageView:
    data = bson.decode(zlib.decompress(packed))
    return MessageView(
        html=list(data["html"]),
        mime=json.loads(data["mime"]),
        envelope=bytes(data["envelope"]),
        bodystructure=bytes(data["bodystructure"]),
        body=bytes(data["body"]),
    )


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
) -> Document:
    """The message document. Fields that would be None are omitted (storage.md)."""
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
        # plain, for search; everything only a detail view needs is in the compressed `view`
        "text": parsed.text[:MAX_TEXT_CHARS],
        "view": pack_view(
            MessageView(
                html=_capped_html(parsed.html),
                mime=parsed.root.to_dict(),
                envelope=format_envelope(parsed.envelope),
                bodystructure=format_body(parsed.bodystructure),
                body=format_body(parsed.body),
            )
        ),
        "ha": parsed.has_attachments,
        "attachments": attachments,
        "headers": [{"key": key, "value": value} for key, value in parsed.index_headers],
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
