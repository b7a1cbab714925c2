"""Header blocks over raw bytes: field splitting with offsets, RFC 2047 words, MIME parameters."""

from __future__ import annotations

import binascii
import re
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

from wildpy.mime.charsets import decode_bytes, decode_header_bytes

# Bounds that keep hostile header blocks cheap; the raw bytes stay intact either way.
MAX_HEADER_FIELDS = 5000
MAX_HEADER_LINES = 50000
MAX_DECODED_VALUE = 256 * 1024


@dataclass(slots=True)
class HeaderField:
    """One header field; start/end are byte offsets of the whole field (name to final EOL)."""

    name: str
    value: bytes  # raw bytes after the colon, folding included
    start: int
    end: int

    @property
    def key(self) -> str:
        return self.name.lower()

    def unfolded(self) -> bytes:
        """RFC 5322 section 2.2.3: unfolding removes the CRLFs; whitespace stays."""
        return _strip_eol(self.value)

    def text(self) -> str:
        """The value decoded for display: unfolded, trimmed, RFC 2047 words decoded."""
        text = decode_header_bytes(self.unfolded()[:MAX_DECODED_VALUE]).strip()
        return decode_words(text).replace("\x00", "\ufffd")


def _strip_eol(value: bytes) -> bytes:
    if b"\n" in value or b"\r" in value:
        return value.replace(b"\r\n", b"").replace(b"\n", b"").replace(b"\r", b"")
    return value


_FTEXT = re.compile(rb"[\x21-\x39\x3b-\x7e]+")  # RFC 5322 section 3.6.8 field-name


def parse_fields(raw: bytes, start: int, end: int) -> list[HeaderField]:
    """Split raw[start:end] (a header block) into fields; bounded, never raises.

    Lines without a colon (an mbox "From " line, junk) are skipped, as are their
    continuation lines; the raw block keeps them.
    """
    fields: list[HeaderField] = []
    value_starts: list[int] = []
    current: HeaderField | None = None
    pos = start
    lines = 0
    while pos < end and lines < MAX_HEADER_LINES:
        lines += 1
        nl = raw.find(b"\n", pos, end)
        line_end = end if nl < 0 else nl + 1
        first = raw[pos]
        if first in (0x20, 0x09):
            if current is not None:
                current.end = line_end
            pos = line_end
            continue
        if first in (0x0D, 0x0A) and raw[pos:line_end].strip() == b"":
            break  # the empty line
        current = None
        colon = raw.find(b":", pos, line_end)
        if colon > pos:
            name = raw[pos:colon].rstrip(b" \t")  # obsolete syntax: WSP before the colon
            if name and _FTEXT.fullmatch(name) and len(fields) < MAX_HEADER_FIELDS:
                current = HeaderField(name=name.decode("ascii"), value=b"", start=pos, end=line_end)
                fields.append(current)
                value_starts.append(colon + 1)
        pos = line_end
    # values are cut once at the end: re-slicing per continuation line would be quadratic
    for field, value_start in zip(fields, value_starts, strict=True):
        field.value = raw[value_start : field.end]
    return fields


# --- RFC 2047 encoded words -------------------------------------------------------

_ENCODED_WORD = re.compile(r"=\?([^?\s]{1,80})\?([bBqQ])\?([^?]*)\?=")
_B64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_B64_JUNK = bytes(b for b in range(256) if b not in _B64_ALPHABET)


def b64decode_lenient(data: bytes) -> bytes:
    """Base64 that never raises: junk is dropped, padding repaired, a dangling byte ignored.

    Concatenated encodings ("QQ==QQ==") are decoded chunk by chunk.
    """
    out: list[bytes] = []
    for chunk in data.split(b"="):
        chunk = chunk.translate(None, _B64_JUNK)
        if not chunk:
            continue
        rem = len(chunk) % 4
        if rem == 1:
            chunk = chunk[:-1]
        elif rem:
            chunk += b"=" * (4 - rem)
        if chunk:
            try:
                out.append(binascii.a2b_base64(chunk))
            except (binascii.Error, ValueError):
                continue
    return b"".join(out)


def qdecode_word(data: bytes) -> bytes:
    """RFC 2047 section 4.2 "Q" encoding."""
    try:
        return binascii.a2b_qp(data, header=True)
    except (binascii.Error, ValueError):
        return data


def decode_words(text: str) -> str:
    """Decode RFC 2047 encoded words in an unstructured text, leniently.

    Whitespace between adjacent encoded words is dropped (RFC 2047 section 6.2), and
    adjacent words in one charset are joined as bytes before decoding, so a multi-byte
    character split across two words survives.
    """
    if "=?" not in text:
        return text
    out: list[str] = []
    pending: list[bytes] = []
    pending_charset = ""
    pos = 0

    def flush() -> None:
        if pending:
            out.append(decode_bytes(b"".join(pending), pending_charset))
            pending.clear()

    for match in _ENCODED_WORD.finditer(text):
        between = text[pos : match.start()]
        pos = match.end()
        charset = match.group(1).split("*", 1)[0]
        payload = match.group(3).encode("latin-1", "replace")
        is_b = match.group(2) in "bB"
        if is_b and payload.translate(None, _B64_ALPHABET + b"="):
            # not base64 at all (spaces, punctuation): keep the text as written
            flush()
            out.append(between + match.group(0))
            continue
        if between and (between.strip() or not pending):
            flush()
            out.append(between)
        data = b64decode_lenient(payload) if is_b else qdecode_word(payload)
        if pending and charset.lower() != pending_charset.lower():
            flush()
        pending_charset = charset
        pending.append(data)
    flush()
    out.append(text[pos:])
    return "".join(out).replace("\x00", "\ufffd")


