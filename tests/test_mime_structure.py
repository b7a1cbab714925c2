"""MIME tree offsets and IMAP section addressing, checked against Dovecot's answers."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from wildpy.mime import (
    MAX_DEPTH,
    MimeNode,
    normalize_newlines,
    parse_tree,
    resolve_section,
    section_range,
)
from wildpy.mime.structure import MAX_PARTS

DATA = Path(__file__).parent / "data" / "mime"
FIXTURES = sorted(p.name for p in DATA.glob("*.eml"))


def load(name: str) -> bytes:
    return (DATA / name).read_bytes()


def check_invariants(raw: bytes, node: MimeNode, lo: int, hi: int) -> None:
    """Offsets are ordered, nested and inside the parent's range."""
    assert lo <= node.header_start <= node.header_end == node.body_start <= node.body_end <= hi
    for field in node.headers:
        assert node.header_start <= field.start < field.end <= node.header_end
        assert raw[field.start : field.end].startswith(field.name.encode())
        assert raw[field.start : field.end].endswith(field.value)
    previous = node.body_start
    for child in node.children:
        assert child.header_start >= previous
        check_invariants(raw, child, node.body_start, node.body_end)
        previous = child.body_end
    if node.message is not None:
        assert node.message.header_start == node.body_start
        assert node.message.body_end == node.body_end
        check_invariants(raw, node.message, node.body_start, node.body_end)


@pytest.mark.parametrize("name", FIXTURES)
def test_offsets_are_consistent(name: str) -> None:
    raw = load(name)
    root = parse_tree(raw)
    assert root.header_start == 0
    assert root.body_end == len(raw)
    check_invariants(raw, root, 0, len(raw))


DOVECOT_SECTIONS: dict[str, dict[str, str | None]] = json.loads(
    (DATA / "dovecot_sections.json").read_text()
)


@pytest.mark.parametrize("name", sorted(DOVECOT_SECTIONS))
def test_sections_match_dovecot(name: str) -> None:
    """BODY[section] for ~35 sections per fixture, as Dovecot 2.3.19 answered them."""
    # Dovecot stores CRLF lines (it converts bare LF) and shows NUL as 0x80
    raw = normalize_newlines(load(name))
    root = parse_tree(raw)
    mismatches = []
    for section, value in sorted(DOVECOT_SECTIONS[name].items()):
        expected = base64.b64decode(value) if value else b""
        found = section_range(root, section)
        got = raw[found[0] : found[1]] if found else b""
        if got.replace(b"\x00", b"\x80") != expected:
            mismatches.append((section, expected[-40:], got[-40:]))
    assert mismatches == []


def test_parts_cut_exact_bytes() -> None:
    raw = load("mixed_attachments.eml")
    root = parse_tree(raw)
    assert [c.content_type for c in root.children] == [
        "text/plain",
        "application/pdf",
        "text/csv",
        "image/png",
    ]
    text, pdf, csv, png = root.children
    assert raw[text.body_start : text.body_end] == b"See the attached files."
    assert raw[csv.body_start : csv.body_end] == b"a,b,c\r\n1,2,3"
    assert raw[pdf.header_start : pdf.header_end].startswith(b"Content-Type: application/pdf")
    assert raw[pdf.header_start : pdf.header_end].endswith(b"\r\n\r\n")
    decoded = base64.b64decode(raw[pdf.body_start : pdf.body_end])
    assert decoded.startswith(b"%PDF-1.4") and decoded.endswith(b"%%EOF\n")
    # one line break before the boundary belongs to it; the blank line before that stays
    assert raw[png.body_start : png.body_end].endswith(b"==\r\n")
    assert [c.path for c in root.children] == ["1", "2", "3", "4"]


