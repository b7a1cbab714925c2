"""Message listings and search: criteria become one bounded MongoDB query, paged by date.

Every query is scoped to one user (and, for listings, one mailbox), pages with a limit, and
orders by `(idate, _id)` as WildDuck does. The criteria come either as explicit fields
(`SearchCriteria`, WildDuck's `prepareSearchFilter`) or as a query string (`q`, parsed by
`parse_query`, WildDuck's `search-query.js` syntax), or both (then all must hold).

The filter's pieces come from `search_terms`; the `q` syntax from `search_query`.

Full text (`query`, free words of `q`) is a case-insensitive match of each word or quoted
phrase, literally, in the subject or the stored plain text (its first 64 KiB; white space in a
phrase matches any white space, line breaks too): any of the plain words, every phrase, none of
the `-words`, as WildDuck's `$text` reads a search (it also stems). Not `$text`: it needs a
text index, cannot be negated or used twice in one query, and stems on MongoDB but not on the
embedded server, so the same search would answer differently on the two. The regular
expression answers the same on both.

Cost. On MongoDB every query is bounded by the `{user}` (or `{mailbox}`) index. The embedded
server answers a flat filter (equalities, ranges, `$nin`, `(?i)` regular expressions,
`$elemMatch`) in SQL through those indexes, so filters are built flat (`combine`); but whatever
needs `$or`, `$and` on one field twice or `$nor` (full text: subject *or* text; `to`: To *or* Cc;
`OR` and `-` in `q`) it evaluates in Python over the whole collection, about 12 us a message.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from wildpy import errors
from wildpy.storage.accounts import Users
from wildpy.storage.database import Document
from wildpy.storage.mailboxes import Mailboxes
from wildpy.storage.messages import Messages
from wildpy.storage.pagination import Page, PageRequest

from .projections import listing_projection
from .search_query import (
    NO_MAILBOX,
    QueryMailboxes,
    compile_query,
    parse_query,
    query_mailbox_names,
    query_uses_searchable,
    resolve_mailbox_name,
)
from .search_terms import (
    UidSet,
    combine,
    contains,
    full_text,
    header_condition,
    recipient_condition,
)

#: the mailboxes that `searchable` leaves out
UNSEARCHABLE = ("\\Junk", "\\Trash")


@dataclass(frozen=True)
class OrTerms:
    """`or.query`, `or.from`, `or.to`, `or.subject`: at least one must hold."""

    query: str | None = None
    from_: str | None = None
    to: str | None = None
    subject: str | None = None

    def conditions(self) -> list[Document]:
        out: list[Document] = []
        if self.query:
            words = full_text(self.query)
            out.append(combine(words))
        if self.from_:
            out.append(header_condition("from", self.from_))
        if self.to:
            out.append(recipient_condition(self.to))
        if self.subject:
            out.append({"subject": contains(self.subject)})
        return [c for c in out if c]


@dataclass(frozen=True)
class SearchCriteria:
    """WildDuck's search fields (reference 5.6, GET /users/:user/search)."""

    q: str | None = None
    mailbox: str | None = None
    uids: UidSet | None = None
    thread: str | None = None
    query: str | None = None
    or_terms: OrTerms = field(default_factory=OrTerms)
    date_start: datetime | None = None
    date_end: datetime | None = None
    from_: str | None = None
    to: str | None = None
    subject: str | None = None
    min_size: int | None = None
    max_size: int | None = None
    attachments: bool = False
    flagged: bool = False
    unseen: bool = False
    searchable: bool = False

    @property
    def excludes_junk(self) -> bool:
        """WildDuck searches text and unseen messages only where `searchable` is set, which
        leaves Junk and Trash out; an explicit mailbox overrides that here."""
        if self.mailbox:
            return False
        return self.searchable or self.unseen or bool(self.query) or bool(self.or_terms.query)


@dataclass(frozen=True)
class Listing:
    """A page of stored messages (listing fields) as a listing or search answers it."""

    page: Page
    #: how many messages each thread on the page has, when asked for
    thread_counts: dict[str, int] | None = None
    #: the listed mailbox's special use (`\\Sent` ...), for a mailbox listing
    special_use: str | None = None


# ---------------------------------------------------------------------------------- service