# --- MIME parameters (RFC 2045 section 5.1, RFC 2231) ---------------------------


@dataclass(slots=True)
class ParsedParams:
    """A Content-Type or Content-Disposition value with its parameters.

    `raw_params` keeps the names as written and joins RFC 2231 continuations without
    decoding them (what IMAP BODYSTRUCTURE shows, as Dovecot does); `params` has
    lowercased names and fully decoded values (RFC 2231 charset and continuations).
    """

    value: str  # lowercased, whitespace removed: "text/plain"
    raw_value: str  # as written (case kept), for IMAP BODYSTRUCTURE
    raw_params: list[tuple[str, str]]
    params: dict[str, str]


def _skip_comment(text: str, pos: int) -> int:
    depth = 0
    n = len(text)
    while pos < n:
        ch = text[pos]
        if ch == "\\":
            pos += 2
            continue
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return pos + 1
        pos += 1
    return n


def _read_quoted(text: str, pos: int) -> tuple[str, int]:
    """Read a quoted-string starting at text[pos] == '"'; unterminated runs to the end."""
    out: list[str] = []
    pos += 1
    n = len(text)
    while pos < n:
        ch = text[pos]
        if ch == "\\" and pos + 1 < n:
            out.append(text[pos + 1])
            pos += 2
            continue
        if ch == '"':
            return "".join(out), pos + 1
        out.append(ch)
        pos += 1
    return "".join(out), n


def _split_segments(text: str) -> list[str]:
    """Split at ';' outside quotes and comments. Quoted runs are kept between NUL marks
    (NULs were removed from the input) so that parse_params can tell them apart."""
    segments: list[str] = []
    buf: list[str] = []
    pos = 0
    n = len(text)
    while pos < n:
        ch = text[pos]
        if ch == '"':
            value, pos = _read_quoted(text, pos)
            buf.append("\x00" + value + "\x00")
            continue
        if ch == "(":
            pos = _skip_comment(text, pos)
            continue
        if ch == ";":
            segments.append("".join(buf))
            buf = []
        else:
            buf.append(ch)
        pos += 1
    segments.append("".join(buf))
    return segments


_PARAM_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


def parse_params(raw_value: bytes) -> ParsedParams:
    """Parse "type/subtype; a=b; c*=utf-8''x" (or a disposition). Never raises."""
    text = decode_header_bytes(_strip_eol(raw_value)[:MAX_DECODED_VALUE]).replace("\x00", "")
    segments = _split_segments(text)
    raw_main = "".join(segments[0].replace("\x00", "").split())  # "text / plain"
    raw_params: list[tuple[str, str]] = []
    for segment in segments[1:]:
        name, eq, val = segment.partition("=")
        name = name.replace("\x00", "").strip()
        if not eq or not name or not _PARAM_NAME.match(name):
            continue
        val = val.strip()
        if "\x00" in val:
            # a quoted value (possibly with stray text around it): keep the quoted part(s)
            parts = val.split("\x00")
            val = "".join(parts[1::2])
        raw_params.append((name, val))
    return ParsedParams(
        value=raw_main.lower(),
        raw_value=raw_main,
        raw_params=_join_continuations(raw_params),
        params=_decode_params(raw_params),
    )


_CONTINUATION = re.compile(r"^(.+?)\*(\d{1,3})(\*?)$")


def _join_continuations(raw: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Join name*0, name*1* ... into one "name" or "name*" entry, values undecoded."""
    out: list[tuple[str, str]] = []
    groups: dict[str, list[tuple[int, bool, str]]] = {}
    first_name: dict[str, str] = {}
    for name, val in raw:
        m = _CONTINUATION.match(name)
        if m is None:
            out.append((name, val))
            continue
        base = m.group(1)
        key = base.lower()
        if key not in groups:
            groups[key] = []
            first_name[key] = base
            out.append((key, "\x00group"))
        groups[key].append((int(m.group(2)), bool(m.group(3)), val))
    result: list[tuple[str, str]] = []
    for name, val in out:
        if val != "\x00group" or name not in groups:
            result.append((name, val))
            continue
        parts = sorted(groups[name], key=lambda p: p[0])
        extended = any(ext for _, ext, _ in parts)
        joined = "".join(v for _, _, v in parts)
        result.append((first_name[name] + ("*" if extended else ""), joined))
    return result


def _decode_params(raw: list[tuple[str, str]]) -> dict[str, str]:
    plain: dict[str, str] = {}
    extended: dict[str, str] = {}
    pieces: dict[str, list[tuple[int, bool, str]]] = {}
    for name, val in raw:
        lname = name.lower()
        m = _CONTINUATION.match(lname)
        if m is not None:
            pieces.setdefault(m.group(1), []).append((int(m.group(2)), bool(m.group(3)), val))
        elif lname.endswith("*"):
            extended.setdefault(lname[:-1], _decode_extended([(0, True, val)]))
        else:
            plain.setdefault(lname, val)
    for base, parts in pieces.items():
        parts.sort(key=lambda p: p[0])
        extended.setdefault(base, _decode_extended(parts))
    plain.update(extended)  # RFC 2231 values win over plain ones
    return plain


def _decode_extended(parts: list[tuple[int, bool, str]]) -> str:
    """RFC 2231 sections 3-4: charset'language'percent-encoded, continued segments."""
    charset = ""
    chunks: list[bytes] = []
    for index, (_, ext, val) in enumerate(parts):
        if ext:
            if index == 0 and val.count("'") >= 2:
                charset, _lang, val = val.split("'", 2)
            chunks.append(unquote_to_bytes(val))
        else:
            chunks.append(val.encode("utf-8"))
    return decode_bytes(b"".join(chunks), charset or "utf-8")
