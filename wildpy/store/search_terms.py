"""The building blocks of message search filters: UID sets, text matches, combining.

Each helper gives a MongoDB condition that both servers answer alike (storage.md), in the
form the embedded server can answer in SQL where there is one (see `contains`, `combine`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from wildpy import errors
from wildpy.storage.database import Document

#: WildDuck's UID set syntax: `1,2,3`, `3:15`, `3:*`
UID_SET = re.compile(r"^\d+(,\d+)*$|^\d+:(\d+|\*)$")
#: a search may not hold more words or terms than this (bounded query size)
MAX_TERMS = 32


@dataclass(frozen=True)
class UidSet:
    """`1,2,3` (listed), `3:15` or `3:*` (a range; `last` None means no upper end)."""

    listed: tuple[int, ...] = ()
    first: int = 1
    last: int | None = None

    @classmethod
    def parse(cls, text: str) -> UidSet:
        """Parse WildDuck's UID set; ValueError when it is not one."""
        text = text.strip()
        if not UID_SET.match(text):
            raise ValueError("must be a UID set such as 1,2,3 or 3:15 or 3:*")
        if ":" in text:
            low, high = text.split(":")
            if high == "*":
                return cls(first=int(low))
            a, b = sorted((int(low), int(high)))
            return cls(first=a, last=b)
        return cls(listed=tuple(sorted({int(part) for part in text.split(",")})))

    @property
    def single(self) -> int | None:
        """The one uid of `5` or `5:5`, else None."""
        if len(self.listed) == 1:
            return self.listed[0]
        if not self.listed and self.last is not None and self.first == self.last:
            return self.first
        return None

    def condition(self) -> Document:
        """The MongoDB condition on `uid`."""
        if self.listed:
            return (
                {"uid": self.listed[0]}
                if len(self.listed) == 1
                else {"uid": {"$in": list(self.listed)}}
            )
        bounds: Document = {"$gte": self.first}
        if self.last is not None:
            bounds["$lte"] = self.last
        return {"uid": bounds}


def contains(text: str) -> Document:
    # `(?i)` in the pattern, not `$options: "i"`: both servers read it the same, and the
    # embedded one matches it in SQL, where `$options` sends it to a scan of the collection
    return {"$regex": "(?i)" + re.escape(text)}


def combine(conditions: Sequence[Document]) -> Document:
    """All of `conditions` as one filter: side by side where their keys do not collide, in
    `$and` for the rest. The embedded server answers a flat filter in SQL, with the `{user}`
    index, but evaluates any top-level `$and`, `$or` or `$nor` in Python over the whole
    collection (about 12 us per message there); MongoDB does not mind either way."""
    merged: Document = {}
    rest: list[Document] = []
    for condition in conditions:
        if any(key in merged for key in condition):
            rest.append(condition)
        else:
            merged.update(condition)
    if rest:
        merged["$and"] = [*merged.get("$and", []), *rest]
    return merged


def text_condition(text: str) -> Document:
    """A word or phrase in the subject or the stored plain text, case-insensitively; white
    space in a phrase matches any white space (a line break of the text too)."""
    pattern = {"$regex": "(?i)" + r"\s+".join(re.escape(word) for word in text.split())}
    return {"$or": [{"subject": pattern}, {"text": pattern}]}


def any_word(words: Sequence[str]) -> Document:
    """Any of `words` (`text_condition` each): how WildDuck's `$text` search treats the plain
    words of a search."""
    conditions = [text_condition(word) for word in words]
    return conditions[0] if len(conditions) == 1 else {"$or": conditions}


def full_text(query: str) -> list[Document]:
    """The conditions of a `query` (all must hold), read as MongoDB's `$text` reads a search:
    any of its plain words, every `"quoted phrase"`, none of its `-words`."""
    words: list[str] = []
    out: list[Document] = []
    for term, quoted in _words(query):
        if quoted and any(char.isspace() for char in term):
            out.append(text_condition(term))
        elif not quoted and term.startswith("-") and len(term) > 1:
            out.append({"$nor": [text_condition(term[1:])]})
        else:
            words.append(term)
    return ([any_word(words)] if words else []) + out


def _words(query: str) -> list[tuple[str, bool]]:
    """The words and quoted phrases (trimmed) of `query`, each with whether it was quoted."""
    terms = [
        (m.group(1).strip(), True) if m.group(1) is not None else (m.group(2), False)
        for m in _WORD.finditer(query)
    ]
    terms = [(term, quoted) for term, quoted in terms if term]
    if len(terms) > MAX_TERMS:
        raise invalid("query", f"Search may have at most {MAX_TERMS} terms")
    return terms


_WORD = re.compile(r'"([^"]*)"|(\S+)')


def header_condition(key: str, text: str) -> Document:
    """An indexed header (`headers[{key, value}]`, keys lowercase) containing `text`."""
    return {"headers": {"$elemMatch": {"key": key, "value": contains(text)}}}


def recipient_condition(text: str, keys: Sequence[str] = ("to", "cc")) -> Document:
    return {"$or": [header_condition(key, text) for key in keys]}


def invalid(name: str, message: str) -> errors.InputValidationError:
    return errors.InputValidationError(message, details={name: message})
