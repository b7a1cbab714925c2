"""parse_message: one pass over a raw message for the store, the REST API and IMAP.

What goes where follows WildDuck's indexer (lib/indexer.js) so that the REST API shows
the same thing: text/plain and text/html parts without an "attachment" disposition are
the body, other leaves are attachments numbered ATT00001... in document order, text
outside multipart/alternative is also rendered into html[] and html into text.
Deliberate differences: HTML is sanitised here; a message/rfc822 part with an
"attachment" disposition is one .eml attachment instead of being merged into the body;
default filenames are "attachment-N.ext" rather than random.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from wildpy.mime.addresses import flatten, parse_address_list
from wildpy.mime.charsets import decode_header_bytes
from wildpy.mime.decode import decode_transfer, part_text
from wildpy.mime.headers import MAX_DECODED_VALUE, HeaderField, decode_words
from wildpy.mime.html import html_to_text, sanitize_html, text_to_html
from wildpy.mime.imap_structure import ImapValue, build_body, build_envelope
from wildpy.mime.structure import MimeNode, parse_tree, top_headers

INTRO_LENGTH = 128
MAX_INDEX_HEADERS = 200
MAX_INDEX_VALUE = 880  # keeps {key, value} index entries under MongoDB's 1 KiB key limit
# The sanitiser runs at a few MB/s: HTML beyond this budget (per message) is shown as its
# plain text instead, so a message full of HTML parts cannot cost seconds of CPU.
MAX_HTML_SANITIZE = 2 * 1024 * 1024

_TEXT_TYPES = frozenset(
    {"text/plain", "text/html", "text/rfc822-headers", "message/delivery-status"}
)
_MSGID = re.compile(r"<[^<>\s]*>")

_EXTENSIONS = {
    "application/pdf": "pdf",
    "application/zip": "zip",
    "application/json": "json",
    "application/msword": "doc",
    "application/octet-stream": "bin",
    "application/pgp-signature": "asc",
    "application/pkcs7-signature": "p7s",
    "application/x-pkcs7-signature": "p7s",
    "application/ics": "ics",
    "application/vnd.ms-excel": "xls",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
    "audio/mpeg": "mp3",
    "image/gif": "gif",
    "image/jpeg": "jpg",
    "image/jpg": "jpg",
    "image/png": "png",
    "image/svg+xml": "svg",
    "image/webp": "webp",
    "message/rfc822": "eml",
    "message/global": "eml",
    "message/delivery-status": "txt",
    "text/calendar": "ics",
    "text/csv": "csv",
    "text/html": "html",
    "text/plain": "txt",
    "text/rfc822-headers": "txt",
    "text/vcard": "vcf",
    "text/x-vcard": "vcf",
    "video/mp4": "mp4",
}


@dataclass(slots=True, frozen=True)
class Address:
    """A mailbox for the API: decoded display name and address (both possibly empty)."""

    name: str
    address: str

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "address": self.address}


@dataclass(slots=True)
class AttachmentInfo:
    """An attachment: API fields plus where its encoded body lies in the raw message.

    `hash` is the SHA-256 (hex) of the encoded body bytes exactly as in the raw message:
    the GridFS dedup key. `file_content_hash` is the SHA-256 of the decoded content,
    base64, as WildDuck computes it.
    """

    id: str
    filename: str
    content_type: str
    disposition: str | None
    transfer_encoding: str
    cid: str | None
    related: bool
    size: int
    hash: str
    file_content_hash: str
    part: str  # IMAP part number
    body_start: int
    body_end: int

    @property
    def size_kb(self) -> int:
        return -(-self.size // 1024)

    def as_api(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "filename": self.filename,
            "contentType": self.content_type,
            "disposition": self.disposition or False,  # WildDuck sends false when absent
            "transferEncoding": self.transfer_encoding,
            "related": self.related,
            "sizeKb": self.size_kb,
            "size": self.size,
            "hash": self.hash,
            "fileContentHash": self.file_content_hash,
        }
        if self.cid:
            out["cid"] = self.cid
        return out


@dataclass(slots=True)
class ParsedMessage:
    """Everything the store, the REST API and IMAP need from one raw message."""

    size: int
    root: MimeNode
    subject: str
    from_: list[Address]
    sender: list[Address]
    reply_to: list[Address]
    to: list[Address]
    cc: list[Address]
    bcc: list[Address]
    message_id: str | None
    in_reply_to: str | None
    references: list[str]
    date: datetime | None
    text: str
    html: list[str]
    intro: str
    attachments: list[AttachmentInfo]
    has_attachments: bool
    index_headers: list[tuple[str, str]]
    content_type: dict[str, Any]
    list_id: str | None
    list_unsubscribe: str | None
    envelope: list[ImapValue]
    bodystructure: list[ImapValue]
    body: list[ImapValue]
    cid_map: dict[str, str] = field(default_factory=dict)  # cid -> attachment id

    @property
    def headers(self) -> list[HeaderField]:
        return self.root.headers


@dataclass(frozen=True)
class ThreadHeaders:
    """The header values threading looks at, as `parse_message` decodes them."""

    subject: str
    message_id: str | None
    in_reply_to: str | None
    references: list[str]
    #: the Thread-Index header (Outlook), as text
    thread_index: str | None

    @classmethod
    def of(cls, parsed: ParsedMessage) -> ThreadHeaders:
        index = parsed.root.last_header("thread-index")
        return cls(
            subject=parsed.subject,
            message_id=parsed.message_id,
            in_reply_to=parsed.in_reply_to,
            references=parsed.references,
            thread_index=None if index is None else index.text(),
        )


def thread_headers(raw: bytes) -> ThreadHeaders:
    """`ThreadHeaders.of(parse_message(raw))` from the top header block alone: a fraction of
    the cost, so a store can start its thread lookup before parsing the rest."""
    fields = top_headers(bytes(raw))

    def header_text(key: str) -> str | None:
        for f in reversed(fields):
            if f.key == key:
                return f.text()
        return None

    return ThreadHeaders(
        subject=header_text("subject") or "",
        message_id=_first_msgid(header_text("message-id")),
        in_reply_to=_first_msgid(header_text("in-reply-to")),
        references=_all_msgids(header_text("references")),
        thread_index=header_text("thread-index"),
    )


def parse_message(raw: bytes, *, html: bool = True) -> ParsedMessage:
    """Parse a raw RFC 5322 message. Never raises on content, whatever the bytes are.

    The offsets recorded in the tree refer to `raw` exactly as given; a store that wants
    IMAP-clean CRLF line endings should normalise first (see normalize_newlines).

    With `html` False, `html` is left empty: no HTML is sanitised and no text rendered as
    HTML (a store that renders it when a message is shown, with `render_body`, saves that
    work on every add). Everything else, `text` included, is the same.
    """
    raw = bytes(raw)
    root = parse_tree(raw)
    content = _Content(raw, html=html)
    content.walk(root, alternative=False, related=False)
    text, html_parts = content.body()

    def header_text(key: str) -> str | None:
        f = root.last_header(key)
        return None if f is None else f.text()

    message_id = _first_msgid(header_text("message-id"))
    references = _all_msgids(header_text("references"))
    attachments = content.attachments
    return ParsedMessage(
        size=len(raw),
        root=root,
        subject=header_text("subject") or "",
        from_=_addresses(root.last_header("from")),
        sender=_addresses(root.last_header("sender")),
        reply_to=_addresses(root.last_header("reply-to")),
        to=_addresses(root.last_header("to")),
        cc=_addresses(root.last_header("cc")),
        bcc=_addresses(root.last_header("bcc")),
        message_id=message_id,
        in_reply_to=_first_msgid(header_text("in-reply-to")),
        references=references,
        date=_parse_date(header_text("date")),
        text=text,
        html=html_parts,
        intro=make_intro(text),
        attachments=attachments,
        has_attachments=any(not a.related for a in attachments),
        index_headers=_index(root.headers),
        content_type={"value": root.content_type, "params": dict(root.params)},
        list_id=header_text("list-id"),
        list_unsubscribe=header_text("list-unsubscribe"),
        envelope=build_envelope(root),
        bodystructure=build_body(root, extended=True),
        body=build_body(root, extended=False),
        cid_map={a.cid: a.id for a in attachments if a.cid},
    )


def render_body(raw: bytes, root: MimeNode) -> tuple[str, list[str]]:
    """The `text` and `html` that `parse_message(raw)` gives, from its tree `root` (for
    instance one stored with `MimeNode.to_dict` and rebuilt with `from_dict`).

    Only the bytes of the body's own text and HTML parts are read: the bodies of attachments
    may be missing from `raw` (zeros in their place), as when a store leaves them out.
    """
    content = _Content(raw, html=True, attachments=False)
    content.walk(root, alternative=False, related=False)
    return content.body()


def header_index(raw: bytes) -> list[tuple[str, str]]:
    """`parse_message(raw).index_headers` from the top header block alone (`raw` may be just
    that block): what a store that keeps the block apart answers `includeHeaders` with."""
    return _index(top_headers(raw))


def _index(fields: list[HeaderField]) -> list[tuple[str, str]]:
    return [(f.key, f.text()[:MAX_INDEX_VALUE]) for f in fields[:MAX_INDEX_HEADERS]]


class _Content:
    """Walks the tree once, collecting body text, HTML and attachments.

    `html` False skips the HTML (sanitising is the costliest step of a parse); `attachments`
    False skips the attachments, whose bodies are then never read."""

    def __init__(self, raw: bytes, *, html: bool = True, attachments: bool = True) -> None:
        self.raw = raw
        self.text_parts: list[str] = []
        self.html_parts: list[str] = []
        self.attachments: list[AttachmentInfo] = []
        self.html_budget = MAX_HTML_SANITIZE
        self.want_html = html
        self.want_attachments = attachments

    def body(self) -> tuple[str, list[str]]:
        """The text (parts joined by line breaks) and the non-empty HTML parts."""
        text = "\n".join(t for t in (s.strip() for s in self.text_parts) if t).strip()
        return text, [h for h in (s.strip() for s in self.html_parts) if h]

    def walk(self, node: MimeNode, alternative: bool, related: bool) -> None:
        ctype = node.content_type
        alternative = alternative or ctype == "multipart/alternative"
        related = related or ctype == "multipart/related"
        if node.is_multipart:
            if not node.children:
                # no boundary found at all: show the body as text rather than nothing
                self._add_text(node, "text/plain", alternative)
            for child in node.children:
                self.walk(child, alternative, related)
            return
        if node.message is not None and node.disposition != "attachment":
            # an inline forwarded message: its content joins the body (as WildDuck)
            self.walk(node.message, alternative, related)
            return
        if ctype in _TEXT_TYPES and node.disposition in (None, "inline") and not node.opaque:
            self._add_text(node, ctype, alternative)
            return
        if node.body_size > 0 and self.want_attachments:
            self._add_attachment(node, related)

    def _add_text(self, node: MimeNode, ctype: str, alternative: bool) -> None:
        if node.body_size == 0:
            return
        content = part_text(self.raw, node)
        if ctype == "text/html":
            text = html_to_text(content)
            if self.want_html:
                self.html_parts.append(self._sanitized(content, text))
            if not alternative:
                self.text_parts.append(text)
        else:
            self.text_parts.append(content)
            if not alternative and self.want_html:
                self.html_parts.append(text_to_html(content))

    def _sanitized(self, content: str, text: str) -> str:
        if len(content) <= self.html_budget:
            self.html_budget -= len(content)
            return sanitize_html(content)
        return text_to_html(text)

    def _add_attachment(self, node: MimeNode, related: bool) -> None:
        number = len(self.attachments) + 1
        encoded = memoryview(self.raw)[node.body_start : node.body_end]
        decoded = decode_transfer(bytes(encoded), node.transfer_encoding)
        cid = node.cid
        self.attachments.append(
            AttachmentInfo(
                id=f"ATT{number:05d}",
                filename=_filename(node, number),
                content_type=node.content_type,
                disposition=node.disposition,
                transfer_encoding=node.transfer_encoding,
                cid=cid,
                related=related and cid is not None,
                size=len(decoded),
                hash=hashlib.sha256(encoded).hexdigest(),
                file_content_hash=base64.b64encode(hashlib.sha256(decoded).digest()).decode(),
                part=_part_number(node),
                body_start=node.body_start,
                body_end=node.body_end,
            )
        )


def _part_number(node: MimeNode) -> str:
    # a non-multipart top-level message is part 1 (RFC 3501 section 6.4.5)
    return node.path or "1"


_UNSAFE_FILENAME = re.compile(r"[\x00-\x1f\x7f]+")


def _filename(node: MimeNode, number: int) -> str:
    name = node.disposition_params.get("filename") or node.params.get("name") or ""
    name = _UNSAFE_FILENAME.sub("", decode_words(name)).strip()
    if name:
        return name
    ext = _EXTENSIONS.get(node.content_type)
    if ext is None:
        sub = node.sub_type.removeprefix("x-")
        ext = sub if sub.isalnum() and len(sub) <= 8 else "bin"
    return f"attachment-{number}.{ext}"


def _addresses(f: HeaderField | None) -> list[Address]:
    if f is None:
        return []
    text = decode_header_bytes(f.unfolded()[:MAX_DECODED_VALUE])
    return [Address(m.display_name(), m.address) for m in flatten(parse_address_list(text))]


def _first_msgid(value: str | None) -> str | None:
    if not value:
        return None
    m = _MSGID.search(value)
    if m is not None and len(m.group(0)) > 2:
        return m.group(0)
    value = value.strip()
    return value[:998] or None


def _all_msgids(value: str | None) -> list[str]:
    if not value:
        return []
    seen: dict[str, None] = {}
    for m in _MSGID.finditer(value):
        if len(m.group(0)) > 2:
            seen.setdefault(m.group(0), None)
    if not seen:
        for token in value.split():
            seen.setdefault(token, None)
    return list(seen)[:100]


def _parse_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except Exception:  # the stdlib raises several types on junk; a bad Date is just absent
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def make_intro(text: str) -> str:
    """The listing preview: whitespace collapsed, at most INTRO_LENGTH characters."""
    intro = " ".join(text[: INTRO_LENGTH * 16].split())
    if len(intro) <= INTRO_LENGTH:
        return intro
    cut = intro[: INTRO_LENGTH - 1]
    space = cut.rfind(" ")
    if intro[INTRO_LENGTH - 1] != " " and space > INTRO_LENGTH // 2:
        cut = cut[:space]  # do not end inside a word
    return cut.rstrip() + "…"


def normalize_newlines(raw: bytes) -> bytes:
    """Bare LF to CRLF (IMAP sends CRLF lines; RFC 5322 section 2.3). Bare CR is kept."""
    if b"\n" not in raw:
        return raw
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
