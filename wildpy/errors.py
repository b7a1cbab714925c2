"""The error catalogue: every failure that leaves wildpy carries one of these codes.

Each code is one class. Its category base class fixes the HTTP status; the class itself names the
default message and, where a protocol door can meet it, the IMAP response code and SMTP reply.
Services raise these; the REST middleware, the IMAP command loop and the SMTP handler render them,
each in one place. See shared/design/error-contract.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

_CATALOGUE: dict[str, type[WildpyError]] = {}


@dataclass(frozen=True)
class LimitState:
    """Where a caller stands against a rate limit; REST answers send it as X-RateLimit-*."""

    limit: int
    remaining: int
    #: seconds until the window starts afresh
    reset: int


class WildpyError(Exception):
    """Base of every catalogued error. Subclasses are registered by their class name as code."""

    status: ClassVar[int] = 500
    message: ClassVar[str] = "Internal server error"
    imap: ClassVar[str] = "NO [SERVERBUG]"
    smtp: ClassVar[str | None] = "451 4.3.0"
    retryable: ClassVar[bool] = False
    #: extra response headers (Retry-After for 503 and 429)
    headers: ClassVar[dict[str, str]] = {}
    #: category classes are not codes themselves
    abstract: ClassVar[bool] = True

    def __init__(self, message: str | None = None, *, details: dict[str, Any] | None = None):
        self.text = message or self.message
        self.details = details
        #: set by a route with a rate limit, on every answer it gives, errors included
        self.limit: LimitState | None = None
        super().__init__(self.text)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "abstract" not in cls.__dict__:
            cls.abstract = False
        if not cls.abstract:
            _CATALOGUE[cls.__name__] = cls

    @classmethod
    def code(cls) -> str:
        return cls.__name__

    def response_headers(self) -> dict[str, str]:
        """The extra headers a REST answer with this error carries."""
        return dict(self.headers)

    def imap_response(self) -> str:
        """The IMAP reply text: the response code, then the catalogue code, then the message."""
        return f"{self.imap} {self.code()}: {self.text}"

    def smtp_response(self) -> str | None:
        if self.smtp is None:
            return None
        if self.status >= 500:
            # never leak the text of an internal fault to a mail peer
            return f"{self.smtp} {self.code()}: Temporary server error, try again later"
        return f"{self.smtp} {self.code()}: {self.text}"


def catalogue() -> dict[str, type[WildpyError]]:
    """Every registered code, by name."""
    return dict(_CATALOGUE)


def error_class(code: str) -> type[WildpyError]:
    return _CATALOGUE[code]


# ---------------------------------------------------------------------------------------------
# categories (fix the status)


class InvalidRequest(WildpyError):
    abstract = True
    status = 400
    imap = "BAD"
    smtp: ClassVar[str | None] = "501 5.5.4"


class Unauthenticated(WildpyError):
    abstract = True
    status = 401
    imap = "NO [AUTHENTICATIONFAILED]"
    smtp: ClassVar[str | None] = "535 5.7.8"


class Forbidden(WildpyError):
    abstract = True
    status = 403
    imap = "NO [NOPERM]"
    smtp: ClassVar[str | None] = "550 5.7.1"


class NotFound(WildpyError):
    abstract = True
    status = 404
    imap = "NO [NONEXISTENT]"
    smtp: ClassVar[str | None] = None


class Conflict(WildpyError):
    abstract = True
    status = 409
    imap = "NO [ALREADYEXISTS]"
    smtp: ClassVar[str | None] = None


class RateLimited(WildpyError):
    """A limit was hit: `details` always says when to retry (`retry_after`, whole seconds), and
    the REST answer repeats it as `Retry-After`."""

    abstract = True
    status = 429
    imap = "NO [LIMIT]"
    smtp: ClassVar[str | None] = "451 4.7.1"
    retryable = True
    #: when the limiter could not say how long its window still runs
    default_retry_after: ClassVar[int] = 60

    def __init__(self, message: str | None = None, *, details: dict[str, Any] | None = None):
        details = dict(details or {})
        retry = details.get("retry_after")
        if isinstance(retry, int | float) and not isinstance(retry, bool) and retry > 0:
            details["retry_after"] = math.ceil(retry)
        else:
            details["retry_after"] = self.default_retry_after
        super().__init__(message, details=details)

    def response_headers(self) -> dict[str, str]:
        headers = super().response_headers()
        headers["Retry-After"] = str((self.details or {})["retry_after"])
        return headers


class ServerFault(WildpyError):
    abstract = True
    status = 500


class Unavailable(WildpyError):
    abstract = True
    status = 503
    imap = "NO [UNAVAILABLE]"
    smtp: ClassVar[str | None] = "451 4.3.0"
    retryable = True
    headers = {"Retry-After": "5"}


# ---------------------------------------------------------------------------------------------
# 400


class InputValidationError(InvalidRequest):
    message = "Input validation failed"


class EmptyMessage(InvalidRequest):
    message = "Empty message provided"
    imap = "NO"
    smtp = "554 5.6.0"


class InsecurePasswordError(InvalidRequest):
    message = "Provided password was found from breached passwords list"
    imap = "NO"


class NoUpdates(InvalidRequest):
    message = "Nothing was updated"
    imap = "NO"


class WildcardNotPermitted(InvalidRequest):
    message = "Can not set wildcard address as default"
    imap = "NO"


class InvalidContent(InvalidRequest):
    message = "Request body is not valid JSON"


class MessageNotDraft(InvalidRequest):
    message = "This message is not a draft"
    imap = "NO"


class TempPasswordNotYetValid(Unauthenticated):
    message = "Temporary password is not yet activated"


# ---------------------------------------------------------------------------------------------
# 401


class InvalidToken(Unauthenticated):
    message = "Invalid accessToken value"


class AuthFailed(Unauthenticated):
    message = "Authentication failed"


class AuthFail(Unauthenticated):
    message = "Password verification failed"


# ---------------------------------------------------------------------------------------------
# 403


class MissingPrivileges(Forbidden):
    message = "Not enough privileges"


class InvalidAuthScope(Forbidden):
    message = "Access to requested service disabled"
    imap = "NO [AUTHENTICATIONFAILED]"
    smtp = "535 5.7.8"


class UserDisabled(Forbidden):
    message = "User account is disabled"
    imap = "NO [AUTHORIZATIONFAILED]"
    smtp = "550 5.2.1"


class TooMany(Forbidden):
    message = "Limit reached"
    imap = "NO [LIMIT]"


class OverQuotaError(Forbidden):
    message = "User is over quota"
    imap = "NO [OVERQUOTA]"
    smtp = "452 4.2.2"
    retryable = True


class ChangeNotAllowed(Forbidden):
    message = "Can not change special address"


class NotPermitted(Forbidden):
    message = "Not permitted"


class DisallowedMailboxMethod(Forbidden):
    message = "Operation not allowed on this mailbox"
    imap = "NO [CANNOT]"


class MessageRejected(Forbidden):
    message = "Message rejected"


class DroppedByPolicy(Forbidden):
    message = "Message dropped by policy"
    smtp = "250"


# ---------------------------------------------------------------------------------------------
# 404


class ResourceNotFound(NotFound):
    message = "Resource does not exist"


class UserNotFound(NotFound):
    message = "This user does not exist"
    imap = "NO"
    smtp = "550 5.1.1"


class AddressNotFound(NotFound):
    message = "Invalid or unknown address"
    imap = "NO"
    smtp = "550 5.1.1"


class AccountNotFound(NotFound):
    message = "Deleted account was not found"


class AspNotFound(NotFound):
    message = "Invalid or unknown ASP key"


class DkimNotFound(NotFound):
    message = "Invalid or unknown DKIM key"


class AliasNotFound(NotFound):
    message = "This alias does not exist"


class FilterNotFound(NotFound):
    message = "This filter does not exist"


class NoSuchMailbox(NotFound):
    message = "This mailbox does not exist"


class MessageNotFound(NotFound):
    message = "This message does not exist"


class AttachmentNotFound(NotFound):
    message = "This attachment does not exist"


class FileNotFound(NotFound):
    message = "This file does not exist"


class ChallengeNotFound(NotFound):
    message = "Challenge was not found"


class CredentialsNotFound(NotFound):
    message = "Credentials were not found"


class WebhookNotFound(NotFound):
    message = "Invalid or unknown webhook identifier"


class CertNotFound(NotFound):
    message = "Invalid or unknown cert"


class RestoreTaskNotFound(NotFound):
    message = "Delete task not found"


class DomainNotFound(NotFound):
    message = "Domain was not found"


class EventNotFound(NotFound):
    message = "Event was not found"


# ---------------------------------------------------------------------------------------------
# 405, 409, 410, 413


class MethodNotAllowed(WildpyError):
    status = 405
    message = "Method is not allowed"
    imap = "BAD"
    smtp = None


class UserExistsError(Conflict):
    message = "This username already exists"


class AddressExistsError(Conflict):
    message = "This email address already exists"


class AliasExists(Conflict):
    message = "This domain alias already exists"


class MailboxExistsError(Conflict):
    message = "Mailbox already exists"


class TotpEnabled(Conflict):
    message = "TOTP 2FA is already enabled for this user"


class TotpDisabled(Conflict):
    message = "TOTP 2FA is not enabled for this user"


class CustomEnabled(Conflict):
    message = "Custom 2FA is already enabled for this user"


class CustomDisabled(Conflict):
    message = "Custom 2FA is not enabled for this user"


class WebAuthnDisabled(Conflict):
    message = "WebAuthn 2FA is not enabled for this user"


class DeleteInProgress(Conflict):
    message = "Deletion already in progress"


class AccountFound(Conflict):
    message = "Account was already restored"


class MessageGone(WildpyError):
    status = 410
    message = "This message has expired or was purged"
    imap = "NO [EXPUNGEISSUED]"
    smtp = None


class PayloadTooLarge(WildpyError):
    status = 413
    message = "Request body is too large"
    imap = "NO [TOOBIG]"
    smtp = "552 5.3.4"


# ---------------------------------------------------------------------------------------------
# 429


class RateLimitedError(RateLimited):
    message = "Rate limit exceeded"


class DownloadRateLimited(RateLimited):
    message = "Download was rate limited"
    smtp = None


class UploadRateLimited(RateLimited):
    message = "Upload was rate limited"
    smtp = None


# ---------------------------------------------------------------------------------------------
# 500


class InternalError(ServerFault):
    message = "Internal server error"


class HashError(ServerFault):
    message = "Failed to process password hash"


class KeyGenerateError(ServerFault):
    message = "Failed to generate key"


class QRError(ServerFault):
    message = "Failed to generate QR code"


class InternalConfigError(ServerFault):
    message = "Server configuration error"


class UserUpdateFail(ServerFault):
    message = "Could not update user"


class StoreError(ServerFault):
    message = "Failed to store message"
    imap = "NO [UNAVAILABLE]"


class ERRCOMPOSE(ServerFault):
    message = "Could not compose message"


# ---------------------------------------------------------------------------------------------
# 503


class InternalDatabaseError(Unavailable):
    message = "Database is unavailable, try again later"