class SearchService:
    """Mailbox listings and searches over one user's messages."""

    def __init__(
        self,
        queries: Messages,
        mailboxes: Mailboxes,
        users: Users,
        *,
        count_concurrency: int = 8,
    ) -> None:
        #: thread counts asked for at once (one indexed count each)
        self._count_concurrency = count_concurrency
        self._queries = queries
        self._mailboxes = mailboxes
        self._users = users

    async def list_mailbox(
        self,
        user: str,
        mailbox: str,
        paging: PageRequest,
        *,
        unseen: bool | None,
        ascending: bool,
        headers: bool = False,
        metadata: bool = False,
        thread_counters: bool = False,
    ) -> Listing:
        """One page of a mailbox by internal date (NoSuchMailbox), with the listing fields,
        the headers and metaData when asked for, and the size of each thread if asked.

        The total comes from the mailbox's exact counters, read side by side with the page:
        counting a large mailbox would cost time in proportion to its size.
        """
        query: Document = {"mailbox": mailbox, "user": user}
        if unseen is not None:
            query["unseen"] = unseen
        box, page = await asyncio.gather(
            self._mailboxes.counters(mailbox, user),
            self._queries.page_by_date(
                query,
                paging,
                ascending=ascending,
                projection=listing_projection(headers=headers, metadata=metadata),
                total=0,
            ),
        )
        if box is None:
            raise errors.NoSuchMailbox()
        total, unseen_count = int(box.get("total", 0)), int(box.get("unseen", 0))
        page.total = {None: total, True: unseen_count, False: total - unseen_count}[unseen]
        counts = await self._page_thread_counts(page) if thread_counters else None
        return Listing(page, counts, special_use=box.get("specialUse") or None)

    async def search(
        self,
        user: str,
        criteria: SearchCriteria,
        paging: PageRequest,
        *,
        ascending: bool,
        projection: Document,
    ) -> Page:
        """One page of the user's messages matching `criteria`, newest first unless
        `ascending`, with the fields of `projection`; the total is an exact count."""
        query = await self.build_query(user, criteria)
        return await self._queries.page_by_date(
            query,
            paging,
            ascending=ascending,
            projection=projection,
            total=self._queries.count(query),
        )

    async def search_listing(
        self,
        user: str,
        criteria: SearchCriteria,
        paging: PageRequest,
        *,
        ascending: bool,
        headers: bool = False,
        metadata: bool = False,
        thread_counters: bool = False,
    ) -> Listing:
        """`search` with the listing fields, the headers and metaData when asked for, and the
        size of each thread if asked."""
        page = await self.search(
            user,
            criteria,
            paging,
            ascending=ascending,
            projection=listing_projection(headers=headers, metadata=metadata),
        )
        counts = await self._page_thread_counts(page) if thread_counters else None
        return Listing(page, counts)

    async def build_query(self, user: str, criteria: SearchCriteria) -> Document:
        """The filter of `criteria`: UserNotFound, NoSuchMailbox for a mailbox not the user's."""
        parsed = parse_query(criteria.q) if criteria.q else None
        names = query_mailbox_names(parsed) if parsed is not None else set()
        searchable = parsed is not None and query_uses_searchable(parsed)
        need_mailboxes = bool(names) or searchable or criteria.excludes_junk
        user_doc, owned, rows = await asyncio.gather(
            self._users.get(user, {"_id": 1}),
            self._mailboxes.belongs_to(criteria.mailbox, user) if criteria.mailbox else _false(),
            self._mailboxes.of_user(user) if need_mailboxes else _empty(),
        )
        if user_doc is None:
            raise errors.UserNotFound()
        if criteria.mailbox and not owned:
            raise errors.NoSuchMailbox()
        conditions: list[Document] = [{"user": user}]
        if criteria.mailbox:
            conditions.append({"mailbox": criteria.mailbox})
            if criteria.uids is not None:
                conditions.append(criteria.uids.condition())
        excluded = [str(r["_id"]) for r in rows if r.get("specialUse") in UNSEARCHABLE]
        if not criteria.mailbox and criteria.excludes_junk and excluded:
            conditions.append({"mailbox": {"$nin": excluded}})
        if parsed is not None:
            resolved = {name: resolve_mailbox_name(name, rows) or NO_MAILBOX for name in names}
            compiled = compile_query(parsed, QueryMailboxes(resolved, tuple(excluded)))
            if compiled:
                conditions.append(compiled)
        conditions.extend(_field_conditions(criteria))
        or_conditions = criteria.or_terms.conditions()
        if or_conditions:
            conditions.append({"$or": or_conditions})
        return combine(conditions)

    async def _page_thread_counts(self, page: Page) -> dict[str, int]:
        return await self.thread_counts(str(row["thread"]) for row in page.results)

    async def thread_counts(self, threads: Iterable[str]) -> dict[str, int]:
        """How many messages each thread has: one indexed count per distinct thread (a `$in`
        over threads would scan the collection on the embedded server)."""
        distinct = sorted(set(threads))
        semaphore = asyncio.Semaphore(self._count_concurrency)

        async def one(thread: str) -> int:
            async with semaphore:
                return await self._queries.in_thread(thread)

        counts = await asyncio.gather(*(one(thread) for thread in distinct))
        return dict(zip(distinct, counts, strict=True))


def _field_conditions(criteria: SearchCriteria) -> list[Document]:
    conditions: list[Document] = []
    if criteria.thread:
        conditions.append({"thread": criteria.thread})
    if criteria.query:
        conditions.extend(full_text(criteria.query))
    dates: Document = {}
    if criteria.date_start is not None:
        dates["$gte"] = criteria.date_start
    if criteria.date_end is not None:
        dates["$lte"] = criteria.date_end
    if dates:
        conditions.append({"idate": dates})
    if criteria.from_:
        conditions.append(header_condition("from", criteria.from_))
    if criteria.to:
        conditions.append(recipient_condition(criteria.to))
    if criteria.subject:
        conditions.append({"subject": contains(criteria.subject)})
    sizes: Document = {}
    if criteria.min_size:
        sizes["$gte"] = criteria.min_size
    if criteria.max_size:
        sizes["$lte"] = criteria.max_size
    if sizes:
        conditions.append({"size": sizes})
    if criteria.attachments:
        conditions.append({"ha": True})
    if criteria.flagged:
        conditions.append({"flagged": True})
    if criteria.unseen:
        conditions.append({"unseen": True})
    return conditions


async def _false() -> bool:
    return False


async def _empty() -> list[Document]:
    return []
