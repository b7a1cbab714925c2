"""The one cursor codec of every paged list: opaque to clients, base64url of a JSON array.

Two layouts, both read by `decode_cursor` (a client may hold either, from any list):

- `[value, id]`, or `[value, id, 1]` for an inclusive bound: lists paged by value
  (`pagination.paginate`, the uid listing of a mailbox);
- `[value, id, offset | null, 0 | 1]`: lists paged by position with the value as fallback
  (`keyset.keyset_page`); `offset` is the row's index in the list when known.

Dates are written as `{"$date": ms}`. Either layout satisfies WildDuck's validator
(`[A-Za-z0-9_-]`, at most 1024 characters). A cursor that does not decode is a 400 naming the
parameter (`next` or `previous`), never a 500.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from wildpy.errors import InputValidationError


@dataclass(frozen=True)
class Cursor:
    """Where a page starts: after (or, inclusive, at) the row with this sort value and id, and
    that row's index in the list when the list knows it."""

    value: Any
    ident: str
    offset: int | None = None
    inclusive: bool = False


def _pack(parts: list[Any]) -> str:
    if isinstance(parts[0], datetime):
        parts[0] = {"$date": int(parts[0].timestamp() * 1000)}
    raw = json.dumps(parts, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def encode_cursor(value: Any, ident: str, inclusive: bool = False) -> str:
    """The value layout: `[value, id]` (`[value, id, 1]` inclusive)."""
    return _pack([value, ident, 1] if inclusive else [value, ident])


def encode_position(cursor: Cursor) -> str:
    """The position layout: `[value, id, offset | null, inclusive]`."""
    return _pack([cursor.value, cursor.ident, cursor.offset, int(cursor.inclusive)])


def decode_cursor(text: str, name: str) -> Cursor:
    """Either layout; InputValidationError naming `name` for anything else."""
    message = f'"{name}" contains an invalid value'
    invalid = InputValidationError(message, details={name: message})
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        parts = json.loads(raw)
    except (binascii.Error, ValueError, TypeError):
        raise invalid from None
    if not isinstance(parts, list) or len(parts) not in (2, 3, 4):
        raise invalid
    value, ident = parts[0], parts[1]
    offset: Any = None
    if len(parts) == 3:
        if parts[2] != 1:
            raise invalid
        inclusive: Any = 1
    elif len(parts) == 4:
        offset, inclusive = parts[2], parts[3]
    else:
        inclusive = 0
    if not isinstance(ident, str) or inclusive not in (0, 1):
        raise invalid
    if offset is not None and (not isinstance(offset, int) or isinstance(offset, bool)):
        raise invalid
    if isinstance(value, dict) and set(value) == {"$date"} and isinstance(value["$date"], int):
        value = datetime.fromtimestamp(value["$date"] / 1000, tz=UTC)
    elif isinstance(value, (dict, list)):
        raise invalid
    return Cursor(value, ident, offset if offset is None or offset >= 0 else None, bool(inclusive))
