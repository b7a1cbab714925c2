"""The search string syntax (`q`), after WildDuck's `lib/search-query.js`.

    from:alice "exact phrase" -in:junk (report OR invoice) has:attachment is:unseen

Keys, case-insensitive, with the value trimmed (`key:"quoted value"` too): from, to (To, Cc or
Bcc), cc, bcc, subject; in (a mailbox: id, path, `Inbox`, or junk/spam/sent/trash/deleted/
drafts), mailbox (an id), thread (an id), id (a UID set: `1,2,3`, `3:15`, `3:*`);
datestart/after/newer and dateend/before/older (a date), minsize and maxsize (bytes);
attachments, flagged, seen, unseen, searchable (a truthy value: true/1/yes/y/on; anything
else leaves the key out, as WildDuck does); has:attachment(s); is:unseen/unread, seen/read,
flagged/starred, unflagged, draft. A key whose value does not read (a bad date, id or number)
adds no condition. A key it does not know is text.

Plain words of one group match when any of them does (WildDuck's `$text` search ORs them);
`-word` excludes, `"a phrase"` must appear as such. `-` negates a term or a group; `OR` between
terms, `AND` (or nothing) binds tighter; parentheses group.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from wildpy.storage.database import Document

from .search_terms import (
    MAX_TERMS,
    UidSet,
    any_word,
    combine,
    contains,
    header_condition,
    invalid,
    recipient_condition,
    text_condition,
)

#: how deep parentheses may nest (bounded query size)
MAX_DEPTH = 8
#: matches nothing: mailbox ids are 24 hex digits
NO_MAILBOX = "0" * 24
_ID = re.compile(r"^[0-9a-f]{24}$")


_DATE_START = frozenset({"datestart", "after", "newer"})
_DATE_END = frozenset({"dateend", "before", "older"})
#: keys that take a truthy value (`attachments:yes`), and their condition
_SWITCHES: dict[str, Document] = {
    "attachments": {"ha": True},
    "flagged": {"flagged": True},
    "seen": {"unseen": False},
    "unseen": {"unseen": True},
}
_KEYWORDS: frozenset[str] = frozenset(
    {"from", "to", "cc", "bcc", "subject", "in", "mailbox", "thread", "id", "has", "is"}
    | {"minsize", "maxsize", "searchable"}
    | _DATE_START
    | _DATE_END
    | set(_SWITCHES)
)
#: WildDuck's getBooleanValue: these are true, anything else false
_TRUTHY = frozenset({"true", "1", "yes", "y", "on"})


@dataclass(frozen=True)
class Term:
    """`word`, `"a phrase"` or `key:value`; `negated` for a leading `-`."""

    key: str | None
    value: str
    negated: bool = False
    #: a quoted value with white space in it: matched as a phrase, never split into words
    phrase: bool = False


@dataclass(frozen=True)
class Group:
    op: Literal["and", "or"]
    items: tuple[Node, ...]
    negated: bool = False


Node = Term | Group

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<open>-?\()
      | (?P<close>\))
      | (?P<neg>-)?(?:(?P<key>[A-Za-z]+):)?(?:"(?P<quoted>[^"]*)"|(?P<bare>[^\s()"]+))
    )""",
    re.VERBOSE,
)


