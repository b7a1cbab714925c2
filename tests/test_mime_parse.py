"""parse_message: the fields the REST API and the store use."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from wildpy.mime import (
    Address,
    decode_part,
    html_to_text,
    make_intro,
    parse_message,
    part_text,
    replace_cid_links,
    resolve_section,
    sanitize_html,
)
from wildpy.mime.charsets import decode_bytes, lookup_charset
from wildpy.mime.decode import decode_flowed, decode_qp
from wildpy.mime.headers import b64decode_lenient, decode_words, parse_params

DATA = Path(__file__).parent / "data" / "mime"


def load(name: str) -> bytes:
    return (DATA / name).read_bytes()


def test_plain_message_fields() -> None:
    m = parse_message(load("plain.eml"))
    assert m.subject == "Quarterly report"
    assert m.from_ == [Address("Alice Example", "alice@example.com")]
    assert m.to == [Address("Bob", "bob@example.org"), Address("", "carol@example.org")]
    assert m.cc == [Address("Dave, Jr.", "dave@example.net")]
    assert m.bcc == [] and m.reply_to == [] and m.sender == []
    assert m.message_id == "<report-1@example.com>"
    assert m.in_reply_to == "<prev@example.org>"
    assert m.references == ["<root@example.org>", "<prev@example.org>"]
    assert m.date == datetime(2024, 1, 15, 10, 0, tzinfo=UTC)
    assert m.date is not None and m.date.utcoffset() == timedelta(hours=1)
    assert m.text.startswith("Hi Bob,\n\nThe numbers are in")
    assert "Café budget is unchanged." in m.text  # quoted-printable soft break joined
    assert m.intro.startswith("Hi Bob, The numbers are in: revenue is up 5 %")
    assert m.html == [
        "<p>Hi Bob,</p><p>The numbers are in: revenue is up 5 % and costs are down. "
        "Café budget is unchanged.</p><p>--<br/>Alice</p>"
    ]
    assert m.attachments == [] and not m.has_attachments
    assert m.content_type == {"value": "text/plain", "params": {"charset": "utf-8"}}
    assert m.list_id == "Reports <reports.example.com>"
    assert m.list_unsubscribe == "<mailto:unsub@example.com>"
    assert m.size == len(load("plain.eml"))
    keys = [k for k, _ in m.index_headers]
    assert keys[:3] == ["return-path", "received", "from"]
    assert dict(m.index_headers)["subject"] == "Quarterly report"


def test_html_only_is_sanitised_and_gives_text() -> None:
    m = parse_message(load("html_only.eml"))
    (html,) = m.html
    for bad in (
        "<script",
        "alert(1)",
        "<style",
        "color:red",
        "<iframe",
        "<form",
        "<input",
        "onload",
        "onclick",
        "javascript:",
        "<title",
        "<head",
    ):
        assert bad not in html
    assert '<a href="https://example.com/x"' in html
    assert '<img src="cid:logo@example.com" alt="logo">' in html
    assert m.text == "Hello\n\nRead this and that.\n\nSearch"
    assert m.intro == "Hello Read this and that. Search"


def test_alternative_uses_each_part_once() -> None:
    m = parse_message(load("alternative.eml"))
    # format=flowed (RFC 3676): the soft line break is joined
    assert m.text == "Plain version of the message that is long enough to be flowed across lines."
    assert m.html == ["<p>HTML version</p>"]


def test_attachments_ids_hashes_and_ranges() -> None:
    raw = load("mixed_attachments.eml")
    m = parse_message(raw)
    assert m.text == "See the attached files."
    assert [a.id for a in m.attachments] == ["ATT00001", "ATT00002", "ATT00003"]
    pdf, csv, png = m.attachments
    assert pdf.filename == "€ quarterly report.pdf"  # RFC 2231 continuation, charset
    assert pdf.content_type == "application/pdf"
    assert pdf.transfer_encoding == "base64"
    assert pdf.disposition == "attachment"
    assert pdf.part == "2"
    encoded = raw[pdf.body_start : pdf.body_end]
    decoded = base64.b64decode(encoded)
    assert decoded.startswith(b"%PDF-1.4")
    assert pdf.size == len(decoded) == 2064
    assert pdf.size_kb == 3
    assert pdf.hash == hashlib.sha256(encoded).hexdigest()
    assert pdf.file_content_hash == base64.b64encode(hashlib.sha256(decoded).digest()).decode()
    assert csv.filename == "data.csv" and csv.size == len(b"a,b,c\r\n1,2,3")
    assert png.filename == "attachment-3.png"  # no name given
    assert png.disposition == "inline" and not png.related
    assert m.has_attachments
    api = pdf.as_api()
    assert set(api) == {
        "id", "filename", "contentType", "disposition", "transferEncoding", "related",
        "sizeKb", "size", "hash", "fileContentHash",
    }  # fmt: skip
    node = resolve_section(m.root, pdf.part)
    assert node is not None and decode_part(raw, node) == decoded


def test_related_inline_image() -> None:
    m = parse_message(load("related.eml"))
    (logo,) = m.attachments
    assert logo.related and logo.cid == "logo@example.com" and logo.filename == "logo.png"
    assert logo.as_api()["cid"] == "logo@example.com"
    assert not m.has_attachments  # only related attachments
    assert m.cid_map == {"logo@example.com": "ATT00001"}
    assert replace_cid_links(m.html[0], m.cid_map) == (
        '<p>Logo below: <img src="attachment:ATT00001"></p>'
    )
    assert m.text == "Logo below."


def test_forwarded_message_is_one_attachment() -> None:
    raw = load("forwarded.eml")
    m = parse_message(raw)
    (eml,) = m.attachments
    assert eml.content_type == "message/rfc822" and eml.filename == "original.eml"
    assert raw[eml.body_start : eml.body_end].startswith(b"From: Carol")
    assert m.text == "Forwarding this."


def test_inline_forwarded_message_joins_the_body() -> None:
    m = parse_message(load("forwarded_inline.eml"))
    assert m.text == "See below.\nOriginal body."
    (blob,) = m.attachments
    assert blob.filename == "blob.bin" and blob.part == "2.2" and blob.size == 10


def test_nested_multiparts() -> None:
    m = parse_message(load("nested.eml"))
    assert m.text == "plain"
    assert m.html == ['<b>html</b><img src="cid:img1">']
    assert [(a.id, a.filename, a.related, a.part) for a in m.attachments] == [
        ("ATT00001", "attachment-1.gif", True, "1.2.2"),
        ("ATT00002", "a.zip", False, "2.1"),
        ("ATT00003", "notes.txt", False, "2.2"),
    ]
    assert m.attachments[0].as_api()["disposition"] is False  # WildDuck: false when absent


def test_encoded_words_and_filenames() -> None:
    m = parse_message(load("encoded_names.eml"))
    assert m.subject == "Über die Ränder und mehr"
    assert m.from_ == [Address("Jörg Müller", "joerg@example.de")]
    assert m.to == [Address("André", "andre@example.fr"), Address("山田", "yamada@example.jp")]
    assert m.text == "Grüße"
    assert [a.filename for a in m.attachments] == ["ätsch.txt", "ärger.txt"]


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("latin1.eml", "Voilà, un café crème."),
        ("cp1252.eml", "“Smart quotes” \u2013 and €uro and café."),
        ("broken_wrong_charset.eml", "Grüße aus Köln"),
        ("broken_8bit_headers.eml", "body éÃ©"),  # invalid UTF-8: windows-1252 fallback
        ("broken_no_boundary.eml", "hello there\nno boundary at all"),
        ("broken_missing_close.eml", "one\ntwo"),
        ("broken_truncated_base64.eml", "Hello world, this is truncated"),
        ("digest.eml", "one\ntwo"),
        ("nocolon.eml", "body"),
        ("headers_only.eml", ""),
    ],
)
def test_body_text(name: str, text: str) -> None:
    assert parse_message(load(name)).text == text


def test_8bit_headers_are_decoded() -> None:
    m = parse_message(load("broken_8bit_headers.eml"))
    assert m.subject == "café ÿþ junk"
    assert m.from_ == [Address("Jörg", "joerg@example.de")]
    assert m.to == [Address("élève", "eleve@example.fr")]


def test_groups_are_flattened() -> None:
    m = parse_message(load("groups.eml"))
    assert m.from_ == []
    assert [a.address for a in m.to] == [
        "a@example.com", "q@example.com", "plain@example.com", "nodomain", "routed@example.com",
    ]  # fmt: skip
    assert m.cc == [
        Address("Comment Name", "cc@example.com"),
        Address('Weird "Quoted" Name', "weird@example.com"),
    ]
    assert m.reply_to == [Address("", "")]


def test_duplicate_headers_last_wins() -> None:
    m = parse_message(load("duplicate_headers.eml"))
    assert m.subject == "second"
    assert m.from_ == [Address("", "two@example.com")]
    assert m.message_id == "<a@b>"
    assert m.root.content_type == "text/html"  # the first Content-Type, as Dovecot


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Mon, 15 Jan 2024 11:00:00 +0100", datetime(2024, 1, 15, 10, 0, tzinfo=UTC)),
        ("15 Jan 2024 11:00:00", datetime(2024, 1, 15, 11, 0, tzinfo=UTC)),  # no zone: UTC
        ("Mon, 15 Jan 2024 11:00:00 EST", datetime(2024, 1, 15, 16, 0, tzinfo=UTC)),
        ("yesterday", None),
        ("Mon, 99 Foo 2024 99:99:99 +9999", None),
    ],
)
def test_date(header: str, expected: datetime | None) -> None:
    m = parse_message(f"Date: {header}\r\n\r\nx".encode())
    assert m.date == expected
    if m.date is not None:
        assert m.date.tzinfo is not None


def test_intro_is_bounded() -> None:
    assert make_intro("  a \n\n b\t c ") == "a b c"
    long = "word " * 100
    intro = make_intro(long)
    assert len(intro) <= 128 and intro.endswith("…") and not intro.endswith(" …")
    assert make_intro("x" * 300) == "x" * 127 + "…"
    m = parse_message(b"Content-Type: text/plain\r\n\r\n" + b"abc " * 200)
    assert m.intro == ("abc " * 32)[:127] + "…"


def test_index_headers_are_bounded() -> None:
    raw = b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 2000) for i in range(500)) + b"\r\nbody"
    m = parse_message(raw)
    assert len(m.index_headers) == 200
    assert all(len(v) <= 880 for _, v in m.index_headers)
    assert m.index_headers[0] == ("x-h0", "v" * 880)


@pytest.mark.parametrize(
    ("source", "absent", "present"),
    [
        ('<a href="javascript:alert(1)">x</a>', ["javascript"], [">x</a>"]),
        ('<a href=" jav&#x09;ascript:alert(1)">x</a>', ["ascript"], ["x"]),
        ('<a href="vbscript:msgbox">x</a>', ["vbscript"], ["x"]),
        ('<img src="data:text/html,<script>">', ["data:"], ["<img>"]),
        ('<img src="data:image/png;base64,AAAA">', [], ['src="data:image/png;base64,AAAA"']),
        ('<div onclick="x()" onmouseover=y>t</div>', ["onclick", "onmouseover"], ["<div>t</div>"]),
        ("<svg><script>alert(1)</script></svg>after", ["svg", "alert"], ["after"]),
        ("<object data=x></object><embed src=y><applet>z</applet>ok", ["object", "embed"], ["ok"]),
        ("<meta http-equiv=refresh content='0;url=x'><base href=x><link rel=x>ok", ["meta"], []),
        ('<p style="background:url(javascript:x)">s</p>', ["javascript", "style"], ["<p>s</p>"]),
        ('<p style="color:red">s</p>', [], ['<p style="color:red">s</p>']),
        ("<!-- <script>alert(1)</script> -->c", ["alert", "<!--"], ["c"]),
        ("<b>unclosed <i>tags", [], ["<b>unclosed <i>tags</i></b>"]),
        ("1 < 2 & 3 > 2", [], ["1 &lt; 2 &amp; 3 &gt; 2"]),
        ("<textarea><script>x</script></textarea>ok", ["textarea", "script"], ["ok"]),
        ("<scr<script>ipt>alert(1)</script>", ["<script"], []),
        ('<a href="https://example.com" target="_self">l</a>', ["_self"], ["noopener"]),
        ("<a href='javascript:x'>q</a><img src=javascript:y>", ["javascript"], ["q"]),
        ('<a href="java&#10;script:x">q</a>', ["script"], ["q"]),
        ('<a/href="javascript:x">q</a>', ["javascript"], ["q"]),
        ("<svg/onload=alert(1)>", ["onload", "svg", "alert"], []),
        ('<img """><script>alert(1)</script>">', ["<script", "alert("], []),
        ("<SCRIPT SRC=//x.js></SCRIPT >after", ["x.js", "SCRIPT"], ["after"]),
        ("<style>a{}</style x><b>b</b>", ["a{}"], ["<b>b</b>"]),
        ("<title><b>not bold</b></title>text", ["not bold"], ["text"]),
        ("<p title='a\"b'>x</p>", [], ['<p title="a&quot;b">x</p>']),
        ("<p =x>y</p><p a=b c>z</p>", [], ["<p>y</p>", '<p a="b" c="">z</p>']),
        ("</p><//><</>text", [], ["&lt;", "text"]),
        ("<p>unterminated <a href='x", [], ["<p>unterminated </p>"]),
    ],
)
def test_sanitizer(source: str, absent: list[str], present: list[str]) -> None:
    out = sanitize_html(source)
    for text in absent:
        assert text not in out
    for text in present:
        assert text in out


