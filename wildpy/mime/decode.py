"""Content-Transfer-Encoding decoding and part text, best effort and never raising."""

from __future__ import annotations

import binascii
import re

from wildpy.mime.charsets import decode_bytes
from wildpy.mime.headers import b64decode_lenient
from wildpy.mime.structure import MimeNode

_QP_TRAILING_WS = re.compile(rb"[ \t]+(\r?\n)")


def decode_qp(data: bytes) -> bytes:
    """Quoted-printable (RFC 2045 section 6.7), lenient: bad "=" sequences stay literal."""
    if b" \n" in data or b"\t\n" in data or b" \r\n" in data or b"\t\r\n" in data:
        # rule 3: whitespace at the end of an encoded line was added in transport
        data = _QP_TRAILING_WS.sub(rb"\1", data)
    try:
        return binascii.a2b_qp(data)
    except (binascii.Error, ValueError):
        return data


def decode_transfer(data: bytes, encoding: str) -> bytes:
    """Decode a body given its Content-Transfer-Encoding (unknown ones pass through)."""
    encoding = encoding.lower()
    if encoding == "base64":
        return b64decode_lenient(data)
    if encoding == "quoted-printable":
        return decode_qp(data)
    return data


def decode_part(raw: bytes, node: MimeNode) -> bytes:
    """The decoded body of a node, cut from the raw message by its offsets."""
    return decode_transfer(raw[node.body_start : node.body_end], node.transfer_encoding)


def decode_flowed(text: str, delsp: bool) -> str:
    """Undo format=flowed (RFC 3676 section 4): join soft-broken lines, unstuff spaces."""
    out: list[str] = []
    buf: list[str] = []
    buf_quote = -1
    for line in text.replace("\r\n", "\n").split("\n"):
        depth = len(line) - len(line.lstrip(">"))
        content = line[depth:]
        if content.startswith(" "):
            content = content[1:]  # space-stuffing (section 4.4)
        flowed = content.endswith(" ") and content != "-- "
        if buf and depth != buf_quote:
            out.append(">" * buf_quote + (" " if buf_quote else "") + "".join(buf))
            buf = []
        buf_quote = depth
        if flowed:
            buf.append(content[:-1] if delsp else content)
            continue
        buf.append(content)
        out.append(">" * depth + (" " if depth else "") + "".join(buf))
        buf = []
    if buf:
        out.append(">" * buf_quote + (" " if buf_quote else "") + "".join(buf))
    return "\n".join(out)


def part_text(raw: bytes, node: MimeNode, charset: str | None = None) -> str:
    """A text part as str: transfer-decoded, then the charset (declared, then UTF-8,
    then windows-1252/latin-1), then format=flowed undone. Line breaks become "\\n"."""
    data = decode_part(raw, node)
    if charset is None:
        charset = node.charset
    if charset is None and node.content_type == "text/html":
        charset = _html_meta_charset(data)
    text = decode_bytes(data, charset)
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    if node.params.get("format", "").strip().lower() == "flowed":
        text = decode_flowed(text, node.params.get("delsp", "").strip().lower() == "yes")
    return text.replace("\x00", "")


_META_CHARSET = re.compile(
    rb"""<meta[^>]{0,200}?charset\s*=\s*["']?\s*([A-Za-z0-9._:-]{1,40})""", re.IGNORECASE
)


def _html_meta_charset(data: bytes) -> str | None:
    m = _META_CHARSET.search(data[:4096])
    return m.group(1).decode("ascii") if m else None
