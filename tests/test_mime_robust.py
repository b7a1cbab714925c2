"""Hostile and broken input: parse_message never raises and always gives a usable result."""

from __future__ import annotations

import base64
import random
from pathlib import Path

import pytest

from wildpy.mime import (
    MimeNode,
    ParsedMessage,
    decode_part,
    format_body,
    format_envelope,
    html_to_text,
    parse_message,
    part_text,
    sanitize_html,
    section_range,
)

DATA = Path(__file__).parent / "data" / "mime"
SEEDS = [p.read_bytes() for p in sorted(DATA.glob("*.eml"))]


def check_usable(raw: bytes, message: ParsedMessage) -> None:
    """Everything a caller touches works and stays inside the raw bytes."""
    assert message.size == len(raw)
    assert isinstance(message.subject, str) and isinstance(message.text, str)
    assert len(message.intro) <= 128
    assert format_envelope(message.envelope).startswith(b"(")
    wire = format_body(message.bodystructure)
    assert wire.startswith(b"(") and wire.endswith(b")")
    format_body(message.body)
    for attachment in message.attachments:
        assert 0 <= attachment.body_start <= attachment.body_end <= len(raw)
        assert len(attachment.hash) == 64
    nodes: list[MimeNode] = message.root.walk()
    for node in nodes:
        assert 0 <= node.header_start <= node.header_end <= node.body_end <= len(raw)
        decode_part(raw, node)
        part_text(raw, node)
    for section in ("", "HEADER", "TEXT", "1", "1.MIME", "2.1", "2.HEADER", "1.2.3.TEXT"):
        found = section_range(message.root, section)
        if found is not None:
            assert 0 <= found[0] <= found[1] <= len(raw)


