"""Request parameters: WildDuck's merged bag (path > query > body), validated by pydantic models.

A route declares a model; `read_params` builds the bag from the path, the query string (with
`a.b=x` dots turned into nesting, as WildDuck's parser does) and the body, and validates it.
Unknown keys are refused unless the route allows them. Every failure becomes
`InputValidationError` with one message per field in `details`.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, TypeVar
from urllib.parse import parse_qsl

from aiohttp import web
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    WithJsonSchema,
)

from wildpy.errors import InputValidationError, InvalidContent
from wildpy.fields import parse_bool
from wildpy.json_depth import MAX_JSON_DEPTH, nesting_exceeds
from wildpy.services.paging import PageRequest

from .context import AUTH_KEY, AuthContext

M = TypeVar("M", bound=BaseModel)

_OBJECT_ID = re.compile(r"^[0-9a-f]{24}$")
TOO_DEEP = f'"body" must not be nested more than {MAX_JSON_DEPTH} levels deep'
# location parts that name a union member or a validator rather than a field
_TYPE_TAG = re.compile(
    r"^(str|int|float|bool|none|bytes|datetime|date|time|dict|list|[a-z-]+\[.*\]"
    r"|(function|lax|strict)-.*)$"
)


def _object_id(value: object) -> object:
    if isinstance(value, str):
        lowered = value.lower()
        if _OBJECT_ID.match(lowered):
            return lowered
    raise ValueError("must be a valid id (24 hex characters)")


def _bool(value: object) -> object:
    try:
        return parse_bool(value)
    except ValueError:
        raise ValueError("must be a boolean") from None


def _any_case(word: str) -> str:
    """A regex matching `word` in any case (JSON Schema patterns have no case-insensitive flag)."""
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else c for c in word)


#: what the documents promise for an id: the lenient validator lowers the case first
OBJECT_ID_SCHEMA: dict[str, Any] = {"type": "string", "pattern": "^[0-9a-fA-F]{24}$"}
#: booleanSchema as documented: null is refused (parse_bool), so it is not offered
BOOL_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"type": "boolean"},
        {"type": "integer", "enum": [0, 1]},
        {
            "type": "string",
            "pattern": "^(|"
            + "|".join(_any_case(w) for w in ("y", "true", "yes", "on", "1"))
            + "|"
            + "|".join(_any_case(w) for w in ("n", "false", "no", "off", "0"))
            + ")$",
        },
    ]
}

ObjectIdStr = Annotated[str, BeforeValidator(_object_id), WithJsonSchema(OBJECT_ID_SCHEMA)]
#: WildDuck's booleanSchema: true/false plus Y/yes/on/1 and N/no/off/0; '' means "not given"
Bool = Annotated[bool | None, BeforeValidator(_bool), WithJsonSchema(BOOL_SCHEMA)]


class Params(BaseModel):
    """Base of every route's parameters: unknown keys refused, `sess` and `ip` always accepted."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, str_strip_whitespace=False)

    sess: str | None = Field(None, max_length=255)
    ip: str | None = Field(None, max_length=45)


class LooseParams(Params):
    """For the routes where WildDuck allows unknown keys (listings and searches)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class PageParams(LooseParams):
    limit: int = Field(20, ge=1, le=250)
    next: str | None = Field(None, max_length=1024, pattern=r"^[A-Za-z0-9_-]+$")
    previous: str | None = Field(None, max_length=1024, pattern=r"^[A-Za-z0-9_-]+$")
    page: int = Field(1, ge=1)

    @property
    def paging(self) -> PageRequest:
        return PageRequest(self.limit, self.next, self.previous, self.page)


async def read_body(request: web.Request) -> dict[str, Any]:
    """The request body as a dict (JSON or form); {} when there is none."""
    if not request.body_exists:
        return {}
    raw = await request.read()  # raises 413 past client_max_size
    if not raw.strip():
        return {}
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidContent("Request body is not valid UTF-8") from None
    if request.content_type == "application/x-www-form-urlencoded":
        return _nest(parse_qsl(text, keep_blank_values=True))
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise InvalidContent(f"Request body is not valid JSON: {exc}") from None
    except RecursionError:  # the decoder gives up around 1,000 levels
        raise InputValidationError(TOO_DEEP, details={"body": TOO_DEEP}) from None
    if not isinstance(document, dict):
        raise InvalidContent("Request body must be a JSON object")
    if nesting_exceeds(document):
        raise InputValidationError(TOO_DEEP, details={"body": TOO_DEEP})
    return document


def _nest(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Query pairs into a dict: `a.b=x` nests, repeated keys become lists."""
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key == "accessToken":
            continue  # credentials are not parameters
        parts = key.split(".") if "." in key and len(key) <= 256 else [key]
        node = result
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        last = parts[-1]
        if last in node:
            existing = node[last]
            node[last] = [*existing, value] if isinstance(existing, list) else [existing, value]
        else:
            node[last] = value
    return result


async def read_params(request: web.Request, model: type[M], *, body: bool = True) -> M:
    """Validate the merged bag (path > query > body) against `model`."""
    bag: dict[str, Any] = await read_body(request) if body else {}
    bag.update(_nest(list(request.query.items())))
    path = dict(request.match_info)
    context = request.get(AUTH_KEY)
    if path.get("user") == "me" and isinstance(context, AuthContext) and context.is_user_token:
        path["user"] = context.user  # /users/me with a user token: the token's own user
    bag.update(path)
    return validate(model, bag)


def validate(model: type[M], bag: dict[str, Any]) -> M:
    try:
        return model.model_validate(bag)
    except ValidationError as exc:
        raise validation_error(exc) from None


def validation_error(exc: ValidationError) -> InputValidationError:
    """One message per field (the first pydantic gave: a union reports once per member)."""
    details: dict[str, str] = {}
    for item in exc.errors(include_url=False):
        # pydantic adds union members and validators to locations; keep the field path only
        loc = [str(part) for part in item["loc"] if not _TYPE_TAG.match(str(part))]
        key = ",".join(loc) or "body"
        label = ".".join(loc) or "body"
        message = _message(item["type"], item["msg"], item.get("ctx") or {})
        details.setdefault(key, f'"{label}" {message}')
    return InputValidationError(". ".join(details.values()), details=details)


def _message(kind: str, text: str, ctx: dict[str, Any]) -> str:
    if kind == "extra_forbidden":
        return "is not allowed"
    if kind == "missing":
        return "is required"
    if kind == "value_error":
        return str(ctx.get("error", text)).removeprefix("Value error, ")
    return text[:1].lower() + text[1:]
