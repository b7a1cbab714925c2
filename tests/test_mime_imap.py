"""ENVELOPE / BODYSTRUCTURE / BODY: data and wire form, compared with Dovecot 2.3.19.

tests/data/mime/<name>.dovecot holds Dovecot's FETCH response for <name>.eml (see the
README there). Quoting may legitimately differ (Dovecot sends some strings as literals
that we quote), so most comparisons parse both wire forms and compare the values; a few
messages are also compared byte for byte.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from wildpy.mime import (
    format_body,
    format_envelope,
    format_string,
    normalize_newlines,
    parse_message,
)
from wildpy.mime.imap_format import format_value

DATA = Path(__file__).parent / "data" / "mime"
FIXTURES = sorted(p.name for p in DATA.glob("*.eml"))

Parsed = None | int | bytes | tuple[str, bytes] | list["Parsed"]
_ATOM = re.compile(rb"[^ ()]+")


def read_imap(data: bytes) -> Parsed:
    """A small reader for IMAP response data: lists, NIL, numbers, strings, literals."""
    pos = 0

    def value() -> Parsed:
        nonlocal pos
        while data[pos : pos + 1] == b" ":
            pos += 1
        head = data[pos : pos + 1]
        if head == b"(":
            pos += 1
            items: list[Parsed] = []
            while True:
                while data[pos : pos + 1] == b" ":
                    pos += 1
                if data[pos : pos + 1] == b")":
                    pos += 1
                    return items
                items.append(value())
        if head == b'"':
            pos += 1
            out = bytearray()
            while data[pos : pos + 1] != b'"':
                if data[pos : pos + 1] == b"\\":
                    pos += 1
                out += data[pos : pos + 1]
                pos += 1
            pos += 1
            return bytes(out)
        if head == b"{":
            close = data.index(b"}", pos)
            size = int(data[pos + 1 : close])
            pos = close + 3
            literal = data[pos : pos + size]
            pos += size
            return literal
        m = _ATOM.match(data, pos)
        assert m is not None
        pos = m.end()
        token = m.group(0)
        if token == b"NIL":
            return None
        if token.isdigit():
            return int(token)
        return ("atom", token)

    result = value()
    assert pos == len(data), data[pos:]
    return result


def dovecot(name: str) -> dict[str, Parsed]:
    line = (DATA / name.replace(".eml", ".dovecot")).read_bytes()
    assert line.startswith(b"* 1 FETCH ")
    items = read_imap(line[len(b"* 1 FETCH ") :])
    assert isinstance(items, list)
    out: dict[str, Parsed] = {}
    for key, value in zip(items[::2], items[1::2], strict=True):
        assert isinstance(key, tuple)
        out[key[1].decode()] = value
    return out


def ours(raw: bytes) -> dict[str, Parsed]:
    message = parse_message(raw)
    return {
        "ENVELOPE": read_imap(format_envelope(message.envelope)),
        "BODYSTRUCTURE": read_imap(format_body(message.bodystructure)),
        "BODY": read_imap(format_body(message.body)),
    }


# Where we differ from Dovecot on purpose (see wildpy/mime/imap_structure.py).
KNOWN_DIFFERENCES = {
    "broken_8bit_headers.eml": {"ENVELOPE"},  # non-UTF-8 header bytes are sent as UTF-8
    "empty_fields.eml": {"ENVELOPE"},  # "a, , b": Dovecot adds a MISSING_MAILBOX entry
}


@pytest.mark.parametrize("name", FIXTURES)
def test_matches_dovecot(name: str) -> None:
    # Dovecot converts bare LF to CRLF on delivery; sizes count the stored form
    raw = normalize_newlines((DATA / name).read_bytes())
    expected = dovecot(name)
    got = ours(raw)
    for item in ("ENVELOPE", "BODYSTRUCTURE", "BODY"):
        if item in KNOWN_DIFFERENCES.get(name, set()):
            assert got[item] != expected[item]
        else:
            assert got[item] == expected[item], item


@pytest.mark.parametrize(
    "name", ["plain.eml", "mixed_attachments.eml", "forwarded.eml", "related.eml", "digest.eml"]
)
def test_wire_bytes_equal_dovecot(name: str) -> None:
    raw = (DATA / name).read_bytes()
    message = parse_message(raw)
    line = (
        b"* 1 FETCH (ENVELOPE "
        + format_envelope(message.envelope)
        + b" BODYSTRUCTURE "
        + format_body(message.bodystructure)
        + b" BODY "
        + format_body(message.body)
        + b")"
    )
    assert line == (DATA / name.replace(".eml", ".dovecot")).read_bytes()


def test_known_strings() -> None:
    """Two references spelled out, as Dovecot 2.3.19 returned them."""
    plain = parse_message((DATA / "plain.eml").read_bytes())
    assert format_body(plain.bodystructure) == (
        b'("text" "plain" ("charset" "utf-8") NIL NIL "quoted-printable" 121 7 NIL NIL NIL NIL)'
    )
    assert format_envelope(plain.envelope) == (
        b'("Mon, 15 Jan 2024 11:00:00 +0100" "Quarterly report" '
        b'(("Alice Example" NIL "alice" "example.com")) '
        b'(("Alice Example" NIL "alice" "example.com")) '
        b'(("Alice Example" NIL "alice" "example.com")) '
        b'(("Bob" NIL "bob" "example.org")(NIL NIL "carol" "example.org")) '
        b'(("Dave, Jr." NIL "dave" "example.net")) NIL "<prev@example.org>" '
        b'"<report-1@example.com>")'
    )
    forwarded = parse_message((DATA / "forwarded.eml").read_bytes())
    assert format_body(forwarded.body) == (
        b'(("text" "plain" ("charset" "utf-8") NIL NIL "7bit" 16 0)'
        b'("message" "rfc822" ("name" "original.eml") NIL NIL "7bit" 434 '
        b'("Sat, 20 Jan 2024 07:00:00 +0000" "Original message" '
        b'(("Carol" NIL "carol" "example.net")) (("Carol" NIL "carol" "example.net")) '
        b'(("Carol" NIL "carol" "example.net")) (("Alice" NIL "alice" "example.com")) '
        b'NIL NIL NIL "<orig-1@example.net>") '
        b'(("text" "plain" ("charset" "utf-8") NIL NIL "7bit" 14 0)'
        b'("application" "octet-stream" ("name" "blob.bin") NIL NIL "base64" 16) "mixed") 18)'
        b' "mixed")'
    )


def test_deliberate_differences() -> None:
    message = parse_message((DATA / "broken_8bit_headers.eml").read_bytes())
    assert message.envelope[1] == "café ÿþ junk"
    assert format_value(message.envelope[1]) == b"{15}\r\n" + "café ÿþ junk".encode()
    empty = parse_message((DATA / "empty_fields.eml").read_bytes())
    assert empty.envelope[5] == [
        [None, None, "a", "example.com"],
        [None, None, "b", "example.com"],
    ]
    assert empty.bodystructure[8] is None  # "Content-Disposition: " is NIL, not ("" NIL)
    invalid = parse_message(b"Content-Type: garbage\r\n\r\nx\r\n")
    assert invalid.bodystructure[:3] == ["text", "plain", ["charset", "us-ascii"]]


def test_missing_parts_and_defaults() -> None:
    no_parts = parse_message(b"Content-Type: multipart/mixed; boundary=zzz\r\n\r\nhello\r\n")
    assert format_body(no_parts.body) == (
        b'(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0) "mixed")'
    )
    empty = parse_message(b"")
    assert format_envelope(empty.envelope) == b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"
    assert format_body(empty.bodystructure) == (
        b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0 NIL NIL NIL NIL)'
    )


def test_deep_structure_serialises() -> None:
    raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n" * 1 + b"".join(
        b"Content-Type: multipart/mixed; boundary=c%03d\r\n\r\n--c%03d\r\n" % (i, i)
        for i in range(150)
    )
    message = parse_message(raw)
    wire = format_body(message.bodystructure)
    assert wire.count(b"(") == wire.count(b")")
    assert b'"application" "octet-stream"' in wire  # the opaque leaf at the depth limit
    read_imap(wire)


@pytest.mark.parametrize(
    ("value", "wire"),
    [
        ("plain", b'"plain"'),
        ('say "hi" \\ back', b'"say \\"hi\\" \\\\ back"'),
        ("", b'""'),
        ("line\r\nbreak", b"{11}\r\nline\r\nbreak"),
        ("Grüße", b"{7}\r\nGr\xc3\xbc\xc3\x9fe"),
        ("nul\x00byte", b"{10}\r\nnul\xef\xbf\xbdbyte"),
        ("x" * 1001, b"{1001}\r\n" + b"x" * 1001),
    ],
)
def test_format_string(value: str, wire: bytes) -> None:
    assert format_string(value) == wire
    assert read_imap(wire) == value.replace("\x00", "\ufffd").encode()


def test_format_value_rejects_bool() -> None:
    with pytest.raises(TypeError):
        format_value([True])
