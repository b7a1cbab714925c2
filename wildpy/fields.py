"""Pure helpers for request fields that many resources share: tags, metaData and booleans.

They follow WildDuck's shared Joi schemas (``lib/schemas.js``) so that clients written for
WildDuck get the same normalisation: tags trimmed, deduplicated and sorted case-insensitively
with a lowercased ``tagsview`` for filtering; ``metaData``/``internalData`` accepted as an object
or as a JSON string of one and stored as a JSON string; WildDuck's lenient booleans.
Nothing here does I/O. Bad input raises ``InputValidationError`` with ``details={field: message}``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any, NoReturn

from wildpy.errors import InputValidationError
from wildpy.json_depth import MAX_JSON_DEPTH, nesting_exceeds

__all__ = [
    "MAX_METADATA_SIZE",
    "MAX_TAG_FILTER_LENGTH",
    "MAX_TAG_LENGTH",
    "decode_metadata",
    "encode_metadata",
    "normalize_tags",
    "parse_bool",
    "parse_tag_filter",
]

MAX_TAG_LENGTH = 128
#: the ``tags`` / ``requiredTags`` query parameters (CSV) are at most this many characters
MAX_TAG_FILTER_LENGTH = 1024
#: metaData and internalData, once serialised as stored (UTF-8 octets of the compact JSON)
MAX_METADATA_SIZE = 1024 * 1024

_TRUTHY = frozenset({"y", "true", "yes", "on", "1"})
_FALSY = frozenset({"n", "false", "no", "off", "0"})


def _error(field: str, message: str) -> InputValidationError:
    return InputValidationError(message, details={field: message})


# ---------------------------------------------------------------------------------------------
# tags


def normalize_tags(tags: list[str] | str, *, field: str = "tags") -> tuple[list[str], list[str]]:
    """Normalise a tag list, given as a list or as a comma-separated string.

    Each tag is trimmed and empty ones are dropped; duplicates are removed case-insensitively,
    the first spelling winning; the result is sorted case-insensitively, by code point of the
    lowercased tag (WildDuck uses the locale's collation, which can order accented letters and
    punctuation differently). Returns ``(tags,
    tagsview)``: the tags in their original case, and the same list lowercased, which is what
    filters match against. A tag over 128 characters (after trimming) is an error.
    """
    if isinstance(tags, str):
        items: list[object] = list(tags.split(","))
    elif isinstance(tags, list | tuple):
        items = list(tags)
    else:
        raise _error(field, f'"{field}" must be an array')

    seen: dict[str, str] = {}
    for index, item in enumerate(items):
        if not isinstance(item, str):
            raise _error(field, f'"{field}[{index}]" must be a string')
        tag = item.strip()
        if not tag:
            continue
        if len(tag) > MAX_TAG_LENGTH:
            raise _error(
                field,
                f'"{field}[{index}]" length must be less than or equal to '
                f"{MAX_TAG_LENGTH} characters long",
            )
        seen.setdefault(tag.lower(), tag)

    ordered = sorted(seen.items())  # by the lowercased tag: keys of ``seen`` are unique
    return [tag for _, tag in ordered], [view for view, _ in ordered]


def parse_tag_filter(csv: str | list[str], *, field: str = "tags") -> list[str]:
    """Parse a ``tags`` / ``requiredTags`` query parameter into lowercased tags to match against
    ``tagsview``: trimmed, empties dropped, duplicates removed (first occurrence order kept).

    ``csv`` is a comma-separated string of at most 1024 characters; a list (a parameter given
    more than once) is joined with commas first.
    """
    if isinstance(csv, list):
        if not all(isinstance(item, str) for item in csv):
            raise _error(field, f'"{field}" must be a string')
        csv = ",".join(csv)
    if not isinstance(csv, str):
        raise _error(field, f'"{field}" must be a string')
    if len(csv) > MAX_TAG_FILTER_LENGTH:
        raise _error(
            field,
            f'"{field}" length must be less than or equal to '
            f"{MAX_TAG_FILTER_LENGTH} characters long",
        )
    tags = (part.strip().lower() for part in csv.split(","))
    return list(dict.fromkeys(tag for tag in tags if tag))


# ---------------------------------------------------------------------------------------------
# metaData / internalData


def _reject_constant(name: str) -> NoReturn:
    # JSON.parse refuses NaN and Infinity; Python's json would accept them by default
    raise ValueError(f"invalid JSON constant {name}")


def _finite_float(text: str) -> float:
    # 1e999 is valid JSON but no finite number: it could be parsed, never stored again
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"number out of range: {text[:32]}")
    return value


def _dump(value: object) -> str:
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # a lone surrogate (possible from a "\ud800" escape in JSON input) cannot be stored as
        # UTF-8; the escaped form is still valid JSON and decodes to the same value
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return text


def encode_metadata(value: object, field: str = "metaData") -> str:
    """Validate a ``metaData`` / ``internalData`` value and return the string to store.

    ``value`` is an object (a dict), or a string holding the JSON of an object; either way the
    stored form is the compact JSON of the object (non-ASCII kept as is), so equal data is stored
    equally. Its UTF-8 size must be at most 1 MiB. Errors (``field`` names the field, e.g.
    ``internalData``):

    * an object that cannot be serialised (a set, NaN, a circular reference, ...) ->
      ``<field> value must be serializable to JSON``;
    * a string that is not JSON, JSON of something other than an object, or any other type ->
      ``<field> value must be valid JSON object string``;
    * nested more than 100 levels -> ``"<field>" must not be nested more than 100 levels deep``;
    * too large -> ``"<field>" length must be less than or equal to 1048576 characters long``.
    """
    parsed: object
    if isinstance(value, Mapping):
        parsed = dict(value)
        try:
            stored = _dump(parsed)
        except (TypeError, ValueError, RecursionError) as exc:
            raise _error(field, f"{field} value must be serializable to JSON") from exc
    elif isinstance(value, str):
        try:
            parsed = json.loads(
                value.strip(), parse_constant=_reject_constant, parse_float=_finite_float
            )
        except (ValueError, RecursionError) as exc:
            raise _error(field, f"{field} value must be valid JSON object string") from exc
        if not isinstance(parsed, dict):
            raise _error(field, f"{field} value must be valid JSON object string")
        stored = _dump(parsed)
    else:
        # WildDuck's Joi.object() check: arrays, numbers, null and the like are not objects
        raise _error(field, f"{field} value must be valid JSON object string")

    if nesting_exceeds(parsed):
        # a string can hold what a body may not: ~1,000 levels decode, then break a listing
        raise _error(field, f'"{field}" must not be nested more than {MAX_JSON_DEPTH} levels deep')
    if len(stored.encode("utf-8")) > MAX_METADATA_SIZE:
        raise _error(
            field,
            f'"{field}" length must be less than or equal to {MAX_METADATA_SIZE} characters long',
        )
    return stored


def decode_metadata(stored: str | bytes | Mapping[str, Any] | None) -> dict[str, Any]:
    """Parse a stored ``metaData`` / ``internalData`` value back into a dict.

    Missing, empty, corrupt or non-object values give ``{}``: a response must not fail because
    of one bad stored field. A dict stored directly (older or imported data) is returned as a copy.
    """
    if stored is None:
        return {}
    if isinstance(stored, Mapping):
        return dict(stored)
    try:
        parsed = json.loads(stored)
    except (ValueError, TypeError, RecursionError):
        return {}
    if nesting_exceeds(parsed):  # stored before depth was limited: it would break the answer
        return {}
    return parsed if isinstance(parsed, dict) else {}


# ---------------------------------------------------------------------------------------------
# booleans


def parse_bool(value: object, *, field: str = "value") -> bool | None:
    """WildDuck's ``booleanSchema``: a lenient boolean for query strings and bodies.

    ``True``/``False``; the numbers ``1``/``0``; the strings ``Y true yes on 1`` and
    ``N false no off 0`` in any case. ``''`` means "not given" and returns None. Anything else,
    ``None`` included, raises ``ValueError('"<field>" must be a boolean')``: the caller decides
    whether a missing value is allowed before calling.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        if value == 1:
            return True
        if value == 0:
            return False
    elif isinstance(value, str):
        if value == "":
            return None
        lowered = value.lower()
        if lowered in _TRUTHY:
            return True
        if lowered in _FALSY:
            return False
    raise ValueError(f'"{field}" must be a boolean')