BROKEN = {
    "empty": b"",
    "only_newline": b"\r\n",
    "only_lf": b"\n",
    "headers_only_no_eol": b"Subject: x",
    "no_colon": b"garbage line without colon\r\nmore garbage\r\n\r\nbody",
    "continuation_first": b" folded first line\r\nSubject: s\r\n\r\nb",
    "colon_only": b":\r\n: value\r\n\r\nb",
    "nul": b"Subject: \x00\x00\r\nFrom: \x00<a@b>\r\n\r\n\x00\x00\x00",
    "bare_cr": b"Subject: a\rFrom: b\r\rbody\r",
    "8bit_everywhere": bytes(range(128, 256)) * 4 + b"\r\n\r\n" + bytes(range(256)),
    "wrong_charset_names": b"Subject: =?x-nope?q?a?= =?utf-7?b?K2dSeg?= =?rot13?q?b?=\r\n"
    b"Content-Type: text/plain; charset=zlib_codec\r\n\r\nbody",
    "bad_ctype": b'Content-Type: ;;;=="\r\nContent-Disposition: ;filename*0*=%ZZ\r\n\r\nb',
    "bad_rfc2231": b"Content-Type: application/x; name*=\r\n"
    b"Content-Disposition: attachment; filename*=no-charset; filename*1*=%FF\r\n\r\nb",
    "multipart_no_boundary_param": b"Content-Type: multipart/mixed\r\n\r\n--x\r\n\r\nb\r\n",
    "multipart_empty_boundary": b'Content-Type: multipart/mixed; boundary=""\r\n\r\n--\r\n\r\nb',
    "close_first": b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b--\r\n--b\r\n\r\nx\r\n",
    "boundary_no_eol": b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b",
    "boundary_in_header": b"Content-Type: multipart/mixed; boundary=b\r\n--b\r\n\r\nx",
    "truncated_qp": b"Content-Transfer-Encoding: quoted-printable\r\n\r\nabc=\r\nd=E",
    "truncated_base64": b"Content-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\niVB",
    "rfc822_empty": b"Content-Type: message/rfc822\r\n\r\n",
    "rfc822_base64": (DATA / "message_base64.eml").read_bytes(),
    "huge_header_line": b"Subject: " + b"x" * 2_000_000 + b"\r\n\r\nbody",
    "huge_address_list": b"To: " + b"a@b, " * 100_000 + b"\r\n\r\nb",
    "many_encoded_words": b"Subject: " + b"=?utf-8?q?a?= " * 20_000 + b"\r\n\r\nb",
    "unclosed_comment_quote": b'From: "a (b <c@d\r\nTo: (((((\r\n\r\nb',
    "deep_html": b"Content-Type: text/html\r\n\r\n" + b"<div>" * 50_000 + b"x",
    "html_unclosed_script": b"Content-Type: text/html\r\n\r\n<p>a</p><script>alert(1)",
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_input(name: str) -> None:
    raw = BROKEN[name]
    check_usable(raw, parse_message(raw))


HOSTILE_HTML = [
    "<a " * 20000,
    "<!--" * 20000,
    "</" * 20000,
    '<a href="' * 20000,
    "<div>" * 20000,
    "</div>" * 20000,
    "<b><i>" * 10000 + "</b>" * 10000,
    "<a " + "x " * 50000 + ">",
    "<" * 50000,
    "&" * 50000 + "&amp;" * 20000,
    "<script>" * 20000,
    "<svg>" * 20000,
]


@pytest.mark.parametrize("index", range(len(HOSTILE_HTML)))
def test_hostile_html_is_linear(index: int) -> None:
    """Inputs that take html.parser (Python 3.11) minutes: here a single pass."""
    source = HOSTILE_HTML[index]
    out = sanitize_html(source)
    assert "<script" not in out and "<svg" not in out
    html_to_text(source)
    raw = b"Content-Type: text/html\r\n\r\n" + source.encode()
    check_usable(raw, parse_message(raw))


def test_empty_message() -> None:
    m = parse_message(b"")
    assert m.subject == "" and m.text == "" and m.html == [] and m.attachments == []
    assert m.date is None and m.message_id is None and m.from_ == []
    assert m.root.content_type == "text/plain"


def test_two_thousand_duplicated_headers() -> None:
    raw = b"Received: from x by y; Mon, 1 Jan 2024 00:00:00 +0000\r\n" * 2000
    raw += b"Subject: s\r\n" * 2000 + b"\r\nbody\r\n"
    m = parse_message(raw)
    assert m.subject == "s" and m.text == "body"
    assert len(m.root.headers) == 4000
    assert len(m.index_headers) == 200


def test_header_field_count_is_bounded() -> None:
    raw = b"X: y\r\n" * 100_000 + b"\r\nbody"
    m = parse_message(raw)
    assert len(m.root.headers) <= 5000
    assert m.root.body_start == len(raw) - 4 and m.text == "body"


def test_two_hundred_deep_nesting() -> None:
    raw = b"".join(
        b"Content-Type: multipart/mixed; boundary=%03d\r\n\r\n--%03d\r\n" % (i, i)
        for i in range(200)
    )
    raw += b"Content-Type: text/plain\r\n\r\ndeep text\r\n"
    m = parse_message(raw)
    check_usable(raw, m)
    assert m.root.walk()[-1].opaque


def test_large_message_with_attachment() -> None:
    payload = bytes(range(256)) * 4096 * 4  # 4 MiB
    encoded = base64.encodebytes(payload).replace(b"\n", b"\r\n")
    raw = (
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nhi\r\n--b\r\n"
        b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + encoded
        + b"--b--\r\n"
    )
    m = parse_message(raw)
    (attachment,) = m.attachments
    assert attachment.size == len(payload)
    assert raw[attachment.body_start : attachment.body_end] == encoded.removesuffix(b"\r\n")


def _mutate(rng: random.Random, data: bytes) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        op = rng.randrange(6)
        pos = rng.randrange(len(buf) + 1)
        if op == 0 and buf:  # flip a byte
            buf[min(pos, len(buf) - 1)] = rng.randrange(256)
        elif op == 1:  # insert structural junk
            token = rng.choice(
                [b"\r\n", b"\n", b"--", b"\r\n\r\n", b":", b"=?", b"?=", b'"', b"(", b"<", b";",
                 b"\x00", b"\xff", b"boundary=", b"Content-Type: multipart/mixed; boundary=x\r\n",
                 b"--x\r\n", b"--x--\r\n", b"Content-Transfer-Encoding: base64\r\n", b"=\r\n"]
            )  # fmt: skip
            buf[pos:pos] = token
        elif op == 2:  # delete a range
            del buf[pos : pos + rng.randint(1, 40)]
        elif op == 3:  # truncate
            del buf[pos:]
        elif op == 4 and buf:  # duplicate a range
            start = rng.randrange(len(buf))
            buf[pos:pos] = buf[start : start + rng.randint(1, 200)]
        else:  # swap line endings
            buf = bytearray(bytes(buf).replace(b"\r\n", b"\n"))
    return bytes(buf)


@pytest.mark.parametrize("seed", range(8))
def test_random_mutations_never_raise(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(250):
        raw = _mutate(rng, rng.choice(SEEDS))
        check_usable(raw, parse_message(raw))


@pytest.mark.parametrize("seed", range(4))
def test_random_bytes_never_raise(seed: int) -> None:
    rng = random.Random(1000 + seed)
    alphabet = b'abc:;=?"<>()@,.-\r\n \t\x00\xff\xc3'
    for _ in range(200):
        raw = bytes(rng.choice(alphabet) for _ in range(rng.randint(0, 400)))
        check_usable(raw, parse_message(raw))
        multipart = b"Content-Type: multipart/mixed; boundary=-\r\n\r\n" + raw
        check_usable(multipart, parse_message(multipart))
