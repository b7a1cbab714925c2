"""Wire form of IMAP ENVELOPE / BODYSTRUCTURE / BODY data (RFC 3501 section 9, RFC 9051 section 9).

Strings are sent quoted when they can be (printable 7-bit, no CR/LF, short), otherwise
as literals; None is NIL. The grammar concatenates adjacent bodies of a multipart and
adjacent addresses of an address list without a space ("1*body", "1*address"), so the
envelope and body writers know where those lists are rather than guessing from shape.
"""

from __future__ import annotations

from wildpy.mime.imap_structure import ImapValue

MAX_QUOTED = 1000  # longer strings go out as literals, which keeps protocol lines short


def format_string(value: str) -> bytes:
    """An IMAP string: quoted with \\ and " escaped, or a literal for CR/LF, 8-bit or NUL."""
    data = value.replace("\x00", "\ufffd").encode("utf-8")
    if len(data) <= MAX_QUOTED and data.isascii() and b"\r" not in data and b"\n" not in data:
        if b"\\" in data or b'"' in data:
            data = data.replace(b"\\", b"\\\\").replace(b'"', b'\\"')
        return b'"' + data + b'"'
    return b"{%d}\r\n" % len(data) + data


def format_value(value: ImapValue) -> bytes:
    """A generic value: NIL, a number, a string, or a parenthesized space-separated list."""
    if value is None:
        return b"NIL"
    if isinstance(value, bool):
        raise TypeError("booleans have no IMAP form")
    if isinstance(value, int):
        return b"%d" % value
    if isinstance(value, str):
        return format_string(value)
    return b"(" + b" ".join(format_value(v) for v in value) + b")"


def _address_list(value: ImapValue) -> bytes:
    if not isinstance(value, list) or not value:
        return b"NIL"
    return b"(" + b"".join(format_value(a) for a in value) + b")"


def format_envelope(envelope: list[ImapValue]) -> bytes:
    """ENVELOPE: date subject from sender reply-to to cc bcc in-reply-to message-id."""
    items: list[bytes] = []
    for index, value in enumerate(envelope):
        items.append(_address_list(value) if 2 <= index <= 7 else format_value(value))
    return b"(" + b" ".join(items) + b")"


def format_body(body: list[ImapValue]) -> bytes:
    """BODYSTRUCTURE or BODY data as built by imap_structure.build_body."""
    if body and isinstance(body[0], list):
        # multipart: the child bodies, then subtype and extension data
        index = 0
        children: list[bytes] = []
        while index < len(body) and isinstance(body[index], list):
            child = body[index]
            assert isinstance(child, list)
            children.append(format_body(child))
            index += 1
        rest = [format_value(v) for v in body[index:]]
        return b"(" + b"".join(children) + (b" " + b" ".join(rest) if rest else b"") + b")"
    items: list[bytes] = []
    is_message = (
        len(body) > 9
        and isinstance(body[0], str)
        and isinstance(body[1], str)
        and body[0].lower() == "message"
        and body[1].lower() == "rfc822"
        and isinstance(body[7], list)
    )
    for index, value in enumerate(body):
        if is_message and index == 7 and isinstance(value, list):
            items.append(format_envelope(value))
        elif is_message and index == 8 and isinstance(value, list):
            items.append(format_body(value))
        else:
            items.append(format_value(value))
    return b"(" + b" ".join(items) + b")"
