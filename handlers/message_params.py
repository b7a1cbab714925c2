"""Request field types shared by the message, search and archive routes (WildDuck's Joi rules)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    WithJsonSchema,
)
from pydantic import ValidationError as PydanticValidationError

from wildpy.addressing import normalize_address
from wildpy.errors import InputValidationError
from wildpy.fields import parse_bool
from wildpy.store.search_terms import UID_SET

from .validation import Bool, ObjectIdStr

_DATETIME = TypeAdapter(datetime)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


#: the first millisecond of year 1 and the last of year 9999: a datetime holds nothing beyond
MIN_EPOCH_MS = -62135596800000
MAX_EPOCH_MS = 253402300799999
#: 14 digits stay below MAX_EPOCH_MS, so the documented pattern promises no date it refuses
_DIGITS = re.compile(r"^[0-9]{1,14}$")


def parse_date(value: object) -> datetime:
    """Joi.date(): an ISO 8601 string, or epoch milliseconds as a number or a string of digits.

    Numbers are always milliseconds, as in JavaScript (pydantic alone would read small ones as
    seconds), and `0` is 1970-01-01, a date like any other; negative ones are before 1970.
    Out of a datetime's range (years 1 to 9999) is refused.
    """
    if isinstance(value, bool):
        raise ValueError("must be a valid date")
    if isinstance(value, str) and value.isdigit() and not _DIGITS.match(value):
        raise ValueError("must be a valid date")  # past year 9999, whatever pydantic would say
    if isinstance(value, (int, float)) or (isinstance(value, str) and _DIGITS.match(value)):
        number = float(value)
        if not MIN_EPOCH_MS <= number <= MAX_EPOCH_MS:  # NaN fails both comparisons
            raise ValueError("must be a valid date")
        return datetime.fromtimestamp(number / 1000, tz=UTC)
    try:
        return _utc(_DATETIME.validate_python(value))
    except PydanticValidationError:
        raise ValueError("must be a valid date") from None


def _date(value: object) -> object:
    """Joi.date(): "" (or null) means not given."""
    if value is None or value == "":
        return None
    return parse_date(value)


def _date_or_false(value: object) -> object:
    if value is False or (isinstance(value, str) and value.lower() == "false"):
        return False
    return _date(value)


#: what the document promises for a date; each alternative is one that `parse_date` accepts
_DATE_FORMS: list[dict[str, Any]] = [
    {"type": "string", "format": "date-time"},
    {"type": "number", "minimum": MIN_EPOCH_MS, "maximum": MAX_EPOCH_MS},
    {"type": "string", "pattern": _DIGITS.pattern},
]
_NOT_GIVEN: list[dict[str, Any]] = [{"type": "string", "const": ""}, {"type": "null"}]
_FALSE: list[dict[str, Any]] = [
    {"type": "boolean", "const": False},
    {"type": "string", "pattern": "^[fF][aA][lL][sS][eE]$"},
]
DATE_SCHEMA: dict[str, Any] = {"anyOf": [*_DATE_FORMS, *_NOT_GIVEN]}
DATE_OR_FALSE_SCHEMA: dict[str, Any] = {"anyOf": [*_DATE_FORMS, *_FALSE, *_NOT_GIVEN]}
#: Joi.date().allow(false): the boolean only, not the string "false"
DATE_OR_FALSE_STRICT_SCHEMA: dict[str, Any] = {"anyOf": [*_DATE_FORMS, _FALSE[0], *_NOT_GIVEN]}

#: a date (ISO 8601 or epoch milliseconds), in UTC
Date = Annotated[datetime | None, BeforeValidator(_date), WithJsonSchema(DATE_SCHEMA)]
#: a date the route requires: null and "" pass here and are refused by the route after its
#: permission check (so the order of errors stays as it was), hence not documented as accepted
RequiredDate = Annotated[
    datetime | None, BeforeValidator(_date), WithJsonSchema({"anyOf": _DATE_FORMS})
]
#: a date, or false to clear it (`expires`, `validAfter`, `deleteAfter`)
DateOrFalse = Annotated[
    datetime | Literal[False] | None,
    BeforeValidator(_date_or_false),
    WithJsonSchema(DATE_OR_FALSE_SCHEMA),
]


def _include_headers(value: object) -> object:
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, str):
        try:
            return parse_bool(value)
        except ValueError:
            return value  # a list of header names
    raise ValueError("must be a string or a boolean")


#: `includeHeaders`: a comma separated list of header names, or a boolean
IncludeHeaders = Annotated[
    Annotated[str, Field(max_length=1024)] | bool | None, BeforeValidator(_include_headers)
]
Order = Literal["asc", "desc"]


#: the largest uid a path or a set may name (no mailbox gets near it; MongoDB stops at 2**63)
MAX_UID = 2**53
_NUMBER = re.compile(r"\d+")


def _uid_set(value: object) -> object:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not UID_SET.match(value.strip()):
        raise ValueError("must be a UID set such as 1,2,3 or 3:15 or 3:*")
    # the length check first: int() of thousands of digits is refused (and slow)
    if any(len(n) > 16 or int(n) > MAX_UID for n in _NUMBER.findall(value)):
        raise ValueError("must be a UID set such as 1,2,3 or 3:15 or 3:*")
    return value.strip()


#: WildDuck's UID set: `1,2,3`, `3:15` or `3:*`
UidSetText = Annotated[str, BeforeValidator(_uid_set)]
#: a uid in a path
Uid = Annotated[int, Field(ge=1, le=MAX_UID)]


def _email(value: str) -> str:
    try:
        normalize_address(value)
    except InputValidationError:
        raise ValueError("must be a valid email") from None
    return value.strip()


def _blank(value: object) -> object:
    return None if value == "" else value


#: what str.splitlines() breaks at: the email package refuses all of them in a header value
_LINE_BREAKS = re.compile("[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")


def _no_line_breaks(value: str | None) -> str | None:
    if value is not None and _LINE_BREAKS.search(value):
        raise ValueError("must not contain line breaks")
    return value


class Strict(BaseModel):
    """A nested object: unknown keys refused, as Joi does."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


Name = Annotated[
    Annotated[str, Field(max_length=255), AfterValidator(_no_line_breaks)] | None,
    BeforeValidator(_blank),
]


#: a composed message's Subject: a line break would end the header and start another (injection)
Subject = Annotated[str, Field(max_length=2 * 1024), AfterValidator(_no_line_breaks)] | None


class AddressIn(Strict):
    name: Name = None
    address: Annotated[str, Field(max_length=255), AfterValidator(_email)]


class HeaderIn(Strict):
    key: Annotated[str, Field(min_length=1, max_length=255), AfterValidator(_no_line_breaks)]
    value: Annotated[str, Field(max_length=100 * 1024), AfterValidator(_no_line_breaks)] = ""


class AttachmentIn(Strict):
    filename: Name = None
    contentType: Name = None
    encoding: Annotated[str | None, BeforeValidator(_blank)] = "base64"
    contentTransferEncoding: Annotated[str | None, BeforeValidator(_blank)] = None
    content: str
    cid: Name = None
    contentDisposition: Literal["inline", "attachment"] | None = None


class ReferenceIn(Strict):
    mailbox: ObjectIdStr
    id: Uid
    action: Literal["reply", "replyAll", "forward"]
    attachments: Bool | list[Annotated[str, Field(pattern=r"(?i)^ATT\d+$")]] = None


class PreviousIn(Strict):
    mailbox: ObjectIdStr | None = None
    id: Uid


Metadata = dict[str, Any] | str | None