def parse_query(text: str) -> Node:
    """Parse a search string (the grammar of this module's docstring). InputValidationError
    when malformed."""
    parser = _Parser(text)
    node = parser.expression(0)
    if parser.peek() is not None:
        raise invalid("q", "Unbalanced parentheses in search query")
    if parser.terms == 0:
        raise invalid("q", "Search query is empty")
    return node


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens: list[tuple[str, Term | bool]] = []
        self.pos = 0
        self.terms = 0
        at = 0
        while at < len(text):
            if not text[at:].strip():
                break
            match = _TOKEN.match(text, at)
            if match is None or match.end() == at:
                raise invalid("q", "Invalid search query")
            at = match.end()
            if match.group("open"):
                self.tokens.append(("open", match.group("open").startswith("-")))
            elif match.group("close"):
                self.tokens.append(("close", False))
            else:
                self.tokens.append(("term", self._term(match)))

    @staticmethod
    def _term(match: re.Match[str]) -> Term:
        key, quoted, bare = match.group("key"), match.group("quoted"), match.group("bare")
        negated = bool(match.group("neg"))
        value = quoted if quoted is not None else bare
        if key and key.lower() in _KEYWORDS:
            return Term(key.lower(), value.strip(), negated)
        if key:  # not a keyword: the whole thing is text
            value = f"{key}:{value}"
        if quoted is None and not negated and value in ("OR", "AND"):
            return Term("$op", value)
        phrase = quoted is not None and any(char.isspace() for char in quoted.strip())
        return Term(None, value, negated, phrase)

    def peek(self) -> tuple[str, Term | bool] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def expression(self, depth: int) -> Node:
        if depth > MAX_DEPTH:
            raise invalid("q", "Search query is nested too deeply")
        alternatives = [self.conjunction(depth)]
        while self._is_op("OR"):
            self.pos += 1
            alternatives.append(self.conjunction(depth))
        return alternatives[0] if len(alternatives) == 1 else Group("or", tuple(alternatives))

    def conjunction(self, depth: int) -> Node:
        items: list[Node] = []
        while True:
            token = self.peek()
            if token is None or token[0] == "close" or self._is_op("OR"):
                break
            if self._is_op("AND"):
                self.pos += 1
                continue
            items.append(self.unary(depth))
        if not items:
            raise invalid("q", "Invalid search query")
        return items[0] if len(items) == 1 else Group("and", tuple(items))

    def unary(self, depth: int) -> Node:
        kind, value = self.tokens[self.pos]
        self.pos += 1
        if kind == "open":
            inner = self.expression(depth + 1)
            closing = self.peek()
            if closing is None or closing[0] != "close":
                raise invalid("q", "Unbalanced parentheses in search query")
            self.pos += 1
            if value is True:
                return _negate(inner)
            return inner
        if kind == "close" or not isinstance(value, Term):
            raise invalid("q", "Unbalanced parentheses in search query")
        self.terms += 1
        if self.terms > MAX_TERMS:
            raise invalid("q", f"Search query may have at most {MAX_TERMS} terms")
        return value

    def _is_op(self, word: str) -> bool:
        token = self.peek()
        return (
            token is not None
            and isinstance(token[1], Term)
            and token[1].key == "$op"
            and token[1].value == word
        )


def _negate(node: Node) -> Node:
    if isinstance(node, Term):
        return Term(node.key, node.value, not node.negated)
    return Group(node.op, node.items, not node.negated)


def query_mailbox_names(node: Node) -> set[str]:
    """The `in:` values of a parsed query (resolved to mailboxes before compiling)."""
    if isinstance(node, Term):
        return {node.value} if node.key == "in" else set()
    return set().union(*(query_mailbox_names(item) for item in node.items))


def query_uses_searchable(node: Node) -> bool:
    """Whether the query has a `searchable:` term (it needs the user's Junk and Trash)."""
    if isinstance(node, Term):
        return node.key == "searchable"
    return any(query_uses_searchable(item) for item in node.items)


@dataclass(frozen=True)
class QueryMailboxes:
    """What compiling needs to know of the user's mailboxes: the id of each `in:` value, and
    the ids of Junk and Trash (which `searchable:` leaves out)."""

    by_name: dict[str, str]
    unsearchable: tuple[str, ...] = ()


def compile_query(node: Node, mailboxes: QueryMailboxes) -> Document:
    """The MongoDB condition of a parsed query ({} for one that adds no condition)."""
    return _compile(node, mailboxes) or {}