def test_rfc822_part_numbers() -> None:
    raw = load("forwarded.eml")
    root = parse_tree(raw)
    fwd = root.children[1]
    assert fwd.content_type == "message/rfc822"
    assert fwd.message is not None
    assert [c.path for c in fwd.message.children] == ["2.1", "2.2"]
    assert resolve_section(root, "2.2") is fwd.message.children[1]
    header = section_range(root, "2.HEADER")
    assert header is not None
    assert raw[header[0] : header[1]].startswith(b"From: Carol")
    mime = section_range(root, "2.MIME")
    assert mime is not None
    assert raw[mime[0] : mime[1]].startswith(b"Content-Type: message/rfc822")


@pytest.mark.parametrize(
    ("section", "expected"),
    [("", b"Subject"), ("1", b"body"), ("1.1", None), ("2", None), ("0", None), ("x", None)],
)
def test_resolve_section_single_part(section: str, expected: bytes | None) -> None:
    raw = b"Subject: s\r\n\r\nbody\r\n"
    root = parse_tree(raw)
    node = resolve_section(root, section)
    if expected is None:
        assert node is None
    else:
        assert node is root
        found = section_range(root, section)
        assert found is not None
        assert raw[found[0] : found[1]].startswith(expected)


def test_boundary_that_extends_the_outer_one() -> None:
    root = parse_tree(load("boundary_nested_prefix.eml"))
    assert [c.content_type for c in root.children] == ["multipart/alternative", "text/plain"]
    assert len(root.children[0].children) == 2


def test_bare_lf_offsets() -> None:
    raw = load("bare_lf.eml")
    root = parse_tree(raw)
    text, blob = root.children
    assert raw[text.body_start : text.body_end] == b"one\ntwo"
    assert raw[blob.body_start : blob.body_end] == b"AAEC"
    assert text.lines == 1


def test_header_only_part_and_empty_part() -> None:
    raw = (
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
        b"--b\r\nContent-Type: text/html\r\n--b\r\n--b\r\n\r\nlast\r\n--b--\r\n"
    )
    root = parse_tree(raw)
    first, empty, last = root.children
    assert first.content_type == "text/html"
    assert first.body_start == first.body_end
    assert empty.header_start == empty.body_end  # nothing at all between two boundaries
    assert raw[last.body_start : last.body_end] == b"last"


def test_deep_nesting_is_capped() -> None:
    depth = 200
    # fixed-width boundaries: with "b6" and "b64" the shorter would match as a prefix
    parts = [b"Content-Type: multipart/mixed; boundary=b000\r\n\r\n"]
    for i in range(1, depth):
        parts.append(
            b"--b%03d\r\nContent-Type: multipart/mixed; boundary=b%03d\r\n\r\n" % (i - 1, i)
        )
    parts.append(b"--b%03d\r\n\r\nleaf\r\n" % (depth - 1))
    raw = b"".join(parts)
    root = parse_tree(raw)
    node = root
    levels = 0
    while node.children:
        node = node.children[0]
        levels += 1
    assert levels == MAX_DEPTH
    assert node.opaque and node.depth == MAX_DEPTH
    assert raw[node.body_start : node.body_end].endswith(b"leaf\r\n")


def test_nested_messages_are_capped() -> None:
    raw = b"Content-Type: message/rfc822\r\n\r\n" * 150 + b"Subject: x\r\n\r\nbody"
    root = parse_tree(raw)
    node = root
    while node.message is not None:
        node = node.message
    assert node.depth == MAX_DEPTH and node.opaque


def test_part_count_is_capped() -> None:
    raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n" + b"--b\r\n\r\nx\r\n" * (
        MAX_PARTS + 50
    )
    root = parse_tree(raw + b"--b--\r\n")
    assert len(root.children) < MAX_PARTS
    assert root.body_end == len(raw) + len(b"--b--\r\n")


@pytest.mark.parametrize("name", FIXTURES)
def test_to_dict_round_trip(name: str) -> None:
    raw = load(name)
    root = parse_tree(raw)
    data = root.to_dict()
    assert None not in data.values()
    again = MimeNode.from_dict(data, raw)
    assert again.to_dict() == data
    assert [(f.name, f.value) for f in again.headers] == [(f.name, f.value) for f in root.headers]
