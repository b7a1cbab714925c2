"""REST routes for the messages of a mailbox (WildDuck reference 5.6): list, read, raw source,
attachments, update or move by UID set, delete, empty a mailbox, and upload.

Forwarding and submitting (`.../forward`, `.../submit`) wait for the mail flow.
"""

from __future__ import annotations

from typing import Annotated, Any

from aiohttp import web
from pydantic import Field

from wildpy import errors
from wildpy.fields import encode_metadata
from wildpy.mime.charsets import decode_bytes
from wildpy.store.actions import MessageChanges
from wildpy.store.compose import Mailbox, Part, decode_content
from wildpy.store.search_terms import UidSet
from wildpy.store.upload import ComposeFields, Reference, Upload

from .auth import permit
from .context import runtime
from .files import content_disposition, safe_content_type
from .message_params import (
    AddressIn,
    AttachmentIn,
    Date,
    DateOrFalse,
    HeaderIn,
    IncludeHeaders,
    Metadata,
    Order,
    PreviousIn,
    ReferenceIn,
    Subject,
    Uid,
    UidSetText,
)
from .message_views import listing_rows, message_view, parse_include_headers
from .openapi import documented
from .responses import ok, page_answer
from .validation import Bool, LooseParams, ObjectIdStr, PageParams, Params, read_params

routes = web.RouteTableDef()

MESSAGES = "/users/{user}/mailboxes/{mailbox}/messages"
MESSAGE = MESSAGES + "/{message}"


class MailboxPath(LooseParams):
    """The path of a mailbox's messages, checked before a (possibly large) body is read."""

    user: ObjectIdStr
    mailbox: ObjectIdStr


class ListMessages(PageParams):
    user: ObjectIdStr
    mailbox: ObjectIdStr
    unseen: Bool = None
    metaData: Bool = None
    threadCounters: Bool = None
    includeHeaders: IncludeHeaders = None
    order: Order = "desc"


class MessagePath(Params):
    user: ObjectIdStr
    mailbox: ObjectIdStr
    message: Uid


class GetMessage(MessagePath):
    replaceCidLinks: Bool = None
    markAsSeen: Bool = None


class AttachmentPath(MessagePath):
    attachment: Annotated[str, Field(pattern=r"(?i)^ATT\d+$")]
    sendAsString: Bool = None


class ChangeFields(Params):
    user: ObjectIdStr
    mailbox: ObjectIdStr
    moveTo: ObjectIdStr | None = None
    seen: Bool = None
    deleted: Bool = None
    flagged: Bool = None
    draft: Bool = None
    expires: DateOrFalse = None
    metaData: Metadata = None


class UpdateMessages(ChangeFields):
    message: UidSetText


class DeleteMessages(Params):
    user: ObjectIdStr
    mailbox: ObjectIdStr
    async_: Bool = Field(None, alias="async")
    skipArchive: Bool = None


class UploadMessage(Params):
    user: ObjectIdStr
    mailbox: ObjectIdStr
    date: Date = None
    unseen: Bool = None
    flagged: Bool = None
    draft: Bool = None
    raw: Annotated[str, Field(max_length=64 * 1024 * 1024)] | None = None
    from_: AddressIn | None = Field(None, alias="from")
    replyTo: AddressIn | None = None
    to: list[AddressIn] | None = None
    cc: list[AddressIn] | None = None
    bcc: list[AddressIn] | None = None
    headers: list[HeaderIn] | None = None
    subject: Subject = None
    text: Annotated[str, Field(max_length=1024 * 1024)] | None = None
    html: Annotated[str, Field(max_length=1024 * 1024)] | None = None
    files: list[ObjectIdStr] | None = None
    attachments: list[AttachmentIn] | None = None
    metaData: Metadata = None
    reference: ReferenceIn | None = None
    replacePrevious: PreviousIn | None = None
    #: accepted for WildDuck's clients; BIMI is not looked up yet
    bimi: dict[str, Any] | None = None


# ---------------------------------------------------------------------------------- reading


@routes.get(MESSAGES)
@documented(ListMessages, errors.NoSuchMailbox)
async def list_messages(request: web.Request) -> web.Response:
    """One page of a mailbox's messages by internal date (newest first by default)."""
    params = await read_params(request, ListMessages, body=False)
    permit(request, "read", "messages", owner=params.user)
    headers = parse_include_headers(params.includeHeaders)
    listing = await runtime(request).message_api.search.list_mailbox(
        params.user,
        params.mailbox,
        params.paging,
        unseen=params.unseen,
        ascending=params.order == "asc",
        headers=bool(headers),
        metadata=bool(params.metaData),
        thread_counters=bool(params.threadCounters),
    )
    rows = listing_rows(listing, headers=headers, metadata=bool(params.metaData))
    extra = {"specialUse": listing.special_use} if listing.special_use else {}
    return page_answer(listing.page, rows, **extra)


