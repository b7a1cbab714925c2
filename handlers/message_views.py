"""How the REST API shows a message: WildDuck's listing item and full message shapes.

Pure functions over stored message documents (docs/mail-store.md); no I/O. The listing item is
shared by the mailbox listing, search and the archive (reference section 5.6,
`formatMessageListing`); the full shape is GET .../messages/:message.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from wildpy.fields import decode_metadata
from wildpy.mime import replace_cid_links
from wildpy.store.documents import head_headers
from wildpy.store.search import Listing

#: `includeHeaders`: True for every header (of the first 200), else the lowercased names wanted
HeaderSelection = bool | frozenset[str]

#: attachment entry keys that locate the body in the raw message: internal, never shown
_ATTACHMENT_INTERNAL = frozenset({"part", "start", "end"})
_ENCRYPTED_TYPES = frozenset({"multipart/encrypted", "application/pkcs7-mime"})
_ATTACHMENT_LINK = re.compile(r"\battachment:(ATT\d+)\b")


def parse_include_headers(value: str | bool | None) -> HeaderSelection:
    """WildDuck's `includeHeaders`: a comma separated list of header names, or a boolean."""
    if value is None or value is False:
        return frozenset()
    if value is True:
        return True
    names = frozenset(name.strip().lower() for name in value.split(",") if name.strip())
    return names


def iso(value: Any) -> str | None:
    """A stored date as `toISOString()` renders it (milliseconds and a Z), None when absent."""
    if isinstance(value, datetime):
        when = value if value.tzinfo else value.replace(tzinfo=UTC)
        when = when.astimezone(UTC)
        return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"
    if isinstance(value, int) and not isinstance(value, bool):
        # epoch milliseconds (`rdate`)
        return iso(datetime.fromtimestamp(value / 1000, tz=UTC))
    return None


def attachment_entry(info: Mapping[str, Any]) -> dict[str, Any]:
    """An attachment as the API lists it (the raw-message offsets stay internal)."""
    return {key: value for key, value in info.items() if key not in _ATTACHMENT_INTERNAL}


def _first_from(doc: Mapping[str, Any]) -> dict[str, Any]:
    for key in ("from", "sender"):
        addresses = doc.get(key) or []
        if addresses:
            return dict(addresses[0])
    meta = doc.get("meta") or {}
    return {"name": "", "address": str(meta.get("from") or "")}


def _flags(doc: Mapping[str, Any]) -> dict[str, bool]:
    flags = {str(flag).lower() for flag in doc.get("flags") or []}
    return {
        "seen": not doc.get("unseen"),
        "deleted": bool(doc.get("deleted")),
        "flagged": bool(doc.get("flagged")),
        "draft": bool(doc.get("draft")),
        # WildDuck: answered only when not forwarded, forwarded when $Forwarded is set
        "answered": "\\answered" in flags and "$forwarded" not in flags,
        "forwarded": "$forwarded" in flags,
    }


def _content_type(doc: Mapping[str, Any]) -> dict[str, Any] | None:
    stored = doc.get("contentType")
    if not isinstance(stored, Mapping) or not stored.get("value"):
        return None
    shown: dict[str, Any] = {"value": stored["value"]}
    if stored.get("params"):
        shown["params"] = dict(stored["params"])
    return shown


