"""The HTTP edge below the application: aiohttp's own errors in the envelope, logs without secrets.

aiohttp answers requests its parser refuses (a bad request line, a line or header past 8,190
bytes, too many headers, bad chunking) itself, before any middleware runs, as `text/plain` that
quotes the raw bytes, and it logs the exception, whose text quotes the same bytes: the start of a
URL carrying `?accessToken=`, or the value of an `X-Access-Token` header.

- `protocol_logger()` is aiohttp's server logger with `CredentialFilter` on it; `create_app`
  hands it to every connection through `handler_args`, so however the app is served (run_app,
  AppRunner, the test server) parser errors are logged by name only and credentials are redacted.
- `ApiAppRunner` is `web.AppRunner` whose connections use `ApiRequestHandler`, which answers those
  errors with the contract's JSON envelope (400 InputValidationError, or 500 InternalError).
  aiohttp has no public hook for this; the REST door (server.py) serves with it.

What stays outside the envelope: a connection whose answer has already started when the error
happens (aiohttp can only close it), and bytes that are not HTTP at all sent before a request line
(answered as a malformed request, in the envelope, but logged at debug level as aiohttp does, to
keep TLS probes and scanners out of the log).
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid

from aiohttp import http_exceptions, web
from aiohttp.http_parser import RawRequestMessage
from aiohttp.web_protocol import RequestHandler, RequestPayloadError

from wildpy import errors
from wildpy.errors import WildpyError

from .context import REQUEST_ID_KEY
from .responses import json_response

#: the loggers aiohttp writes request data to (protocol errors, access lines, app errors)
AIOHTTP_LOGGERS = ("aiohttp.server", "aiohttp.access", "aiohttp.web")

_CREDENTIAL = re.compile(
    r"(?i)(accesstoken(?:=|%3d)|x-access-token\s*[:=]\s*|authorization\s*[:=]\s*(?:bearer\s+)?)"
    r"[^\s&'\"]+"
)
_FORMATTER = logging.Formatter()

# most specific first: BadHttpMethod is a BadStatusLine, every one of them a BadHttpMessage
_REASONS: tuple[tuple[type[http_exceptions.HttpProcessingError], str], ...] = (
    (http_exceptions.LineTooLong, "the request line or a header is too long"),
    (http_exceptions.BadHttpMethod, "the method is not valid"),
    (http_exceptions.BadStatusLine, "the request line is not valid"),
    (http_exceptions.InvalidHeader, "a header is not valid"),
    (http_exceptions.InvalidURLError, "the URL is not valid"),
    (http_exceptions.TransferEncodingError, "the chunked body is not valid"),
    (http_exceptions.ContentLengthError, "the body does not match its Content-Length"),
    (http_exceptions.ContentEncodingError, "the body does not match its Content-Encoding"),
)
# the C parser raises plain BadHttpMessage("Invalid character in chunk size:\n\n  b'zz'..."): its
# first words are safe to repeat, what follows the colon is the client's bytes
_PLAIN_WORDS = re.compile(r"^[A-Za-z][A-Za-z -]{0,80}$")


def redact(text: str) -> str:
    """`text` with access tokens (query parameter, header, bearer) replaced by `[redacted]`."""
    return _CREDENTIAL.sub(r"\1[redacted]", text)


class CredentialFilter(logging.Filter):
    """Rewrites records so no credential reaches a log line, whichever handler formats them."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, http_exceptions.HttpProcessingError):
            # its text quotes raw request bytes (a header value has no name to match): name it only
            record.msg = f"{redact(record.getMessage())}: {parse_error_reason(exc)}"
            record.args = ()
            record.exc_info = None
            record.exc_text = None
            return True
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        if record.exc_info:
            # formatted once here, so no formatter downstream prints the unredacted traceback
            record.exc_text = redact(_FORMATTER.formatException(record.exc_info))
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def protocol_logger() -> logging.Logger:
    """aiohttp's server logger, with `CredentialFilter` on it and on aiohttp's other loggers."""
    for name in AIOHTTP_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(item, CredentialFilter) for item in logger.filters):
            logger.addFilter(CredentialFilter())
    return logging.getLogger(AIOHTTP_LOGGERS[0])


def parse_error_reason(exc: http_exceptions.HttpProcessingError) -> str:
    """What is wrong with the request, in words that never repeat the client's bytes."""
    for kind, reason in _REASONS:
        if isinstance(exc, kind):
            return reason
    first = str(exc.message).split(":", 1)[0].strip()
    return (
        first[:1].lower() + first[1:] if _PLAIN_WORDS.match(first) else "the request is malformed"
    )


class ApiRequestHandler(RequestHandler):
    """aiohttp's per-connection protocol, answering the errors it handles itself in the envelope."""

    def data_received(self, data: bytes) -> None:
        queued = len(self._messages)
        super().data_received(data)
        # aiohttp queues a parser error (bad chunking) as the next message but leaves the request
        # whose body it was parsing waiting for the rest for ever: fail that body instead, so its
        # handler answers (400 through the error middleware) and the queued error follows
        current = self._current_request
        if current is None or current.content.is_eof():
            return
        if any(not isinstance(msg, RawRequestMessage) for msg, _ in list(self._messages)[queued:]):
            current.content.set_exception(RequestPayloadError("malformed request body"))

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        rid = str(request.get(REQUEST_ID_KEY) or uuid.uuid4().hex)
        error: WildpyError
        if isinstance(exc, http_exceptions.HttpProcessingError) and status < 500:
            reason = parse_error_reason(exc)
            error = errors.InputValidationError(f"Malformed HTTP request: {reason}")
            # aiohttp's choice: non-HTTP bytes as a first request are scanners, not news
            noise = self._request_count == 1 and isinstance(exc, http_exceptions.BadHttpMethod)
            self.logger.log(
                logging.DEBUG if noise else logging.INFO,
                "%s requestId=%s malformed request from %s: %s",
                error.code(),
                rid,
                request.remote,
                reason,
            )
        else:
            error = errors.InternalError()
            self.logger.error(
                "%s requestId=%s error handling request from %s",
                error.code(),
                rid,
                request.remote,
                exc_info=exc,
            )
        if request.writer.output_size > 0:
            raise ConnectionError("the answer has started, the error cannot be sent")
        body = {"error": error.text, "code": error.code(), "requestId": rid}
        response = json_response(body, status=error.status, headers={"X-Request-Id": rid})
        response.force_close()  # the parser lost its place in the stream: nothing after is safe
        return response


class ApiServer(web.Server):
    """aiohttp's low-level server, with `ApiRequestHandler` for every connection."""

    def __call__(self) -> RequestHandler:
        return ApiRequestHandler(self, loop=self._loop, **self._kwargs)


class ApiAppRunner(web.AppRunner):
    """`web.AppRunner` whose connections answer aiohttp's own errors in the envelope."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        # the same server, rebuilt as an ApiServer: aiohttp offers no protocol class parameter
        return ApiServer(
            server.request_handler,
            request_factory=server.request_factory,
            handler_cancellation=server.handler_cancellation,
            loop=asyncio.get_running_loop(),
            **server._kwargs,
        )
