"""What each read of a message asks the database for: the store picks it, never a door.

Top-level projections only (storage.md); the fields are listed in docs/mail-store.md.
"""

from __future__ import annotations

from wildpy.storage.database import Document

from .documents import RAW_FIELDS, SUMMARY_FIELDS

#: what reassembling the raw message reads (`Reader.get_raw`, `read_range`)
RAW_PROJECTION: Document = dict.fromkeys(RAW_FIELDS, 1)
#: ... and the attachment list, to find one attachment's bytes
ATTACHMENT_PROJECTION: Document = {**RAW_PROJECTION, "attachments": 1}
#: ... and the stored MIME tree, to render the body a detail view shows
BODY_PROJECTION: Document = {**RAW_PROJECTION, "view": 1}

#: what the detail view of one message reads: its text and HTML are rendered from the raw
#: message, so the raw fields too (`MessageService.body`); never the attachments in GridFS
DETAIL_PROJECTION: Document = dict.fromkeys(
    (*SUMMARY_FIELDS, "replyTo", "list", "cidMap", "meta", *RAW_FIELDS, "view"), 1
)


def listing_projection(*, headers: bool, metadata: bool) -> Document:
    """What a listing reads: the listing fields, plus the headers and `meta` when asked for.

    `meta` holds the client's metaData (up to 1 MiB) and cannot be projected in part on the
    embedded server (top-level projections only), so a plain listing leaves it out; a message
    without From or Sender then shows an empty sender instead of the envelope one.

    Headers come from the stored header block (`head`, compressed: smaller than the headers
    themselves); a message without one (a header block over 64 KiB) keeps them all in its
    `headers` index.
    """
    projection: Document = dict.fromkeys(SUMMARY_FIELDS, 1)
    if metadata:
        projection["meta"] = 1
    if headers:
        projection["head"] = 1
        projection["headers"] = 1
    return projection
