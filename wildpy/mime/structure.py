"""The MIME tree of a raw message, with byte offsets of every part's header and body.

The parser never copies or rewrites the message: every node records where its header
block and body lie in the raw bytes, which is what IMAP BODY[n], BODY[n.MIME],
BODY[n.HEADER], BODY[n.TEXT] and partial fetches need, and what lets attachments be cut
out of the raw bytes. Malformed structure is handled the way Dovecot handles it, within
fixed depth and part-count limits.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from wildpy.mime.headers import (
    HeaderField,
    ParsedParams,
    parse_fields,
    parse_params,
)

MAX_DEPTH = 64  # multipart and message/rfc822 nesting; deeper parts are opaque leaves
MAX_PARTS = 10000  # nodes per message; once reached, remaining parts stay unsplit

# Encapsulated messages that get their own envelope and tree. message/global (RFC 6532)
# stays a plain leaf, as in Dovecot: RFC 3501 clients only expect MESSAGE/RFC822 there.
_MESSAGE_TYPES = frozenset({"message/rfc822"})


@dataclass(slots=True)
class MimeNode:
    """One MIME entity.

    Offsets: raw[header_start:header_end] is the header block including the empty line
    that ends it; raw[body_start:body_end] is the body (body_start == header_end). For a
    multipart the body includes preamble and epilogue; the line break before a boundary
    belongs to the boundary (RFC 2046 section 5.1.1), not to the part, except right after
    a nested close delimiter line (Dovecot's reading, which IMAP clients see elsewhere).
    For a bodiless part (header block ended by a boundary line) body_start == body_end.

    `path` is the IMAP part number: "" for the top-level message, "1.2" for parts. The
    root of an encapsulated message (`message` of a message/rfc822 part) carries the part
    number of that message/rfc822 part. Use `sections.resolve_section` to address parts: it
    applies RFC 3501 section 6.4.5 (a non-multipart message's body is part 1).
    """

    path: str
    depth: int
    header_start: int
    header_end: int
    body_start: int
    body_end: int
    headers: list[HeaderField]
    content_type: str  # "type/subtype", lowercased, defaults applied (RFC 2045 section 5.2)
    type_raw: str  # as written, for BODYSTRUCTURE
    subtype_raw: str
    params: dict[str, str]  # lowercased names, RFC 2231-decoded values
    raw_params: list[tuple[str, str]]  # as written, continuations joined
    disposition: str | None  # lowercased ("attachment", "inline", ...)
    disposition_raw: str | None
    disposition_params: dict[str, str]
    disposition_raw_params: list[tuple[str, str]]
    transfer_encoding: str  # lowercased, default "7bit"
    transfer_encoding_raw: str
    content_id: str | None  # raw header value, e.g. "<abc@example.com>"
    description: str | None  # raw header value
    language: list[str] | None
    location: str | None
    lines: int  # LF count in the body (BODYSTRUCTURE line count)
    children: list[MimeNode] = field(default_factory=list)
    message: MimeNode | None = None  # root of the encapsulated message (message/rfc822)
    opaque: bool = False  # a multipart or message not descended into (limits)

    @property
    def main_type(self) -> str:
        return self.content_type.partition("/")[0]

    @property
    def sub_type(self) -> str:
        return self.content_type.partition("/")[2]

    @property
    def is_multipart(self) -> bool:
        return self.main_type == "multipart" and not self.opaque

    @property
    def is_message(self) -> bool:
        return self.message is not None

    @property
    def charset(self) -> str | None:
        value = self.params.get("charset")
        return value.strip() or None if value is not None else None

    @property
    def body_size(self) -> int:
        return self.body_end - self.body_start

    @property
    def cid(self) -> str | None:
        """Content-ID without angle brackets."""
        if self.content_id is None:
            return None
        value = self.content_id.replace("<", "").replace(">", "").strip()
        return value or None

    def header(self, key: str) -> HeaderField | None:
        """First field with this (lowercase) name."""
        for f in self.headers:
            if f.key == key:
                return f
        return None

    def last_header(self, key: str) -> HeaderField | None:
        """Last field with this (lowercase) name."""
        for f in reversed(self.headers):
            if f.key == key:
                return f
        return None

    def walk(self) -> list[MimeNode]:
        """This node and all descendants in document order (encapsulated messages included)."""
        out: list[MimeNode] = []
        stack: list[MimeNode] = [self]
        while stack:
            node = stack.pop()
            out.append(node)
            if node.message is not None:
                stack.append(node.message)
            stack.extend(reversed(node.children))
        return out

    def to_dict(self) -> dict[str, Any]:
        """A JSON/BSON-friendly form (None fields omitted), for storing the tree."""
        out: dict[str, Any] = {}
        for f in fields(self):
            name = f.name
            value = getattr(self, name)
            if value is None or name in ("children", "message", "headers"):
                continue
            if name in ("raw_params", "disposition_raw_params"):
                value = [list(p) for p in value]
            out[name] = value
        out["headers"] = [[f.name, f.start, f.end, f.end - len(f.value)] for f in self.headers]
        if self.children:
            out["children"] = [c.to_dict() for c in self.children]
        if self.message is not None:
            out["message"] = self.message.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any], raw: bytes) -> MimeNode:
        """Inverse of to_dict; header values are re-cut from the raw message."""
        kwargs = {k: v for k, v in data.items() if k not in ("children", "message", "headers")}
        for name in ("raw_params", "disposition_raw_params"):
            kwargs[name] = [tuple(p) for p in kwargs.get(name, [])]
        for name in (
            "content_id",
            "description",
            "language",
            "location",
            "disposition",
            "disposition_raw",
        ):
            kwargs.setdefault(name, None)
        headers = [
            HeaderField(name=h[0], value=raw[h[3] : h[2]], start=h[1], end=h[2])
            for h in data.get("headers", [])
        ]
        node = cls(headers=headers, **kwargs)
        node.children = [cls.from_dict(c, raw) for c in data.get("children", [])]
        if "message" in data:
            node.message = cls.from_dict(data["message"], raw)
        return node


_OFFSETS = ("header_start", "header_end", "body_start", "body_end")


def drop_ranges(data: dict[str, Any], ranges: Sequence[tuple[int, int]]) -> dict[str, Any]:
    """A `to_dict` tree moved onto the raw message with the byte `ranges` taken out (sorted,
    disjoint [start, end) ranges), for `MimeNode.from_dict` on that shorter message.

    Offsets after a range move back by its length; offsets inside one move to where it was.
    So a part whose body was taken out keeps an empty body, and whatever lay inside it (the
    parts of an attached message) keeps empty ranges: nothing to read there.
    """

    def moved(position: int) -> int:
        removed = 0
        for start, end in ranges:
            if position >= end:
                removed += end - start
            elif position > start:
                return start - removed
            else:
                break
        return position - removed

    out = dict(data)
    for key in _OFFSETS:
        if key in out:
            out[key] = moved(int(out[key]))
    out["headers"] = [
        [h[0], moved(h[1]), moved(h[2]), moved(h[3])] for h in data.get("headers", [])
    ]
    if "children" in data:
        out["children"] = [drop_ranges(child, ranges) for child in data["children"]]
    if "message" in data:
        out["message"] = drop_ranges(data["message"], ranges)
    return out


class _Budget:
    def __init__(self) -> None:
        self.parts = 0


@dataclass(slots=True)
class _Boundary:
    """A boundary line found while scanning: which open multipart it belongs to."""

    start: int  # offset of the line ("--boundary...")
    line_end: int  # offset after its line break
    level: int  # index in the stack of open multiparts
    close: bool  # "--boundary--"


def parse_tree(raw: bytes) -> MimeNode:
    """Build the MIME tree of a raw RFC 5322 message. Never raises on content.

    One forward scan, like Dovecot's parser: the boundaries of all enclosing multiparts
    are active at once and the innermost one is tried first, so a line can end several
    nested parts, a missing close delimiter ends a part at the enclosing boundary, and
    a boundary that extends an outer one ("b2" inside "b") is not taken for it. A line
    that merely starts with a boundary ("--b junk") is a boundary line, as in Dovecot.
    """
    return _parse_entity(raw, 0, "", 0, "text/plain", [], _Budget())[0]


def top_headers(raw: bytes) -> list[HeaderField]:
    """The message's own header fields, exactly as `parse_tree(raw).headers`, without looking
    at the body (cheap: what threading needs before the whole message is parsed)."""
    return parse_fields(raw, 0, _header_end(raw, 0, []))


def _next_boundary(raw: bytes, pos: int, stack: list[bytes]) -> _Boundary | None:
    """The first line at or after `pos` that starts with an active delimiter."""
    if not stack:
        return None
    if pos == 0 and raw.startswith(b"--"):
        candidate = 0
    else:
        found = raw.find(b"\n--", pos - 1 if pos > 0 else 0)
        if found < 0:
            return None
        candidate = found + 1
    while True:
        for level in range(len(stack) - 1, -1, -1):
            delimiter = stack[level]
            if raw.startswith(delimiter, candidate):
                after = candidate + len(delimiter)
                newline = raw.find(b"\n", after)
                return _Boundary(
                    start=candidate,
                    line_end=len(raw) if newline < 0 else newline + 1,
                    level=level,
                    close=raw.startswith(b"--", after),
                )
        found = raw.find(b"\n--", candidate)
        if found < 0:
            return None
        candidate = found + 1


def _content_end(raw: bytes, boundary: _Boundary | None, floor: int) -> int:
    """Where content before a boundary ends: the line break before a boundary belongs to
    it (RFC 2046 section 5.1.1), unless that break is before `floor` (it ended a close
    delimiter line of a nested multipart: Dovecot keeps it in the part)."""
    if boundary is None:
        return len(raw)
    pos = boundary.start
    if pos > 0 and raw[pos - 1] == 0x0A:
        pos -= 1
        if pos > 0 and raw[pos - 1] == 0x0D:
            pos -= 1
    return max(pos, floor)


def _first_params(headers: list[HeaderField], key: str) -> ParsedParams | None:
    for f in headers:
        if f.key == key:
            return parse_params(f.value)
    return None


def _first_value(headers: list[HeaderField], key: str) -> str | None:
    for f in headers:
        if f.key == key:
            value = f.unfolded()
            text = value.decode("utf-8", "replace") if not value.isascii() else value.decode()
            return text.strip()
    return None


_TYPE_RE = re.compile(r"^([!#$%&'*+.^_`|~0-9A-Za-z-]+)/([!#$%&'*+.^_`|~0-9A-Za-z-]+)$")


def _parse_entity(
    raw: bytes,
    start: int,
    path: str,
    depth: int,
    default_type: str,
    stack: list[bytes],
    budget: _Budget,
) -> tuple[MimeNode, _Boundary | None]:
    """Parse the entity at `start`; it ends at the next boundary line of an enclosing
    multipart (returned, for the caller to act on) or at the end of the message."""
    budget.parts += 1
    header_end = _header_end(raw, start, stack)
    body_start = header_end
    headers = parse_fields(raw, start, header_end)
    node = _make_node(raw, path, depth, default_type, headers, start, header_end, body_start)

    following: _Boundary | None = None
    if node.main_type == "multipart" or node.content_type in _MESSAGE_TYPES:
        if depth >= MAX_DEPTH or budget.parts >= MAX_PARTS:
            node.opaque = True  # an opaque leaf: its own boundaries are not looked for
        elif node.main_type == "multipart":
            following = _parse_multipart(raw, node, stack, budget)
        else:
            message, following = _parse_entity(
                raw, body_start, path, depth + 1, "text/plain", stack, budget
            )
            node.message = message
            node.body_end = message.body_end
    if node.body_end < 0:  # a leaf (or opaque) body runs to the next boundary line
        following = _next_boundary(raw, body_start, stack)
        node.body_end = _content_end(raw, following, body_start)
    if node.main_type in ("text", "message"):
        node.lines = raw.count(b"\n", node.body_start, node.body_end)
    return node, following


def _matches(raw: bytes, pos: int, stack: list[bytes]) -> bool:
    return any(raw.startswith(delimiter, pos) for delimiter in stack)


def _header_end(raw: bytes, start: int, stack: list[bytes]) -> int:
    """Offset after the empty line that ends the header block at `start`.

    The block also ends at a boundary line (a part with a header and no body), or at
    the end of the message. Searched in growing windows so that the cost is linear in
    the header's own size even when a part has no empty line at all.
    """
    if raw.startswith(b"\r\n", start):
        return start + 2  # no header fields at all
    if raw.startswith(b"\n", start):
        return start + 1
    if stack and raw.startswith(b"--", start) and _matches(raw, start, stack):
        return start
    n = len(raw)
    search = start
    window = 4096
    while search < n:
        limit = min(n, search + window)
        # patterns may start before `limit` and end after it: search to limit + 2
        crlf = raw.find(b"\n\r\n", search, limit + 2)
        lf = raw.find(b"\n\n", search, limit + 1 if crlf < 0 else crlf + 2)
        blank = -1
        if lf >= 0 and (crlf < 0 or lf < crlf):
            blank, blank_end = lf, lf + 2
        elif crlf >= 0:
            blank, blank_end = crlf, crlf + 3
        if stack:
            dash = raw.find(b"\n--", search, (blank if blank >= 0 else limit) + 3)
            while dash >= 0 and (blank < 0 or dash < blank):
                if _matches(raw, dash + 1, stack):
                    return dash + 1
                dash = raw.find(b"\n--", dash + 1, (blank if blank >= 0 else limit) + 3)
        if blank >= 0:
            return blank_end
        search = limit
        window *= 2
    return n


def _parse_multipart(
    raw: bytes, node: MimeNode, stack: list[bytes], budget: _Budget
) -> _Boundary | None:
    """Parse the parts of a multipart (RFC 2046 section 5.1.1); sets node.body_end and
    returns the enclosing boundary line that ends it (None at the end of the message)."""
    boundary = node.params.get("boundary", "")
    if not boundary or len(boundary) > 200:
        # no usable boundary: no parts (BODYSTRUCTURE then shows an empty text/plain)
        following = _next_boundary(raw, node.body_start, stack)
        node.body_end = _content_end(raw, following, node.body_start)
        return following
    inner = [*stack, b"--" + boundary.encode("utf-8", "replace")]
    level = len(stack)
    floor = node.body_start
    found = _next_boundary(raw, node.body_start, inner)
    while found is not None and found.level == level:
        if found.close:
            # the epilogue runs to the next enclosing boundary
            following = _next_boundary(raw, found.line_end, stack)
            node.body_end = _content_end(raw, following, found.line_end)
            return following
        if budget.parts >= MAX_PARTS:
            # too many parts: the rest stays in this multipart's body, unsplit
            found = _next_boundary(raw, found.line_end, inner)
            continue
        number = len(node.children) + 1
        path = f"{node.path}.{number}" if node.path else str(number)
        child_default = (
            "message/rfc822" if node.content_type == "multipart/digest" else "text/plain"
        )
        child, found = _parse_entity(
            raw, found.line_end, path, node.depth + 1, child_default, inner, budget
        )
        node.children.append(child)
        floor = child.body_end
    # an enclosing boundary, or the end of the message, without our close delimiter
    node.body_end = _content_end(raw, found, floor)
    return found


def _make_node(
    raw: bytes,
    path: str,
    depth: int,
    default_type: str,
    headers: list[HeaderField],
    header_start: int,
    header_end: int,
    body_start: int,
) -> MimeNode:
    ctype = _first_params(headers, "content-type")
    type_raw, subtype_raw = default_type.split("/")
    raw_params: list[tuple[str, str]] = []
    params: dict[str, str] = {}
    if ctype is not None:
        m = _TYPE_RE.match(ctype.raw_value)
        if m is not None:
            type_raw, subtype_raw = m.group(1), m.group(2)
            raw_params, params = ctype.raw_params, ctype.params
        elif ctype.value == "text":
            # "Content-Type: text" with no subtype: text/plain, keep the parameters
            type_raw, subtype_raw = ctype.raw_value, "plain"
            raw_params, params = ctype.raw_params, ctype.params
        else:
            # RFC 2045 section 5.2: an invalid Content-Type means text/plain; us-ascii
            type_raw, subtype_raw = "text", "plain"

    disp = _first_params(headers, "content-disposition")
    has_disp = disp is not None and bool(disp.value)
    cte = (_first_value(headers, "content-transfer-encoding") or "").split()
    cte_raw = cte[0] if cte else "7bit"
    language_value = _first_value(headers, "content-language")
    language = [t for t in re.split(r"[\s,]+", language_value or "") if t] or None

    return MimeNode(
        path=path,
        depth=depth,
        header_start=header_start,
        header_end=header_end,
        body_start=body_start,
        body_end=-1,
        headers=headers,
        content_type=f"{type_raw}/{subtype_raw}".lower(),
        type_raw=type_raw,
        subtype_raw=subtype_raw,
        params=params,
        raw_params=raw_params,
        disposition=disp.value if disp is not None and has_disp else None,
        disposition_raw=disp.raw_value if disp is not None and has_disp else None,
        disposition_params=disp.params if disp is not None and has_disp else {},
        disposition_raw_params=disp.raw_params if disp is not None and has_disp else [],
        transfer_encoding=cte_raw.lower(),
        transfer_encoding_raw=cte_raw,
        content_id=_first_value(headers, "content-id"),
        description=_first_value(headers, "content-description"),
        language=language,
        location=_first_value(headers, "content-location"),
        lines=0,
    )
