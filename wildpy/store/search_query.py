"""The search string syntax (`q`), after WildDuck's `lib/search-query.js`.

    from:alice "exact phrase" -in:junk (report OR invoice) has:attachment is:unseen

Words and `"phrases"` are full text; `key:value` for from, to (To, Cc or Bcc), subject, in (a
mailbox: id, path, `Inbox`, or junk/spam/sent/trash/deleted/drafts), thread, has:attachment and
is:unseen/seen/flagged/unflagged/draft; `-` negates a term or a group; `OR` between terms,
`AND` (or nothing) binds tighter; parentheses group. A keyword it does not know is text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from wildpy.storage.database import Document

from .search_terms import (
    MAX_TERMS,
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


_KEYWORDS: frozenset[str] = frozenset({"from", "to", "subject", "in", "thread", "has", "is"})


@dataclass(frozen=True)
class Term:
    """`word`, `"a phrase"` or `key:value`; `negated` for a leading `-`."""

    key: str | None
    value: str
    negated: bool = False


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
    """Parse a search string: words and `"phrases"`, `key:value` (from, to, subject, in,
    thread, has:attachment, is:unseen/seen/flagged/unflagged/draft), `-` to negate, `OR`,
    `AND` (implied between terms) and parentheses. InputValidationError when malformed."""
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
            return Term(key.lower(), value, negated)
        if key:  # not a keyword: the whole thing is text
            value = f"{key}:{value}"
        if quoted is None and not negated and value in ("OR", "AND"):
            return Term("$op", value)
        return Term(None, value, negated)

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


def compile_query(node: Node, mailboxes: dict[str, str]) -> Document:
    """The MongoDB condition of a parsed query; `mailboxes` maps `in:` values to ids."""
    if isinstance(node, Group):
        parts = [compile_query(item, mailboxes) for item in node.items]
        condition = combine(parts) if node.op == "and" else {"$or": parts}
    else:
        condition = _term_condition(node, mailboxes)
    # `$nor` rather than `$not`: the embedded server has no `$not` (storage.md)
    return {"$nor": [condition]} if node.negated else condition


def _term_condition(term: Term, mailboxes: dict[str, str]) -> Document:
    value = term.value.strip()
    if term.key is None:
        return text_condition(value)
    if term.key == "from":
        return header_condition("from", value)
    if term.key == "to":
        return recipient_condition(value, ("to", "cc", "bcc"))
    if term.key == "subject":
        return {"subject": contains(value)}
    if term.key == "in":
        return {"mailbox": mailboxes.get(value, NO_MAILBOX)}
    if term.key == "thread":
        return {"thread": value}
    if term.key == "has":
        if value.lower() in ("attachment", "attachments"):
            return {"ha": True}
        return text_condition(f"has:{value}")
    flag = _IS_FLAGS.get(value.lower())
    return flag if flag is not None else text_condition(f"is:{value}")


_IS_FLAGS: dict[str, Document] = {
    "unseen": {"unseen": True},
    "unread": {"unseen": True},
    "seen": {"unseen": False},
    "read": {"unseen": False},
    "flagged": {"flagged": True},
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
