"""RFC 5322 address lists (mailboxes and groups), parsed leniently: bad input kept best-effort."""

from __future__ import annotations

from dataclasses import dataclass, field

from wildpy.mime.headers import decode_words

MAX_ADDRESSES = 1000


@dataclass(slots=True)
class Mailbox:
    """One mailbox. `name` is the display name as written (quotes and escapes removed,
    RFC 2047 words still encoded: IMAP ENVELOPE wants them so); `comment` is the first
    comment, used as the name when there is none ("a@b.c (John)")."""

    name: str = ""
    local: str = ""
    domain: str = ""
    route: str = ""
    comment: str = ""

    @property
    def address(self) -> str:
        if self.domain:
            return f"{self.local}@{self.domain}"
        return self.local

    def display_name(self) -> str:
        """The decoded display name (RFC 2047), falling back to the comment."""
        raw = self.name or self.comment
        return " ".join(decode_words(raw).split())

    def as_dict(self) -> dict[str, str]:
        return {"name": self.display_name(), "address": self.address}


@dataclass(slots=True)
class Group:
    """An RFC 5322 group ("undisclosed-recipients:;")."""

    name: str
    members: list[Mailbox] = field(default_factory=list)


AddressItem = Mailbox | Group

_SPECIALS = frozenset('()<>,;:"')
_WSP = frozenset(" \t\r\n")


def _tokenize(text: str) -> list[tuple[str, str]]:
    """Tokens: ("atom", s), ("quoted", s), ("comment", s), ("angle", s) or (",", "") etc."""
    tokens: list[tuple[str, str]] = []
    n = len(text)
    pos = 0
    while pos < n:
        ch = text[pos]
        if ch in _WSP:
            tokens.append(("ws", ""))
            while pos < n and text[pos] in _WSP:
                pos += 1
            continue
        if ch == '"':
            close = _closing_quote(text, pos + 1)
            if close < 0:
                pos += 1  # an unterminated quote is dropped, the rest parsed normally
                continue
            buf: list[str] = []
            pos += 1
            while pos < close:
                if text[pos] == "\\" and pos + 1 < close:
                    pos += 1
                buf.append(text[pos])
                pos += 1
            tokens.append(("quoted", "".join(buf)))
            pos = close + 1
            continue
        if ch == "(":
            depth = 0
            buf = []
            while pos < n:
                c = text[pos]
                if c == "\\" and pos + 1 < n:
                    buf.append(text[pos + 1])
                    pos += 2
                    continue
                if c == "(":
                    depth += 1
                    if depth > 1:
                        buf.append(c)
                elif c == ")":
                    depth -= 1
                    if depth == 0:
                        pos += 1
                        break
                    buf.append(c)
                else:
                    buf.append(c)
                pos += 1
            tokens.append(("comment", "".join(buf)))
            continue
        if ch == "<":
            close = text.find(">", pos + 1)
            if close < 0:
                # unterminated: take up to the next comma so later addresses survive
                comma = text.find(",", pos + 1)
                close = n if comma < 0 else comma
                tokens.append(("angle", text[pos + 1 : close]))
                pos = close
            else:
                tokens.append(("angle", text[pos + 1 : close]))
                pos = close + 1
            continue
        if ch in ",;:":
            tokens.append((ch, ""))
            pos += 1
            continue
        if ch in ">)":
            pos += 1  # stray closer
            continue
        start = pos
        while pos < n and text[pos] not in _SPECIALS and text[pos] not in _WSP:
            pos += 1
        if pos == start:  # cannot happen with the branches above; never loop forever
            pos += 1
            continue
        tokens.append(("atom", text[start:pos]))
    return tokens


def _closing_quote(text: str, pos: int) -> int:
    n = len(text)
    while pos < n:
        ch = text[pos]
        if ch == "\\":
            pos += 2
            continue
        if ch == '"':
            return pos
        pos += 1
    return -1