def _header_pairs(doc: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The message's first 200 header fields as (lowercase name, value up to 880 characters):
    from the stored header block when there is one, else from the `headers` index (which then
    holds them all: messages stored before `head`, or with a header block too big for it)."""
    head = doc.get("head")
    if head is not None:
        return head_headers(bytes(head))
    return [
        (str(entry.get("key", "")).lower(), entry.get("value", ""))
        for entry in doc.get("headers") or []
    ]


def _headers(doc: Mapping[str, Any], selection: HeaderSelection) -> dict[str, Any]:
    """The selected headers as {name: value}; a header that appears several times gives a list."""
    out: dict[str, Any] = {}
    for key, value in _header_pairs(doc):
        wanted = selection is True or (isinstance(selection, frozenset) and key in selection)
        if not key or not wanted:
            continue
        if key not in out:
            out[key] = value
        elif isinstance(out[key], list):
            out[key].append(value)
        else:
            out[key] = [out[key], value]
    return out


def message_metadata(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The client's metaData, stored as a JSON string in `meta.custom` (as WildDuck does)."""
    meta = doc.get("meta") or {}
    result: dict[str, Any] = decode_metadata(meta.get("custom") or None)
    return result


def listing_item(
    doc: Mapping[str, Any],
    *,
    headers: HeaderSelection = frozenset(),
    metadata: bool = False,
    thread_count: int | None = None,
    ident: Any = None,
) -> dict[str, Any]:
    """WildDuck's message listing item. `ident` replaces the uid as `id` (the archive lists
    messages by their archived id)."""
    item: dict[str, Any] = {
        "id": doc.get("uid") if ident is None else ident,
        "mailbox": doc.get("mailbox"),
        "thread": doc.get("thread"),
    }
    if thread_count is not None:
        item["threadMessageCount"] = thread_count
    item.update(
        {
            "from": _first_from(doc),
            "to": list(doc.get("to") or []),
            "cc": list(doc.get("cc") or []),
            "bcc": list(doc.get("bcc") or []),
            "messageId": doc.get("msgid") or "",
            "subject": doc.get("subject") or "",
            "date": iso(doc.get("hdate")),
            "idate": iso(doc.get("idate")),
            "intro": doc.get("intro") or "",
            "attachments": bool(doc.get("ha")),
            "attachmentsList": [attachment_entry(a) for a in doc.get("attachments") or []],
            "size": int(doc.get("size") or 0),
            **_flags(doc),
            "references": list(doc.get("references") or []),
        }
    )
    if headers:
        item["headers"] = _headers(doc, headers)
    if metadata:
        item["metaData"] = message_metadata(doc)
    content_type = _content_type(doc)
    if content_type is not None:
        item["contentType"] = content_type
        if content_type["value"] in _ENCRYPTED_TYPES:
            item["encrypted"] = True
    return item


def rewrite_html(
    html: Sequence[str],
    cid_map: Sequence[Mapping[str, Any]],
    attachment_url: Callable[[str], str] | None,
) -> list[str]:
    """Inline images: `cid:` links become `attachment:ATT00001` (WildDuck's stored form), and
    with `attachment_url` (replaceCidLinks) the URL that downloads that attachment."""
    cids = {str(entry["cid"]): str(entry["id"]) for entry in cid_map if "cid" in entry}
    out = []
    for part in html:
        part = replace_cid_links(part, cids) if cids else part
        if attachment_url is not None:
            part = _ATTACHMENT_LINK.sub(lambda m: attachment_url(m.group(1)), part)
        out.append(part)
    return out


def _addresses_or_none(doc: Mapping[str, Any], key: str) -> list[dict[str, Any]] | None:
    addresses = doc.get(key) or []
    return [dict(a) for a in addresses] if addresses else None


def _envelope(doc: Mapping[str, Any]) -> dict[str, Any]:
    meta = doc.get("meta") or {}
    recipients = meta.get("to") or []
    if isinstance(recipients, str):
        recipients = [recipients]
    rcpt = []
    for value in recipients:
        text = str(value).strip()
        if text:
            rcpt.append({"value": text, "formatted": text.lower()})
    return {"from": str(meta.get("from") or ""), "rcpt": rcpt}


def message_view(
    doc: Mapping[str, Any],
    html: Sequence[str],
    *,
    attachment_url: Callable[[str], str] | None = None,
    text: str | None = None,
) -> dict[str, Any]:
    """The full message (GET .../messages/:message). `html` and `text` are what
    `MessageService.body` renders; without `text`, the stored search text is shown."""
    view: dict[str, Any] = {
        "id": doc.get("uid"),
        "mailbox": doc.get("mailbox"),
        "thread": doc.get("thread"),
        "user": doc.get("user"),
        "envelope": _envelope(doc),
        "from": _first_from(doc),
    }
    for key in ("replyTo", "to", "cc", "bcc"):
        addresses = _addresses_or_none(doc, key)
        if addresses is not None:
            view[key] = addresses
    view.update(
        subject=doc.get("subject") or "",
        messageId=doc.get("msgid") or "",
        date=iso(doc.get("hdate")),
        idate=iso(doc.get("idate")),
    )
    if doc.get("list"):
        view["list"] = dict(doc["list"])
    if doc.get("rdate") is not None:
        view["expires"] = iso(doc["rdate"])
    if text is None:
        text = str(doc.get("text") or "")
    if attachment_url is not None:
        text = _ATTACHMENT_LINK.sub(lambda m: attachment_url(m.group(1)), text)
    view.update(
        size=int(doc.get("size") or 0),
        **_flags(doc),
        html=rewrite_html(html, doc.get("cidMap") or [], attachment_url),
        text=text,
        attachments=[attachment_entry(a) for a in doc.get("attachments") or []],
        references=list(doc.get("references") or []),
        metaData=message_metadata(doc),
    )
    meta = doc.get("meta") or {}
    for key in ("files", "reference"):
        if meta.get(key):
            view[key] = meta[key]
    content_type = _content_type(doc)
    if content_type is not None:
        view["contentType"] = content_type
        if content_type["value"] in _ENCRYPTED_TYPES:
            view["encrypted"] = True
    return view


def listing_rows(
    listing: Listing, *, headers: HeaderSelection, metadata: bool
) -> list[dict[str, Any]]:
    """The rows of a listing or search page in WildDuck's shape, with thread sizes if counted."""
    counts = listing.thread_counts
    return [
        listing_item(
            row,
            headers=headers,
            metadata=metadata,
            thread_count=counts.get(str(row["thread"])) if counts is not None else None,
        )
        for row in listing.page.results
    ]
