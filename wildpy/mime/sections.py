"""IMAP part numbers and FETCH BODY[section] byte ranges over a parsed MIME tree."""

from __future__ import annotations

from wildpy.mime.structure import MimeNode


def resolve_section(root: MimeNode, section: str) -> MimeNode | None:
    """Find the node for an IMAP part number ("1", "2.1.3"); None if there is none.

    RFC 3501 section 6.4.5: a non-multipart message has only part 1 (its body), and the
    numbers after a message/rfc822 part continue inside the encapsulated message. Where
    the RFC says nothing, Dovecot's answers are kept: "n.1" of a leaf that ends the path
    is the leaf itself, and any other number below a leaf does not exist.
    """
    if not section:
        return root
    try:
        numbers = [int(n) for n in section.split(".")]
    except ValueError:
        return None
    node: MimeNode | None = root
    for index, number in enumerate(numbers):
        if node is None:
            break
        more = index + 1 < len(numbers)
        if node.is_multipart:
            node = node.children[number - 1] if 0 < number <= len(node.children) else None
        elif number != 1 or (more and node.message is None):
            node = None
        if node is not None and node.message is not None and more:
            node = node.message  # continue inside the encapsulated message
    return node


def section_range(root: MimeNode, section: str) -> tuple[int, int] | None:
    """Byte range in the raw message of FETCH BODY[section] (RFC 3501 section 6.4.5).

    `section` is "", "HEADER", "TEXT", a part number ("1.2"), or a part number followed
    by ".MIME", ".HEADER" or ".TEXT". HEADER.FIELDS is built by the caller from the
    header fields of the node ("HEADER" gives the range they lie in). None when the part
    does not exist or has no such section: the IMAP answer is then an empty string.
    """
    spec = section.strip().upper()
    if spec in ("", "HEADER", "TEXT"):
        part, keyword = "", spec
    else:
        head, dot, tail = spec.rpartition(".")
        if dot and not tail.isdigit():
            part, keyword = head, tail
        else:
            part, keyword = spec, ""
    node = resolve_section(root, part) if part else root
    if node is None:
        return None
    if keyword == "MIME":
        return (node.header_start, node.header_end) if part else None
    if keyword in ("HEADER", "TEXT"):
        message = node if not part else node.message
        if message is None:
            return None
        if keyword == "HEADER":
            return message.header_start, message.header_end
        return message.body_start, message.body_end
    if keyword:
        return None
    if not part:
        return root.header_start, root.body_end
    return node.body_start, node.body_end