@routes.get(MESSAGE)
@documented(GetMessage, errors.NoSuchMailbox, errors.MessageNotFound, errors.MessageGone)
async def get_message(request: web.Request) -> web.Response:
    """One message in full: addresses, flags, text, HTML and its attachments."""
    params = await read_params(request, GetMessage, body=False)
    permit(request, "read", "messages", owner=params.user)
    read = await runtime(request).messages.read_message(
        params.user, params.mailbox, params.message, mark_seen=bool(params.markAsSeen)
    )
    body = read.body
    base = f"/users/{params.user}/mailboxes/{params.mailbox}/messages/{params.message}"
    url = (lambda att: f"{base}/attachments/{att}") if params.replaceCidLinks else None
    return ok(**message_view(read.message, body.html, attachment_url=url, text=body.text))


@routes.get(MESSAGE + "/message.eml")
@documented(MessagePath, errors.NoSuchMailbox, errors.MessageNotFound, errors.MessageGone)
async def get_message_source(request: web.Request) -> web.Response:
    """The message exactly as it was stored (message/rfc822)."""
    params = await read_params(request, MessagePath, body=False)
    permit(request, "read", "messages", owner=params.user)
    raw = await runtime(request).messages.source(params.user, params.mailbox, params.message)
    return web.Response(body=raw, content_type="message/rfc822")


@routes.get(MESSAGE + "/attachments/{attachment}")
@documented(
    AttachmentPath,
    errors.NoSuchMailbox,
    errors.MessageNotFound,
    errors.MessageGone,
    errors.AttachmentNotFound,
)
async def get_attachment(request: web.Request) -> web.Response:
    """An attachment's decoded content, with its content type."""
    params = await read_params(request, AttachmentPath, body=False)
    permit(request, "read", "attachments", owner=params.user)
    info, content = await runtime(request).messages.attachment(
        params.user, params.mailbox, params.message, params.attachment
    )
    content_type = safe_content_type(str(info.get("contentType") or "application/octet-stream"))
    charset = None
    if params.sendAsString and content_type.startswith("text/"):
        # transcoded to UTF-8, as WildDuck's sendAsString does (the charset is detected: UTF-8,
        # then windows-1252, then latin-1)
        content = decode_bytes(content, info.get("charset")).encode("utf-8")
        charset = "utf-8"
    response = web.Response(
        body=content,
        headers={
            "Content-Disposition": content_disposition(
                str(info.get("filename") or "attachment"),
                # the part's own disposition, as WildDuck sends it: an inline image stays
                # inline; anything else (absent, unknown) downloads as an attachment
                "inline" if info.get("disposition") == "inline" else "attachment",
            ),
            # served from the API's origin: never let a browser sniff an HTML attachment
            "X-Content-Type-Options": "nosniff",
        },
    )
    response.content_type = content_type.split(";", 1)[0].strip()
    if charset is not None:
        response.charset = charset
    return response


# ---------------------------------------------------------------------------------- changing


def _changes(params: ChangeFields) -> MessageChanges:
    metadata = None
    if params.metaData is not None:
        metadata = encode_metadata(params.metaData, "metaData")
    return MessageChanges(
        seen=params.seen,
        flagged=params.flagged,
        draft=params.draft,
        deleted=params.deleted,
        expires=params.expires,
        metadata=metadata,
        move_to=params.moveTo,
    )


async def _update(request: web.Request, params: UpdateMessages) -> web.Response:
    permit(request, "update", "messages", owner=params.user)
    outcome = await runtime(request).message_api.actions.update(
        params.user, params.mailbox, UidSet.parse(params.message), _changes(params)
    )
    if outcome.moved is not None:
        return ok(mailbox=params.moveTo, id=[list(pair) for pair in outcome.moved])
    return ok(updated=outcome.updated)


_UPDATE_ERRORS = (
    errors.NoSuchMailbox,
    errors.MessageNotFound,
    errors.MessageGone,
    errors.NoUpdates,
    errors.StoreError,
)


@routes.put(MESSAGE)
@documented(UpdateMessages, *_UPDATE_ERRORS)
async def update_message(request: web.Request) -> web.Response:
    """Change flags, expiry or metaData of the messages of a UID set, or move them."""
    return await _update(request, await read_params(request, UpdateMessages))


@routes.put(MESSAGES)
@documented(UpdateMessages, *_UPDATE_ERRORS)
async def update_messages(request: web.Request) -> web.Response:
    """The same as PUT .../messages/:message, with the UID set in the body as `message`."""
    return await _update(request, await read_params(request, UpdateMessages))


