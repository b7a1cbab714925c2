"""Compose an RFC 5322 message from the upload fields (POST .../messages without `raw`).

Built with the standard library's `EmailMessage` under `policy.SMTP` (CRLF line ends, encoded
words for non-ASCII headers), in the structure mail clients expect:

    multipart/mixed                      only with regular attachments
      multipart/alternative              text and HTML (a text part is derived from HTML alone)
        text/plain
        multipart/related                only with inline images the HTML refers to by cid
          text/html
          image/...
      application/...                    attachments and user storage files

Pure: no I/O. A failure to build the message is ERRCOMPOSE (500): bad input is caught by the
caller's validation before it gets here, so what is left is what `policy.SMTP` cannot express,
such as a recipient with a non-ASCII local part (that needs SMTPUTF8).
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from wildpy import errors
from wildpy.mime import html_to_text

log = logging.getLogger("wildpy.compose")

#: headers the composer owns: an upload cannot set them through `headers`
_STRUCTURAL = frozenset({"content-type", "content-transfer-encoding", "mime-version"})
#: headers composed from fields: a `headers` entry with the same key replaces them
_COMPOSED = frozenset(
    {"from", "reply-to", "to", "cc", "bcc", "subject", "date", "message-id", "in-reply-to"}
)
_TRANSFER_ENCODINGS = frozenset({"base64", "quoted-printable", "7bit", "8bit"})
#: `<img src="data:image/png;base64,...">` in uploaded HTML (WildDuck extracts these too)
_DATA_IMAGE = re.compile(
    r"""(<img\b[^>]*?\bsrc\s*=\s*)(["'])data:(image/[A-Za-z0-9.+-]+);base64,([A-Za-z0-9+/=\s]+)\2""",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Mailbox:
    name: str
    address: str


@dataclass(frozen=True)
class Part:
    """An attachment to add: decoded content and how to label it."""

    filename: str | None
    content_type: str
    content: bytes
    cid: str | None = None
    disposition: str | None = None
    transfer_encoding: str | None = None


@dataclass
class Draft:
    """Everything a composed message is made of."""

    from_: Mailbox
    date: datetime
    reply_to: Mailbox | None = None
    to: Sequence[Mailbox] = ()
    cc: Sequence[Mailbox] = ()
    bcc: Sequence[Mailbox] = ()
    subject: str | None = None
    text: str | None = None
    html: str | None = None
    headers: Sequence[tuple[str, str]] = ()
    attachments: list[Part] = field(default_factory=list)


def decode_content(content: str, encoding: str | None) -> bytes:
    """An attachment's `content`: base64 (the default), or else the UTF-8 bytes of the text.
    ValueError when base64 is not base64."""
    if (encoding or "base64").lower() != "base64":
        return content.encode("utf-8")
    try:
        return base64.b64decode("".join(content.split()), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("must be valid base64") from None


def extract_data_images(html: str, first: int = 1) -> tuple[str, list[Part]]:
    """Move `data:` URL images out of `html` into inline parts referred to by cid, named as
    WildDuck (nodemailer) names an attachment without a name: `attachment-N.ext`, N its place
    in the message's attachments (the first image is number `first`)."""
    parts: list[Part] = []

    def replace(match: re.Match[str]) -> str:
        content_type = match.group(3).lower()
        try:
            content = base64.b64decode("".join(match.group(4).split()), validate=True)
        except (binascii.Error, ValueError):
            return match.group(0)  # not an image we can lift out: left as it was
        cid = f"{uuid.uuid4().hex}@wildpy"
        extension = content_type.split("/", 1)[1].split("+", 1)[0]
        name = f"attachment-{first + len(parts)}.{extension}"
        parts.append(Part(name, content_type, content, cid=cid, disposition="inline"))
        quote = match.group(2)
        return f"{match.group(1)}{quote}cid:{cid}{quote}"

    return _DATA_IMAGE.sub(replace, html), parts


def compose(draft: Draft) -> bytes:
    """The RFC 5322 bytes of `draft`; ERRCOMPOSE when the message cannot be built."""
    try:
        return _build(draft).as_bytes(policy=policy.SMTP)
    except Exception as exc:  # the email package raises many types for odd input
        # the reason goes to the log only: 5xx bodies carry no exception text (error contract)
        log.warning("composing a message failed: %s: %s", type(exc).__name__, exc)
        raise errors.ERRCOMPOSE() from exc


def _address(mailbox: Mailbox) -> Address:
    return Address(display_name=mailbox.name or "", addr_spec=mailbox.address)


def _build(draft: Draft) -> EmailMessage:
    message = EmailMessage(policy=policy.SMTP)
    message["From"] = _address(draft.from_)
    if draft.reply_to is not None:
        message["Reply-To"] = _address(draft.reply_to)
    for header, mailboxes in (("To", draft.to), ("Cc", draft.cc), ("Bcc", draft.bcc)):
        if mailboxes:
            # Bcc is kept: the stored copy is the sender's (WildDuck's keepBcc)
            message[header] = [_address(m) for m in mailboxes]
    if draft.subject:
        message["Subject"] = draft.subject
    when = draft.date if draft.date.tzinfo else draft.date.replace(tzinfo=UTC)
    message["Date"] = format_datetime(when)
    domain = draft.from_.address.rpartition("@")[2] or "wildpy"
    message["Message-ID"] = make_msgid(domain=domain)
    for key, value in draft.headers:
        name = key.strip()
        if not name or name.lower() in _STRUCTURAL:
            continue
        if name.lower() in _COMPOSED:
            del message[name]
        message[name] = value
    _add_body(message, draft)
    return message


def _add_body(message: EmailMessage, draft: Draft) -> None:
    html = draft.html or None
    text = draft.text or None
    if html is not None and text is None:
        # a text alternative for clients that do not show HTML (WildDuck does the same)
        text = html_to_text(html)
    referenced = {p.cid for p in draft.attachments if p.cid and html and f"cid:{p.cid}" in html}
    inline = [p for p in draft.attachments if p.cid in referenced]
    regular = [p for p in draft.attachments if p.cid not in referenced or not p.cid]
    message.set_content(text or "", subtype="plain", charset="utf-8")
    if html is not None:
        message.add_alternative(html, subtype="html", charset="utf-8")
        if inline:
            html_part = list(message.iter_parts())[1]
            for part in inline:
                maintype, subtype = _split_type(part.content_type)
                html_part.add_related(
                    part.content,
                    maintype=maintype,
                    subtype=subtype,
                    cid=f"<{part.cid}>",
                    filename=part.filename,
                    disposition="inline",
                    cte=_cte(part),
                )
    for part in regular:
        maintype, subtype = _split_type(part.content_type)
        message.add_attachment(
            part.content,
            maintype=maintype,
            subtype=subtype,
            filename=part.filename,
            disposition=part.disposition or "attachment",
            cid=f"<{part.cid}>" if part.cid else None,
            cte=_cte(part),
        )


def _cte(part: Part) -> str:
    """The transfer encoding asked for, when it is one the email package can apply."""
    encoding = (part.transfer_encoding or "").lower()
    return encoding if encoding in _TRANSFER_ENCODINGS else "base64"


def _split_type(content_type: str) -> tuple[str, str]:
    main, _, sub = content_type.partition(";")[0].strip().lower().partition("/")
    if not main or not sub:
        return "application", "octet-stream"
    return main, sub