def test_html_to_text() -> None:
    source = "<p>One<br>two</p><ul><li>a</li><li>b</li></ul><style>x{}</style><p>&amp; more</p>"
    assert html_to_text(source) == "One\ntwo\n\n* a\n* b\n\n& more"


@pytest.mark.parametrize(
    ("label", "codec"),
    [
        ("UTF-8", "utf-8"),
        ("utf8", "utf-8"),
        ('"iso-8859-1"', "cp1252"),
        ("us-ascii", "ascii"),
        ("ks_c_5601-1987", "cp949"),
        ("gb2312", "gb18030"),
        ("utf-8*en", "utf-8"),
        ("x-no-such", None),
        ("rot13", None),
        ("base64", None),
        ("", None),
        (None, None),
    ],
)
def test_lookup_charset(label: str | None, codec: str | None) -> None:
    assert lookup_charset(label) == codec


def test_decode_bytes_fallbacks() -> None:
    assert decode_bytes("é".encode(), "us-ascii") == "é"  # wrong label: UTF-8 wins
    assert decode_bytes(b"\x93q\x94", "utf-8") == "“q”"  # invalid UTF-8: windows-1252
    assert decode_bytes(b"\x81\x8d", None) == "\x81\x8d"  # not even cp1252: latin-1
    assert decode_bytes("日本".encode("iso-2022-jp"), "ISO-2022-JP") == "日本"
    assert decode_bytes("ok".encode("utf-16"), "utf-16") == "ok"