def _compile(node: Node, mailboxes: QueryMailboxes) -> Document | None:
    """None: the node adds no condition (a key whose value does not read), so it neither
    narrows a group nor, negated, empties it."""
    if isinstance(node, Group):
        items = list(node.items)
        parts: list[Document] = []
        if node.op == "and":
            # WildDuck merges the plain words of a group into one `$text` search, which
            # matches a message holding any of them
            words = [i for i in items if isinstance(i, Term) and _is_word(i)]
            if len(words) > 1:
                items = [i for i in items if not (isinstance(i, Term) and _is_word(i))]
                parts.append(any_word([word.value for word in words]))
        parts += [c for c in (_compile(item, mailboxes) for item in items) if c is not None]
        if not parts:
            return None
        condition = combine(parts) if node.op == "and" else {"$or": parts}
    else:
        term = _term_condition(node, mailboxes)
        if term is None:
            return None
        condition = term
    # `$nor` rather than `$not`: the embedded server has no `$not` (storage.md)
    return {"$nor": [condition]} if node.negated else condition


def _is_word(term: Term) -> bool:
    return term.key is None and not term.negated and not term.phrase


def _term_condition(term: Term, mailboxes: QueryMailboxes) -> Document | None:
    value, key = term.value.strip(), term.key
    if key is None:
        return text_condition(value)
    if key in ("from", "cc", "bcc"):
        return header_condition(key, value)
    if key == "to":
        return recipient_condition(value, ("to", "cc", "bcc"))
    if key == "subject":
        return {"subject": contains(value)}
    if key == "in":
        return {"mailbox": mailboxes.by_name.get(value, NO_MAILBOX)}
    if key in ("mailbox", "thread"):
        return {key: value.lower()} if _ID.match(value.lower()) else None
    if key == "id":
        try:
            return UidSet.parse(value).condition()
        except ValueError:
            return None
    if key in _DATE_START or key in _DATE_END:
        when = _date(value)
        if when is None:
            return None
        return {"idate": {"$gte" if key in _DATE_START else "$lte": when}}
    if key in ("minsize", "maxsize"):
        size = _number(value)
        if size is None:
            return None
        return {"size": {"$gte" if key == "minsize" else "$lte": size}}
    if key in _SWITCHES or key == "searchable":
        if value.lower() not in _TRUTHY:
            return None
        if key == "searchable":
            return {"mailbox": {"$nin": list(mailboxes.unsearchable)}}
        return dict(_SWITCHES[key])
    if key == "has":
        if value.lower() in ("attachment", "attachments"):
            return {"ha": True}
        return text_condition(f"has:{value}")
    flag = _IS_FLAGS.get(value.lower())
    return flag if flag is not None else text_condition(f"is:{value}")


def _date(text: str) -> datetime | None:
    """An ISO 8601 date or date and time (UTC unless it says otherwise), else None."""
    try:
        when = datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _number(text: str) -> int | float | None:
    try:
        number = float(text)
    except ValueError:
        return None
    if number != number or number in (float("inf"), float("-inf")):
        return None
    return int(number) if number.is_integer() else number


_IS_FLAGS: dict[str, Document] = {
    "unseen": {"unseen": True},
    "unread": {"unseen": True},
    "seen": {"unseen": False},
    "read": {"unseen": False},
    "flagged": {"flagged": True},
    "starred": {"flagged": True},
    "unflagged": {"flagged": False},
    "draft": {"draft": True},
}


def resolve_mailbox_name(name: str, rows: Sequence[Document]) -> str | None:
    """WildDuck's `in:` resolution: an id, `Inbox`, a path, or a special-use nickname."""
    lowered = name.strip().lower()
    by_path = {str(row["path"]): str(row["_id"]) for row in rows}
    if _ID.match(lowered) and lowered in by_path.values():
        return lowered
    if lowered == "inbox":
        return by_path.get("INBOX")
    if name.strip() in by_path:
        return by_path[name.strip()]
    uses = {str(row.get("specialUse", "")): str(row["_id"]) for row in rows}
    for pattern, use in _NICKNAMES:
        if pattern.match(lowered):
            return uses.get(use)
    return None


_NICKNAMES = [
    (re.compile(r"^/?(spam|junk)"), "\\Junk"),
    (re.compile(r"^/?sent"), "\\Sent"),
    (re.compile(r"^/?(trash|deleted)"), "\\Trash"),
    (re.compile(r"^/?drafts"), "\\Drafts"),
]
