"""REST routes for storage files, a user's uploads for draft attachments (WildDuck reference 5.7).

`GET /users/:user/storage/:file` streams the file in its GridFS chunks rather than reading it
whole. Once the headers are out an error can no longer be answered with the error envelope, so
a failure mid-stream cuts the connection (the client sees fewer bytes than Content-Length).
"""

from __future__ import annotations

import contextlib
import logging
import re
from typing import Annotated, Any, Literal
from urllib.parse import quote

from aiohttp import web
from pydantic import BeforeValidator, Field

from wildpy import errors
from wildpy.services.files import StoredFile

from .auth import permit
from .context import request_id, runtime
from .openapi import documented
from .responses import ok, page_answer
from .validation import LooseParams, ObjectIdStr, PageParams, Params, read_params

log = logging.getLogger("wildpy.api")

routes = web.RouteTableDef()

#: a content type safe to send back as a header: type/subtype, optional parameters, no controls
_SAFE_CONTENT_TYPE = re.compile(r"^[\w!#$&^.+-]+/[\w!#$&^.+-]+(\s*;[\x20-\x7e]*)?$", re.ASCII)
#: characters allowed unencoded in an RFC 5987 `filename*` value (attr-char)
_ATTR_CHARS = "!#$&+-.^_`|~"


def _blank(value: object) -> object:
    """WildDuck's `.trim().empty('')`: surrounding blanks go, an empty string is "not given"."""
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return value


def _lower_blank(value: object) -> object:
    value = _blank(value)
    return value.lower() if isinstance(value, str) else value


#: a string of at most 255 characters, trimmed, "" meaning not given
Trimmed = Annotated[Annotated[str, Field(max_length=255)] | None, BeforeValidator(_blank)]


class StoragePath(LooseParams):
    """The `:user` of a storage route, checked before a (possibly large) body is read."""

    user: ObjectIdStr


class UploadFile(Params):
    user: ObjectIdStr
    filename: Trimmed = None
    contentType: Trimmed = None
    encoding: Annotated[Literal["base64"] | None, BeforeValidator(_lower_blank)] = None
    content: str
    cid: Trimmed = None


class ListFiles(PageParams):
    user: ObjectIdStr
    query: Trimmed = None


class FilePath(Params):
    user: ObjectIdStr
    file: ObjectIdStr


def content_disposition(filename: str, kind: str = "attachment") -> str:
    """`kind` (`attachment` or `inline`) with an ASCII fallback name and the exact name as
    RFC 5987 UTF-8."""
    fallback = "".join(
        char if 0x20 <= ord(char) < 0x7F and char not in '"\\' else "_" for char in filename
    )
    exact = quote(filename, safe=_ATTR_CHARS)
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{exact}"


def safe_content_type(content_type: str) -> str:
    """The stored content type, or octet-stream when it could not be a header value."""
    if _SAFE_CONTENT_TYPE.match(content_type):
        return content_type
    return "application/octet-stream"


def file_row(stored: StoredFile) -> dict[str, Any]:
    """A row of `GET /users/:user/storage` (WildDuck's shape; `cid` only when set)."""
    row: dict[str, Any] = {
        "id": stored.id,
        "filename": stored.filename,
        "contentType": stored.content_type,
    }
    if stored.cid:
        row["cid"] = stored.cid
    row.update(size=stored.size, created=stored.created, md5=stored.md5)
    return row


@routes.post("/users/{user}/storage")
@documented(UploadFile, errors.UserNotFound)
async def upload_file(request: web.Request) -> web.Response:
    # the permission needs only the path: refuse before reading a body of up to maxBodySize
    path = await read_params(request, StoragePath, body=False)
    permit(request, "create", "storage", owner=path.user)
    params = await read_params(request, UploadFile)
    file_id = await runtime(request).files.upload(
        params.user,
        params.content,
        encoding=params.encoding,
        filename=params.filename,
        content_type=params.contentType,
        cid=params.cid,
    )
    return ok(id=file_id)


@routes.get("/users/{user}/storage")
@documented(ListFiles, errors.UserNotFound)
async def list_files(request: web.Request) -> web.Response:
    params = await read_params(request, ListFiles, body=False)
    permit(request, "read", "storage", owner=params.user)
    page, files = await runtime(request).files.list(params.user, params.paging, query=params.query)
    return page_answer(page, [file_row(stored) for stored in files], query=params.query or "")


@routes.get("/users/{user}/storage/{file}")
@documented(FilePath, errors.FileNotFound)
async def download_file(request: web.Request) -> web.StreamResponse:
    params = await read_params(request, FilePath, body=False)
    permit(request, "read", "storage", owner=params.user)
    opened = await runtime(request).files.open(params.user, params.file)
    stored = opened.file
    response = web.StreamResponse(
        headers={
            "Content-Type": safe_content_type(stored.content_type),
            "Content-Disposition": content_disposition(stored.filename),
            "X-Content-Type-Options": "nosniff",
            # set here: the request-id middleware cannot add headers once they are sent
            "X-Request-Id": request_id(request),
        }
    )
    response.content_length = stored.size
    try:
        await response.prepare(request)
        if request.method == "HEAD":
            return response
        async with contextlib.aclosing(opened.chunks()) as chunks:
            async for chunk in chunks:
                await response.write(chunk)
    except ConnectionError:
        return response  # the client went away; nothing to tell it
    except Exception:
        if not response.prepared:
            raise  # nothing sent yet: the error middleware answers as usual
        log.exception(
            "storage file %s failed mid-stream requestId=%s", stored.id, request_id(request)
        )
        if request.transport is not None:
            request.transport.close()
        return response
    finally:
        await opened.close()
    await response.write_eof()
    return response


@routes.delete("/users/{user}/storage/{file}")
@documented(FilePath, errors.FileNotFound)
async def delete_file(request: web.Request) -> web.Response:
    params = await read_params(request, FilePath)
    permit(request, "delete", "storage", owner=params.user)
    await runtime(request).files.delete(params.user, params.file)
    return ok()