@pytest.mark.parametrize(
    ("words", "text"),
    [
        ("=?utf-8?q?J=C3=B6rg?=", "Jörg"),
        ("=?utf-8?B?w5w=?= =?utf-8?B?YmVy?=", "Über"),  # whitespace between words dropped
        ("=?utf-8?B?4oI=?==?utf-8?B?rA==?=", "€"),  # a character split across two words
        ("=?iso-8859-1?q?caf=E9?= and more", "café and more"),
        ("=?utf-8*en?q?hi?=", "hi"),
        ("=?bogus?q?caf=C3=A9?=", "café"),
        ("=?utf-8?B?bad base64!?=", "=?utf-8?B?bad base64!?="),  # not a word: spaces
        ("=?utf-8?B?YWJj?", "=?utf-8?B?YWJj?"),
        ("plain", "plain"),
    ],
)
def test_decode_words(words: str, text: str) -> None:
    assert decode_words(words) == text


def test_parse_params() -> None:
    p = parse_params(b' Text/Plain ; charset="utf-8"; name*0*=utf-8\'\'a%20; name*1="b.txt"')
    assert p.value == "text/plain" and p.raw_value == "Text/Plain"
    assert p.params == {"charset": "utf-8", "name": "a b.txt"}
    assert p.raw_params == [("charset", "utf-8"), ("name*", "utf-8''a%20b.txt")]
    odd = parse_params(b'multipart/mixed; boundary="a;b" (comment); x; =y; z="unterminated')
    assert odd.params == {"boundary": "a;b", "z": "unterminated"}


