"""Pure helpers for mailbox paths: validation, normalisation, names, listing order.

Paths use `/` as the hierarchy separator (`Parent/Child`). The rules are WildDuck's, with its
messages word for word because clients show them: no empty level (`//`) and no trailing `/`, at
most 128 levels of at most 512 characters each. A leading `/` is dropped and a first level spelled
`inbox` in any case is stored as `INBOX` (IMAP: INBOX is case-insensitive, RFC 9051 5.1).
Beyond WildDuck, control characters (C0, DEL, C1) are refused: IMAP prints these names, and
`INBOX\0x` would read as INBOX to anything that stops at a NUL.
"""

from __future__ import annotations

import re
import unicodedata

from wildpy.errors import InputValidationError

INBOX = "INBOX"
SEPARATOR = "/"
MAX_LEVELS = 128
MAX_LEVEL_LENGTH = 512
#: the longest path the rules allow; longer input is refused before any work is done on it
MAX_PATH_LENGTH = MAX_LEVELS * MAX_LEVEL_LENGTH + MAX_LEVELS - 1

_INVERTED = re.compile(r"/{2,}|/$")
_INVERTED_SOURCE = r"/\/{2,}|\/$/"  # how Joi prints the pattern in its message
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
CONTROL_CHARACTERS = '"path" must not contain control characters'
TOO_DEEP = "The mailbox path cannot be more than 128 levels deep"
TOO_LONG = "Any part of the mailbox path cannot be longer than 512 chars long"


def _invalid(message: str) -> InputValidationError:
    return InputValidationError(message, details={"path": message})


def normalize_path(path: str) -> str:
    """The stored form of `path`, or InputValidationError with WildDuck's message."""
    if not path:
        raise _invalid('"path" is not allowed to be empty')
    if _CONTROL.search(path):
        raise _invalid(CONTROL_CHARACTERS)
    if _INVERTED.search(path):
        raise _invalid(
            f'"path" with value "{path}" matches the inverted pattern: {_INVERTED_SOURCE}'
        )
    path = path.removeprefix(SEPARATOR)
    if not path:
        raise _invalid('"path" is not allowed to be empty')
    levels = path.split(SEPARATOR)
    check_levels(levels)
    if levels[0].upper() == INBOX:
        levels[0] = INBOX
    return SEPARATOR.join(levels)


def check_levels(levels: list[str]) -> None:
    if len(levels) > MAX_LEVELS:
        raise _invalid(TOO_DEEP)
    if any(len(level) > MAX_LEVEL_LENGTH for level in levels):
        raise _invalid(TOO_LONG)


def check_path(path: str) -> None:
    """Check a computed path (a renamed child) against the depth and length rules."""
    check_levels(path.split(SEPARATOR))


def name_of(path: str) -> str:
    """The last level of a path: what a client shows as the folder's name."""
    return path.rsplit(SEPARATOR, 1)[-1]


def is_within(path: str, parent: str) -> bool:
    """Whether `path` is below `parent` in the hierarchy (not `parent` itself)."""
    return path.startswith(parent + SEPARATOR)


def _collation(path: str) -> str:
    # accents ignored at the first level of comparison, as ICU's root collation does
    decomposed = unicodedata.normalize("NFKD", path.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def listing_key(path: str, subscribed: bool) -> tuple[int, int, str, str, str]:
    """Sort key of the mailbox listing, as WildDuck orders it (clients depend on the order):
    INBOX, then INBOX/*, then subscribed before unsubscribed, then by path.

    WildDuck compares paths with `localeCompare`; this approximates its root collation: accents
    and case are ignored first, then accents, then lower case sorts before upper case.
    """
    if path == INBOX:
        group = 0
    elif is_within(path, INBOX):
        group = 1
    else:
        group = 2
    return (group, 0 if subscribed else 1, _collation(path), path.casefold(), path.swapcase())