def _split_addr_spec(spec: str, mailbox: Mailbox) -> None:
    # folding whitespace inside an addr-spec is insignificant, except in a quoted local part
    spec = spec.strip() if '"' in spec else "".join(spec.split())
    if spec.startswith("@") and ":" in spec:
        # RFC 5322 section 4.4 obs-route: "@a,@b:local@domain"
        route, _, spec = spec.rpartition(":")
        mailbox.route = route
    local, at, domain = spec.rpartition("@")
    if not at:
        local, domain = spec, ""
    if len(local) >= 2 and local.startswith('"') and local.endswith('"'):
        local = local[1:-1]
    mailbox.local = local
    mailbox.domain = domain


class _Builder:
    def __init__(self) -> None:
        self.words: list[tuple[str, bool, bool]] = []  # (text, quoted, space_before)
        self.angle: str | None = None
        self.comment = ""
        self.space = False

    def empty(self) -> bool:
        return not self.words and self.angle is None and not self.comment

    def phrase(self) -> str:
        out: list[str] = []
        for text, _quoted, space in self.words:
            if out and space:
                out.append(" ")
            out.append(text)
        return "".join(out)

    def build(self) -> Mailbox | None:
        if self.empty():
            return None
        mailbox = Mailbox(comment=self.comment.strip())
        if self.angle is not None:
            mailbox.name = self.phrase()
            _split_addr_spec(self.angle, mailbox)
            return mailbox
        # No angle brackets: an addr-spec, possibly with junk words around it.
        merged: list[str] = []
        glue = False
        for text, quoted, space in self.words:
            # "john . doe @ example . com": dots and at-signs glue their neighbours
            joins = merged and (glue or not space or text.startswith(("@", ".")))
            if joins and not quoted:
                merged[-1] += text
            else:
                merged.append(text)
            glue = text.endswith(("@", "."))
        at_words = [i for i, w in enumerate(merged) if "@" in w]
        if at_words:
            idx = at_words[-1]
            _split_addr_spec(merged[idx], mailbox)
            mailbox.name = " ".join(merged[:idx] + merged[idx + 1 :])
        elif len(merged) == 1 and not self.words[0][1]:
            _split_addr_spec(merged[0], mailbox)
        else:
            mailbox.name = " ".join(merged)
        return mailbox


def parse_address_list(text: str) -> list[AddressItem]:
    """Parse an address-list header value (already unfolded and charset-decoded).

    Never raises; empty list elements are skipped; at most MAX_ADDRESSES mailboxes.
    """
    items: list[AddressItem] = []
    group: Group | None = None
    builder = _Builder()
    count = 0

    def finish() -> None:
        nonlocal builder, count
        mailbox = builder.build()
        builder = _Builder()
        if mailbox is None or count >= MAX_ADDRESSES:
            return
        count += 1
        if group is not None:
            group.members.append(mailbox)
        else:
            items.append(mailbox)

    for kind, value in _tokenize(text):
        if kind == "ws":
            builder.space = True
            continue
        if kind in ("atom", "quoted"):
            builder.words.append((value, kind == "quoted", builder.space))
        elif kind == "comment":
            if not builder.comment:
                builder.comment = value
        elif kind == "angle":
            if builder.angle is None:
                builder.angle = value
        elif kind == ",":
            finish()
        elif kind == ":":
            if group is None and builder.angle is None and builder.words:
                group = Group(name=builder.phrase())
                builder = _Builder()
            elif builder.words:
                builder.words.append((":", False, False))
        elif kind == ";":
            finish()
            if group is not None:
                items.append(group)
                group = None
        builder.space = False
    finish()
    if group is not None:  # unterminated group
        items.append(group)
    return items


def flatten(items: list[AddressItem]) -> list[Mailbox]:
    """Mailboxes only: group members are listed in place of their group."""
    out: list[Mailbox] = []
    for item in items:
        if isinstance(item, Group):
            out.extend(item.members)
        else:
            out.append(item)
    return out
