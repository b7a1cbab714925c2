"""Store a message uploaded through the API (POST /users/:user/mailboxes/:mailbox/messages).

Either the raw RFC 5322 bytes are given, or the message is composed (wildpy/services/compose.py)
from fields, files of the user's storage and, for a reply or a forward, the message it refers
to. Then it goes into the store through `MessageService.add_message`, the path every door uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from wildpy import errors
from wildpy.clock import utcnow
from wildpy.services.files import FileService
from wildpy.services.messages import MessageService
from wildpy.storage.accounts import Users
from wildpy.storage.database import Document

from .compose import Draft, Mailbox, Part, compose, extract_data_images
from .records import AddedMessage

#: what the referenced message of a reply or forward is read with (also serves its attachments)
_REFERENCE_PROJECTION: Document = dict.fromkeys(
    (
        "user",
        "size",
        "segments",
        "segmentsFile",
        "attachments",
        "msgid",
        "references",
        "subject",
        "from",
        "sender",
        "replyTo",
        "to",
        "cc",
    ),
    1,
)


@dataclass(frozen=True)
class Reference:
    """`reference`: the message this upload replies to or forwards."""

    mailbox: str
    uid: int
    action: Literal["reply", "replyAll", "forward"]
    #: True for all of its attachments, or the ids (ATT00001...) to carry over
    attachments: bool | Sequence[str] = False


@dataclass
class ComposeFields:
    """The upload fields a message is composed from when no `raw` is given."""

    from_: Mailbox | None = None
    reply_to: Mailbox | None = None
    to: Sequence[Mailbox] = ()
    cc: Sequence[Mailbox] = ()
    bcc: Sequence[Mailbox] = ()
    subject: str | None = None
    text: str | None = None
    html: str | None = None
    headers: Sequence[tuple[str, str]] = ()
    attachments: list[Part] = field(default_factory=list)
    files: Sequence[str] = ()
    reference: Reference | None = None


@dataclass(frozen=True)
class Upload:
    raw: bytes | None
    fields: ComposeFields
    unseen: bool = False
    flagged: bool = False
    draft: bool = False
    date: datetime | None = None
    #: the client's metaData as its JSON string (fields.encode_metadata)
    metadata: str | None = None
    #: `replacePrevious`: (mailbox or None for the same one, uid) of a draft to delete after
    replace_previous: tuple[str | None, int] | None = None
    origin: str | None = None


@dataclass(frozen=True)
class Uploaded:
    message: AddedMessage
    #: set when `replacePrevious` was asked for: True, or the reason it failed
    previous_deleted: bool | None = None
    previous_error: str | None = None


class UploadService:
    def __init__(self, messages: MessageService, users: Users, files: FileService) -> None:
        self._messages = messages
        self._users = users
        self._files = files

    async def upload(self, user_id: str, mailbox_id: str, upload: Upload) -> Uploaded:
        """Store `upload` in the mailbox. UserNotFound, UserDisabled, FileNotFound and
        MessageNotFound (a missing reference) before anything is stored; then whatever
        `add_message` refuses (NoSuchMailbox, OverQuotaError, EmptyMessage, PayloadTooLarge)."""
        user = await self._users.get(
            user_id, {"name": 1, "address": 1, "disabled": 1, "suspended": 1}
        )
        if user is None:
            raise errors.UserNotFound()
        if user.get("disabled") or user.get("suspended"):
            raise errors.UserDisabled()
        now = utcnow()
        meta: dict[str, Any] = {"source": "API", "transtype": "UPLOAD", "time": now}
        if upload.origin:
            meta["origin"] = upload.origin
        if upload.metadata:
            meta["custom"] = upload.metadata
        draft = upload.draft
        raw = upload.raw
        if raw is None:
            raw, extra = await self._compose(user, upload, now)
            meta.update(extra)
            draft = draft or upload.fields.reference is not None  # replies are drafts
        flags = [] if upload.unseen else ["\\Seen"]
        if upload.flagged:
            flags.append("\\Flagged")
        if draft:
            flags.append("\\Draft")
        added = await self._messages.add_message(
            user_id, mailbox_id, raw, flags=flags, idate=upload.date, meta=meta
        )
        if upload.replace_previous is None:
            return Uploaded(added)
        previous_mailbox, previous_uid = upload.replace_previous
        try:
            await self._messages.delete(user_id, previous_mailbox or mailbox_id, previous_uid)
        except errors.WildpyError as exc:
            return Uploaded(added, previous_error=f"Failed to delete previous message. {exc.text}")
        return Uploaded(added, previous_deleted=True)

    async def _compose(
        self, user: Document, upload: Upload, now: datetime
    ) -> tuple[bytes, dict[str, Any]]:
        fields = upload.fields
        meta: dict[str, Any] = {}
        attachments: list[Part] = []
        headers = list(fields.headers)
        subject, to, cc = fields.subject, list(fields.to), list(fields.cc)
        if fields.reference is not None:
            ref = fields.reference
            referenced = await self._messages.get(
                str(user["_id"]), ref.mailbox, ref.uid, _REFERENCE_PROJECTION
            )
            headers = _reference_headers(referenced, ref.action) + headers
            subject = subject or referenced.get("subject") or None
            if not to and not cc and ref.action != "forward":
                to, cc = _reply_recipients(referenced, ref.action, str(user.get("address", "")))
            attachments += await self._referenced_attachments(str(user["_id"]), referenced, ref)
            meta["reference"] = {"action": ref.action, "mailbox": ref.mailbox, "id": ref.uid}
        stored_files = []
        for file_id in fields.files:
            stored, data = await self._files.read(str(user["_id"]), file_id)
            attachments.append(Part(stored.filename, stored.content_type, data, cid=stored.cid))
            stored_files.append(
                {
                    "id": stored.id,
                    "filename": stored.filename,
                    "contentType": stored.content_type,
                    "size": stored.size,
                }
            )
        if stored_files:
            meta["files"] = stored_files
        html = fields.html
        if html:
            html, images = extract_data_images(html, first=len(attachments) + 1)
            attachments += images
        sender = fields.from_ or Mailbox(str(user.get("name") or ""), str(user.get("address", "")))
        draft = Draft(
            from_=sender,
            date=upload.date or now,
            reply_to=fields.reply_to,
            to=to,
            cc=cc,
            bcc=fields.bcc,
            subject=subject,
            text=fields.text,
            html=html,
            headers=headers,
            attachments=[*attachments, *fields.attachments],
        )
        return compose(draft), meta

    async def _referenced_attachments(
        self, user_id: str, referenced: Document, ref: Reference
    ) -> list[Part]:
        if ref.attachments is False:
            return []
        wanted = None if ref.attachments is True else {a.upper() for a in ref.attachments}
        parts = []
        for info in referenced.get("attachments") or []:
            ident = str(info.get("id", "")).upper()
            if (wanted is None and info.get("related")) or (
                wanted is not None and ident not in wanted
            ):
                continue
            _, content = await self._messages.read_attachment(user_id, referenced, ident)
            parts.append(Part(info.get("filename"), str(info.get("contentType")), content))
        return parts


def _reference_headers(referenced: Document, action: str) -> list[tuple[str, str]]:
    msgid = referenced.get("msgid")
    references = [*(referenced.get("references") or []), *([msgid] if msgid else [])]
    headers = []
    if msgid and action in ("reply", "replyAll"):
        headers.append(("In-Reply-To", str(msgid)))
    if references:
        headers.append(("References", " ".join(str(r) for r in references)))
    return headers


def _mailboxes(entries: Sequence[Document], skip: str) -> list[Mailbox]:
    return [
        Mailbox(str(e.get("name") or ""), str(e["address"]))
        for e in entries
        if e.get("address") and str(e["address"]).lower() != skip.lower()
    ]


def _reply_recipients(
    referenced: Document, action: str, own: str
) -> tuple[list[Mailbox], list[Mailbox]]:
    to = _mailboxes(referenced.get("replyTo") or referenced.get("from") or [], "")
    if action != "replyAll":
        return to, []
    seen = {m.address.lower() for m in to}
    others = [
        m
        for m in _mailboxes([*(referenced.get("to") or []), *(referenced.get("cc") or [])], own)
        if m.address.lower() not in seen
    ]
    return to, others