@routes.delete(MESSAGE)
@documented(MessagePath, errors.NoSuchMailbox, errors.MessageNotFound, errors.MessageGone)
async def delete_message(request: web.Request) -> web.Response:
    """Delete a message: it stays restorable in the archive for a while, unless a draft."""
    params = await read_params(request, MessagePath)
    permit(request, "delete", "messages", owner=params.user)
    await runtime(request).message_api.actions.delete(params.user, params.mailbox, params.message)
    return ok()


@routes.delete(MESSAGES)
@documented(DeleteMessages, errors.NoSuchMailbox)
async def delete_messages(request: web.Request) -> web.Response:
    """Empty a mailbox (archived unless skipArchive). `async` is accepted and runs inline."""
    params = await read_params(request, DeleteMessages)
    permit(request, "delete", "messages", owner=params.user)
    deleted, failed = await runtime(request).message_api.actions.empty(
        params.user, params.mailbox, archive=not params.skipArchive
    )
    return ok(deleted=deleted, errors=failed)


# ---------------------------------------------------------------------------------- upload


def _mailbox(address: AddressIn | None) -> Mailbox | None:
    return None if address is None else Mailbox(address.name or "", address.address)


def _mailboxes(addresses: list[AddressIn] | None) -> list[Mailbox]:
    return [Mailbox(a.name or "", a.address) for a in addresses or []]


def _parts(attachments: list[AttachmentIn] | None) -> list[Part]:
    parts = []
    for index, item in enumerate(attachments or []):
        try:
            content = decode_content(item.content, item.encoding)
        except ValueError as exc:
            key = f"attachments,{index},content"
            message = f'"attachments[{index}].content" {exc}'
            raise errors.InputValidationError(message, details={key: message}) from None
        parts.append(
            Part(
                filename=item.filename,
                content_type=item.contentType or "application/octet-stream",
                content=content,
                cid=item.cid,
                disposition=item.contentDisposition,
                transfer_encoding=item.contentTransferEncoding,
            )
        )
    return parts


def _upload(params: UploadMessage, raw: bytes | None) -> Upload:
    reference = None
    if params.reference is not None:
        attachments = params.reference.attachments
        reference = Reference(
            params.reference.mailbox,
            params.reference.id,
            params.reference.action,
            attachments if isinstance(attachments, list) else bool(attachments),
        )
    fields = ComposeFields(
        from_=_mailbox(params.from_),
        reply_to=_mailbox(params.replyTo),
        to=_mailboxes(params.to),
        cc=_mailboxes(params.cc),
        bcc=_mailboxes(params.bcc),
        subject=params.subject or None,
        text=params.text or None,
        html=params.html or None,
        headers=[(h.key, h.value) for h in params.headers or []],
        attachments=_parts(params.attachments),
        files=params.files or [],
        reference=reference,
    )
    previous = params.replacePrevious
    return Upload(
        raw=raw,
        fields=fields,
        unseen=bool(params.unseen),
        flagged=bool(params.flagged),
        draft=bool(params.draft),
        date=params.date,
        metadata=encode_metadata(params.metaData, "metaData") if params.metaData else None,
        replace_previous=(previous.mailbox, previous.id) if previous is not None else None,
        origin=params.ip,
    )


@routes.post(MESSAGES)
@documented(
    UploadMessage,
    errors.UserNotFound,
    errors.UserDisabled,
    errors.NoSuchMailbox,
    errors.OverQuotaError,
    errors.EmptyMessage,
    errors.FileNotFound,
    errors.MessageNotFound,
    errors.ERRCOMPOSE,
    errors.StoreError,
)
async def upload_message(request: web.Request) -> web.Response:
    """Store a message: `raw` (or a message/rfc822 body), or composed from fields."""
    # the permission needs only the path: refuse before reading a body of up to maxBodySize
    path = await read_params(request, MailboxPath, body=False)
    permit(request, "create", "messages", owner=path.user)
    if request.content_type == "message/rfc822":
        # the body is the message itself; the other fields come in the query string
        raw: bytes | None = await request.read()
        params = await read_params(request, UploadMessage, body=False)
    else:
        params = await read_params(request, UploadMessage)
        # WildDuck takes `raw` as the message text itself (its docs say base64; it is not)
        raw = params.raw.encode("utf-8") if params.raw else None
    uploaded = await runtime(request).message_api.uploads.upload(
        params.user, params.mailbox, _upload(params, raw)
    )
    added = uploaded.message
    extra: dict[str, Any] = {}
    if uploaded.previous_deleted is not None:
        extra["previousDeleted"] = uploaded.previous_deleted
    if uploaded.previous_error is not None:
        extra["previousDeleteError"] = uploaded.previous_error
    return ok(message={"id": added.uid, "mailbox": added.mailbox, "size": added.size}, **extra)