@pytest.mark.parametrize(
    ("data", "decoded"),
    [
        (b"SGVsbG8=", b"Hello"),
        (b"SGVs\r\nbG8=\r\n", b"Hello"),
        (b"SGVsbG8", b"Hello"),  # padding missing
        (b"SGVsbG", b"Hell"),  # truncated: the last group is padded
        (b"SGVsbG8gd", b"Hello "),  # a dangling single character is dropped
        (b"SGVsbG8=SGVsbG8=", b"HelloHello"),  # concatenated encodings
        (b"S!G@V#s$b%G^8", b"Hello"),  # junk between the characters
        (b"", b""),
        (b"=", b""),
    ],
)
def test_lenient_base64(data: bytes, decoded: bytes) -> None:
    assert b64decode_lenient(data) == decoded


def test_quoted_printable() -> None:
    assert decode_qp(b"caf=C3=A9 =\r\nsoft   \r\nbad=ZZ end=") == b"caf\xc3\xa9 soft\r\nbad=ZZ end"


def test_flowed() -> None:
    assert decode_flowed("a \nb\n> q1 \n> q2\n-- \nsig", delsp=False) == "a b\n> q1 q2\n-- \nsig"
    assert decode_flowed("ab \ncd", delsp=True) == "abcd"


def test_part_text_uses_html_meta_charset() -> None:
    raw = b'Content-Type: text/html\r\n\r\n<meta charset="koi8-r"><p>\xf0\xd2\xc9\xd7\xc5\xd4</p>'
    m = parse_message(raw)
    assert "Привет" in part_text(raw, m.root)
    assert m.text == "Привет"


def test_timezone_aware_date_in_other_zone() -> None:
    m = parse_message(b"Date: Tue, 2 Jan 2024 01:00:00 -0800\r\n\r\nx")
    assert m.date == datetime(2024, 1, 2, 1, 0, tzinfo=timezone(timedelta(hours=-8)))
