"""The middlewares every request passes: request id, then the one place errors are rendered.

Whatever goes wrong (a catalogue error from a service, aiohttp's own 404/405/413, a crash), the
client gets the contract's envelope `{success:false, error, code, details?, requestId}` with an
honest status, and 5xx bodies carry no internals unless the API runs in debug mode.
"""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.typedefs import Handler
from aiohttp.web_protocol import RequestPayloadError

from wildpy import errors
from wildpy.errors import WildpyError

from .context import CONFIG, REQUEST_ID_KEY, request_id
from .responses import json_response, limit_headers

log = logging.getLogger("wildpy.api")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:@-]{1,128}$")


@web.middleware
async def request_id_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    given = request.headers.get("X-Request-Id", "")
    rid = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
    request[REQUEST_ID_KEY] = rid
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        exc.headers["X-Request-Id"] = rid
        raise
    response.headers["X-Request-Id"] = rid
    return response


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except WildpyError as exc:
        return render_error(request, exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise  # redirects and the like are answers, not errors
        return render_error(request, _from_http_exception(request, exc))
    except RequestPayloadError:  # the body broke off mid-stream (bad chunking): the client's fault
        return _cut_off(request, "Malformed HTTP request: the body is not valid")
    except ConnectionResetError as exc:
        if not _client_left(request):
            return _unhandled(request, exc)
        # the client hung up before its body was read: nobody gets an answer, and it is no fault
        return _cut_off(request, "The client closed the connection before the body was read")
    except Exception as exc:  # the last line of defence: log it, answer 500 without internals
        return _unhandled(request, exc)


def _client_left(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


def _cut_off(request: web.Request, message: str) -> web.Response:
    refused = render_error(request, errors.InputValidationError(message))
    refused.force_close()  # the rest of the stream cannot be parsed: do not try to
    return refused


def _unhandled(request: web.Request, exc: Exception) -> web.Response:
    log.exception(
        "unhandled error requestId=%s %s %s", request_id(request), request.method, request.path
    )
    fault = errors.InternalError()
    if request.app[CONFIG].api.debug:
        fault.details = {"exception": type(exc).__name__, "message": str(exc)}
    return render_error(request, fault)


def _from_http_exception(request: web.Request, exc: web.HTTPException) -> WildpyError:
    if isinstance(exc, web.HTTPNotFound):
        return errors.ResourceNotFound(f"{request.path} does not exist")
    if isinstance(exc, web.HTTPMethodNotAllowed):
        allowed = sorted(exc.allowed_methods)
        return errors.MethodNotAllowed(
            f"{request.method} is not allowed", details={"allowed": allowed}
        )
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        limit = request.app[CONFIG].api.max_body_size
        return errors.PayloadTooLarge(
            f"Request body is larger than {limit} bytes", details={"limit": limit}
        )
    if exc.status >= 500:
        return errors.InternalError()
    return errors.InputValidationError(exc.reason)


def render_error(request: web.Request, exc: WildpyError) -> web.Response:
    rid = request_id(request)
    body: dict[str, Any] = {"error": exc.text, "code": exc.code()}
    if exc.details:
        body["details"] = exc.details
    body["requestId"] = rid
    headers = exc.response_headers() | limit_headers(exc.limit)
    if isinstance(exc, errors.MethodNotAllowed) and exc.details:
        headers["Allow"] = ", ".join(exc.details["allowed"])
    if exc.status >= 500:
        log.error("%s requestId=%s %s %s", exc.code(), rid, request.method, request.path)
    else:
        log.info("%s requestId=%s %s %s", exc.code(), rid, request.method, request.path)
    return json_response(body, status=exc.status, headers=headers)


class AccessLogger(AbstractAccessLogger):
    """Access log without query strings: they may carry `accessToken`, which is never logged."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info(
            "%s %s %s %d %.1fms requestId=%s",
            request.remote,
            request.method,
            request.path,
            response.status,
            time * 1000,
            response.headers.get("X-Request-Id", "-"),
        )
