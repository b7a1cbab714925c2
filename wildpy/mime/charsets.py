"""Charset names to Python codecs, and byte-to-text decoding that never fails."""

from __future__ import annotations

import codecs
import functools

# Labels seen in real mail that Python does not know, or knows under a name whose
# decoder is narrower than what senders actually use (the WHATWG Encoding Standard maps
# the same labels the same way: latin-1 is decoded as windows-1252). "us-ascii" stays
# strict ASCII, so that 8-bit text under that label goes to the UTF-8 fallback.
_ALIASES: dict[str, str] = {
    "iso-8859-1": "cp1252",
    "iso8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "l1": "cp1252",
    "x-user-defined": "cp1252",
    "unknown-8bit": "cp1252",
    "x-unknown": "cp1252",
    "unknown": "cp1252",
    "default": "cp1252",
    "iso-8859-8-i": "iso-8859-8",
    "iso-8859-6-i": "iso-8859-6",
    "ks_c_5601-1987": "cp949",
    "ks_c_5601": "cp949",
    "euc-kr": "cp949",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "cp936": "gb18030",
    "big5": "big5hkscs",
    "x-mac-roman": "mac-roman",
    "macintosh": "mac-roman",
    "utf8": "utf-8",
    "x-utf8": "utf-8",
    "unicode-1-1-utf-7": "utf-7",
    "windows-874": "cp874",
    "tis-620": "cp874",
    "shift-jis": "cp932",
    "shift_jis": "cp932",
    "sjis": "cp932",
    "x-sjis": "cp932",
    "iso-2022-jp": "iso2022_jp_ext",
}

# Text decoders that are safe to run on untrusted bytes; anything else (rot13 is a
# text codec too, and some codecs have unusual costs) is refused and the fallbacks run.
_REFUSED = frozenset(
    {
        "rot-13",
        "rot13",
        "undefined",
        "idna",
        "punycode",
        "raw-unicode-escape",
        "unicode-escape",
        "palmos",
        "mbcs",
        "oem",
    }
)


@functools.lru_cache(maxsize=512)
def lookup_charset(label: str | None) -> str | None:
    """Return a Python codec name for a MIME charset label, or None when unusable."""
    if not label:
        return None
    name = label.strip().strip("\"'").lower()
    # RFC 2231 section 5: a language may follow the charset after "*".
    name = name.split("*", 1)[0].strip()
    if not name or len(name) > 64:
        return None
    name = _ALIASES.get(name, name)
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError):
        return None
    if not getattr(info, "_is_text_encoding", True) or info.name in _REFUSED:
        return None
    return info.name


def decode_bytes(data: bytes, charset: str | None = None) -> str:
    """Decode bytes to text: the declared charset, then UTF-8, then windows-1252, then latin-1.

    Never raises. The declared charset is tried strictly so that a wrong label falls
    through to UTF-8 rather than producing mojibake (a common case: "us-ascii" on UTF-8).
    """
    if not data:
        return ""
    if data.isascii():
        # ASCII-compatible charsets all agree; only UTF-16/32/7 and EBCDIC-like labels differ.
        codec = lookup_charset(charset)
        if codec is None or codec in _ASCII_SAFE or codec.startswith(("iso8859", "cp125")):
            return data.decode("ascii")
    codec = lookup_charset(charset)
    if codec is not None:
        try:
            return data.decode(codec)
        except (UnicodeDecodeError, LookupError, ValueError):
            pass
    for fallback in ("utf-8", "cp1252"):
        if fallback == codec:
            continue
        try:
            return data.decode(fallback)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")


def decode_header_bytes(data: bytes) -> str:
    """Decode raw (possibly 8-bit, RFC 6532) header bytes: UTF-8, else windows-1252/latin-1."""
    if data.isascii():
        return data.decode("ascii")
    return decode_bytes(data, "utf-8")


_ASCII_SAFE = frozenset(
    {
        "ascii",
        "utf-8",
        "cp1252",
        "latin-1",
        "iso8859-1",
        "gb18030",
        "big5hkscs",
        "cp949",
        "euc_jp",
        "cp932",
        "koi8-r",
        "koi8-u",
        "mac-roman",
        "cp874",
        "shift_jis",
    }
)
