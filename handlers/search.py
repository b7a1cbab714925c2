"""GET /users/:user/search: search a user's messages (WildDuck reference 5.6).

The criteria come as explicit fields, as a query string `q` (`from:alice "exact phrase" -in:junk
(report OR invoice) has:attachment`), or both; all given must hold. See
wildpy/services/search.py for the syntax and how full text is matched.
"""

from __future__ import annotations

from typing import Annotated

from aiohttp import web
from pydantic import Field

from wildpy import errors
from wildpy.store.search import OrTerms, SearchCriteria
from wildpy.store.search_terms import UidSet

from .auth import permit
from .context import runtime
from .message_params import Date, IncludeHeaders, Order, UidSetText
from .message_views import listing_rows, parse_include_headers
from .openapi import documented
from .responses import page_answer
from .validation import Bool, ObjectIdStr, PageParams, read_params

Text = Annotated[str, Field(max_length=255)] | None
Size = Annotated[int, Field(ge=0, le=2**53)] | None


#: the keys of `or` (`or.query=...` in a query string): at least one of them must match
OR_KEYS = ("query", "from", "to", "subject")


class SearchMessages(PageParams):
    user: ObjectIdStr
    q: Annotated[str, Field(max_length=1024)] | None = None
    mailbox: ObjectIdStr | None = None
    id: UidSetText | None = None
    thread: Annotated[str, Field(max_length=255)] | None = None
    # a plain mapping rather than a nested model: the OpenAPI document lists query parameters
    # flat; the keys are checked in `criteria`
    or_: dict[str, Annotated[str, Field(max_length=255)]] | None = Field(None, alias="or")
    query: Text = None
    datestart: Date = None
    dateend: Date = None
    from_: Text = Field(None, alias="from")
    to: Text = None
    subject: Text = None
    minSize: Size = None
    maxSize: Size = None
    attachments: Bool = None
    flagged: Bool = None
    unseen: Bool = None
    searchable: Bool = None
    includeHeaders: IncludeHeaders = None
    threadCounters: Bool = None
    metaData: Bool = None
    order: Order = "desc"

    def criteria(self) -> SearchCriteria:
        if self.id and not self.mailbox:
            message = '"id" can only be used together with "mailbox"'
            raise errors.InputValidationError(message, details={"id": message})
        terms = self.or_ or {}
        for key in terms:
            if key not in OR_KEYS:
                message = f'"or.{key}" is not allowed'
                raise errors.InputValidationError(message, details={f"or,{key}": message})
        return SearchCriteria(
            q=self.q.strip() if self.q and self.q.strip() else None,
            mailbox=self.mailbox,
            uids=UidSet.parse(self.id) if self.id else None,
            thread=self.thread or None,
            query=self.query or None,
            or_terms=OrTerms(
                terms.get("query"), terms.get("from"), terms.get("to"), terms.get("subject")
            ),
            date_start=self.datestart,
            date_end=self.dateend,
            from_=self.from_ or None,
            to=self.to or None,
            subject=self.subject or None,
            min_size=self.minSize,
            max_size=self.maxSize,
            attachments=bool(self.attachments),
            flagged=bool(self.flagged),
            unseen=bool(self.unseen),
            searchable=bool(self.searchable),
        )


routes = web.RouteTableDef()


@routes.get("/users/{user}/search")
@documented(SearchMessages, errors.UserNotFound, errors.NoSuchMailbox)
async def search_messages(request: web.Request) -> web.Response:
    """Messages of all (or one) of the user's mailboxes matching the criteria, newest first."""
    params = await read_params(request, SearchMessages, body=False)
    permit(request, "read", "messages", owner=params.user)
    headers = parse_include_headers(params.includeHeaders)
    listing = await runtime(request).message_api.search.search_listing(
        params.user,
        params.criteria(),
        params.paging,
        ascending=params.order == "asc",
        headers=bool(headers),
        metadata=bool(params.metaData),
        thread_counters=bool(params.threadCounters),
    )
    rows = listing_rows(listing, headers=headers, metadata=bool(params.metaData))
    return page_answer(listing.page, rows, query=params.q or params.query or "")
