"""IMAP ENVELOPE, BODYSTRUCTURE and BODY as plain Python data (RFC 3501 / RFC 9051 section 7.5.2).

Values are None (NIL), int, str, or lists of these, so they can be stored as BSON/JSON
and turned into wire bytes by imap_format. Where the RFCs leave room, the choices follow
Dovecot 2.3 (checked against it): the last Subject/Date/Message-ID field wins for the
envelope and repeated address fields are joined; the first Content-* field wins for the
structure; an address without a domain gets host "MISSING_DOMAIN", an empty mailbox
"MISSING_MAILBOX"; a multipart without parts shows one empty text/plain part; parameters
are shown with RFC 2231 continuations joined but not decoded. Deliberate differences:
8-bit header bytes that are not UTF-8 are sent as UTF-8 (windows-1252 assumed), empty
list elements ("a, , b") are skipped, an empty Content-Disposition is NIL, and an
invalid Content-Type is text/plain (RFC 2045 section 5.2) rather than shown as written.
"""

from __future__ import annotations

from wildpy.mime.addresses import Group, Mailbox, parse_address_list
from wildpy.mime.charsets import decode_header_bytes
from wildpy.mime.headers import MAX_DECODED_VALUE, HeaderField
from wildpy.mime.structure import MimeNode

ImapValue = None | int | str | list["ImapValue"]

MISSING_MAILBOX = "MISSING_MAILBOX"
MISSING_DOMAIN = "MISSING_DOMAIN"

# RFC 3501 section 7.4.2: the body of a multipart needs at least one part.
_EMPTY_TEXT: list[ImapValue] = ["text", "plain", ["charset", "us-ascii"], None, None, "7bit", 0, 0]


def _raw_text(field: HeaderField) -> str:
    """The unfolded value as the envelope shows it: CR/LF removed, leading WSP trimmed."""
    return (
        decode_header_bytes(field.unfolded()[:MAX_DECODED_VALUE])
        .lstrip(" \t")
        .replace("\x00", "\ufffd")
    )


def for_humans(text: str) -> str:
    """Collapse whitespace runs (tab, CR, LF included) into one space and trim, as Dovecot
    does for the subject and display names in ENVELOPE."""
    return " ".join(text.replace("\x00", "\ufffd").split())


def _address(mailbox: Mailbox) -> list[ImapValue]:
    name = for_humans(mailbox.name or mailbox.comment)
    return [
        name or None,
        mailbox.route or None,
        mailbox.local or MISSING_MAILBOX,
        mailbox.domain or MISSING_DOMAIN,
    ]


def envelope_addresses(fields: list[HeaderField]) -> list[ImapValue] | None:
    """An address list for ENVELOPE from every field of one name (Dovecot joins repeated
    To/Cc/... fields); groups use the RFC 3501 start/end markers."""
    out: list[ImapValue] = []
    for field in fields:
        for item in parse_address_list(_raw_text(field)):
            if isinstance(item, Group):
                out.append([None, None, for_humans(item.name), None])
                out.extend(_address(m) for m in item.members)
                out.append([None, None, None, None])
            else:
                out.append(_address(item))
    return out or None


def build_envelope(node: MimeNode) -> list[ImapValue]:
    """ENVELOPE of the message whose root node (header block) is `node`."""

    def text(key: str) -> str | None:
        field = node.last_header(key)
        return None if field is None else _raw_text(field)

    def addresses(key: str) -> list[ImapValue] | None:
        return envelope_addresses([f for f in node.headers if f.key == key])

    subject = node.last_header("subject")
    from_ = addresses("from")
    # RFC 3501 section 7.4.2: absent or empty Sender / Reply-To are set to From
    sender = addresses("sender") or from_
    reply_to = addresses("reply-to") or from_
    return [
        text("date"),
        None if subject is None else for_humans(_raw_text(subject)),
        from_,
        sender,
        reply_to,
        addresses("to"),
        addresses("cc"),
        addresses("bcc"),
        text("in-reply-to"),
        text("message-id"),
    ]


def _param_list(params: list[tuple[str, str]]) -> list[ImapValue] | None:
    flat: list[ImapValue] = []
    for name, value in params:
        flat.append(name)
        flat.append(value)
    return flat or None


def _disposition(node: MimeNode) -> list[ImapValue] | None:
    if node.disposition_raw is None:
        return None
    return [node.disposition_raw, _param_list(node.disposition_raw_params)]


def build_body(node: MimeNode, extended: bool = True) -> list[ImapValue]:
    """BODYSTRUCTURE (extended=True) or BODY (extended=False) of a message root node."""
    if node.is_multipart:
        parts: list[ImapValue] = [build_body(child, extended) for child in node.children]
        if not parts:
            parts = [[*_EMPTY_TEXT, *([None, None, None, None] if extended else [])]]
        out = [*parts, node.subtype_raw]
        if extended:
            out += [
                _param_list(node.raw_params),
                _disposition(node),
                list[ImapValue](node.language) if node.language else None,
                node.location,
            ]
        return out

    type_raw, subtype_raw = node.type_raw, node.subtype_raw
    raw_params = list(node.raw_params)
    if node.opaque:
        # nesting too deep to describe: an opaque leaf, as Dovecot shows it
        type_raw, subtype_raw = "application", "octet-stream"
    elif node.main_type == "text" and "charset" not in node.params:
        raw_params.append(("charset", "us-ascii"))  # RFC 2045 section 5.2 default
    out = [
        type_raw,
        subtype_raw,
        _param_list(raw_params),
        node.content_id,
        node.description,
        node.transfer_encoding_raw,
        node.body_size,
    ]
    if node.message is not None and not node.opaque:
        out += [build_envelope(node.message), build_body(node.message, extended), node.lines]
    elif node.main_type == "text" and not node.opaque:
        out.append(node.lines)
    if extended:
        out += [
            None,
            _disposition(node),
            list[ImapValue](node.language) if node.language else None,
            node.location,
        ]
    return out
