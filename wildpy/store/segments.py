"""How a raw message is cut into stored pieces, and put back together byte for byte.

A stored message keeps `segments`, an ordered list whose concatenation is the original:

- `{"head": n}`: the message's top header block, `n` bytes, kept zlib-compressed (with
  `MAIL_DICTIONARY`) in the document's own `head` field, where a listing's `includeHeaders`
  (and later IMAP's BODY[HEADER]) reads it without the rest;
- `{"raw": <bytes>}`: a piece of the message kept inline in the message document;
- `{"zraw": <zlib bytes>, "len": n}`: the same, compressed (when that saves a tenth or more:
  the embedded server stores documents uncompressed); with `"zd": d` the stream was made with
  the preset dictionary `text_dictionary(text, d)`: `MAIL_DICTIONARY` and the first `d` bytes
  of the document's `text` (compression.py), so the body's words are stored once, in the text
  the database searches. That `text` must therefore never change once stored;
- `{"body": n}`: the next `n` bytes of the message's file in the `bodies` bucket (used instead
  of `raw` pieces when they would make the document big, see `inline_body_limit`);
- `{"att": <sha256 hex>, "file": <GridFS id>, "len": n}`: an attachment body, exactly as
  encoded in the message, shared with every other message that carries the same bytes.

Only attachments of at least `min_attachment` encoded bytes are cut out: for a tiny signature
or icon a shared file would cost more round trips and bytes than it saves.

Documents stored before `head` and `zd` existed (one `zraw` from the first byte, no
dictionary) read the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from wildpy.mime import AttachmentInfo

from .compression import MAIL_DICTIONARY, WINDOW, compress, decompress, text_dictionary

Segment = dict[str, Any]

#: a header block up to this size is kept apart in `head` (nearly all are a few KB); a bigger
#: one stays with the rest of the message, which is then read for its headers
HEAD_LIMIT = 64 * 1024
#: most bytes of the text a body piece's dictionary holds: all of zlib's 32 KiB reach that
#: MAIL_DICTIONARY leaves. The text ends the dictionary, right before the piece; the piece's
#: text part starts after a few part headers, so each of its words is about this far from the
#: same word in the dictionary, within reach while those headers are shorter than
#: MAIL_DICTIONARY. An HTML alternative further on refers to the text part instead. Measured
#: on 2-48 KB bodies, no shorter dictionary did better
TEXT_DICTIONARY = WINDOW - len(MAIL_DICTIONARY)


@dataclass(frozen=True)
class Piece:
    """A range of the raw message: kept as message bytes, or cut out as attachment `digest`;
    `head` for the top header block, which is stored in the document's `head` field."""

    start: int
    end: int
    digest: str | None = None
    head: bool = False

    @property
    def length(self) -> int:
        return self.end - self.start


def cut(
    raw_size: int,
    attachments: Sequence[AttachmentInfo],
    min_attachment: int,
    head_end: int = 0,
) -> list[Piece]:
    """The pieces of a message of `raw_size` bytes: raw ranges around cut-out attachments.

    Attachment ranges come from the MIME parser; ranges that overlap an earlier one (which the
    parser should not produce) are left inside the raw pieces, so the result always covers the
    message exactly once, in order. With `head_end` (where the top header block ends, at most
    `HEAD_LIMIT`) the first piece is that block, marked `head`.
    """
    pieces: list[Piece] = []
    position = 0
    if 0 < head_end <= HEAD_LIMIT and head_end <= raw_size:
        pieces.append(Piece(0, head_end, head=True))
        position = head_end
    for info in sorted(attachments, key=lambda a: a.body_start):
        start, end = info.body_start, info.body_end
        if end - start < min_attachment or start < position or end > raw_size:
            continue
        if start > position:
            pieces.append(Piece(position, start))
        pieces.append(Piece(start, end, info.hash))
        position = end
    if position < raw_size:
        pieces.append(Piece(position, raw_size))
    return pieces


def raw_size_of(pieces: Sequence[Piece]) -> int:
    """Bytes that stay with the message itself (everything but cut-out attachments)."""
    return sum(piece.length for piece in pieces if piece.digest is None)


def build(
    raw: bytes,
    pieces: Sequence[Piece],
    files: Mapping[str, str],
    *,
    inline: bool,
    text: str = "",
) -> list[Segment]:
    """The `segments` list; `files` maps each cut-out digest to the GridFS file holding it.

    With `inline` False the raw pieces become `{"body": n}` references to the message's
    bodies file, whose content is `body_of(raw, pieces)`. `text` is the document's `text`
    (its search text): inline pieces are compressed with it as dictionary. The head piece
    becomes `{"head": n}`; its bytes are `pack_head(raw, pieces)`, for the `head` field.
    """
    segments: list[Segment] = []
    for piece in pieces:
        if piece.head:
            segments.append({"head": piece.length})
        elif piece.digest is not None:
            segments.append({"att": piece.digest, "file": files[piece.digest], "len": piece.length})
        elif inline:
            segments.append(_inline(raw[piece.start : piece.end], text))
        else:
            segments.append({"body": piece.length})
    return segments


def pack_head(raw: bytes, pieces: Sequence[Piece]) -> bytes | None:
    """The `head` field: the head piece compressed with `MAIL_DICTIONARY`; None without one."""
    for piece in pieces:
        if piece.head:
            return compress(raw[piece.start : piece.end], MAIL_DICTIONARY)
    return None


def _inline(piece: bytes, text: str) -> Segment:
    # `TEXT_DICTIONARY` characters encode to at least as many bytes: only they need encoding
    length = min(len(text[:TEXT_DICTIONARY].encode("utf-8")), TEXT_DICTIONARY)
    packed = compress(piece, text_dictionary(text, length))
    if len(packed) <= len(piece) * 0.9:
        return {"zraw": packed, "len": len(piece), "zd": length}
    return {"raw": piece}


def inline_bytes(segment: Segment, doc: Mapping[str, Any] | None = None) -> bytes:
    """The message bytes of an inline segment (`head`, `raw` or `zraw`). `doc` is the message
    document: a `head` segment is in its `head` field, and a `zraw` with a dictionary (`zd`)
    needs its `text`. KeyError when `doc` lacks what the segment needs."""
    if "zraw" in segment:
        dictionary = b""
        if "zd" in segment:
            if doc is None:
                raise KeyError("text")
            dictionary = text_dictionary(str(doc["text"]), int(segment["zd"]))
        return decompress(segment["zraw"], dictionary)
    if "head" in segment:
        if doc is None:
            raise KeyError("head")
        return decompress(doc["head"], MAIL_DICTIONARY)
    return bytes(segment["raw"])


def is_inline(segment: Segment) -> bool:
    """Whether the segment's bytes are in the message document itself."""
    return "raw" in segment or "zraw" in segment or "head" in segment


def body_of(raw: bytes, pieces: Sequence[Piece]) -> bytes:
    """The content of a message's bodies file: its raw pieces (but the head), concatenated."""
    return b"".join(
        raw[piece.start : piece.end] for piece in pieces if piece.digest is None and not piece.head
    )


def segment_length(segment: Segment) -> int:
    if "raw" in segment:
        return len(segment["raw"])
    if "body" in segment:
        return int(segment["body"])
    if "head" in segment:
        return int(segment["head"])
    return int(segment["len"])


@dataclass(frozen=True)
class Span:
    """Where bytes [start, end) of the message are: segment `index`, from `offset` in it."""

    index: int
    offset: int
    length: int


def locate(segments: Sequence[Segment], start: int, end: int) -> list[Span]:
    """The spans of the segments that hold bytes [start, end) of the message, in order."""
    spans: list[Span] = []
    position = 0
    for index, segment in enumerate(segments):
        length = segment_length(segment)
        seg_start, seg_end = position, position + length
        position = seg_end
        if seg_end <= start:
            continue
        if seg_start >= end:
            break
        low, high = max(start, seg_start), min(end, seg_end)
        spans.append(Span(index, low - seg_start, high - low))
    return spans


def body_offsets(segments: Sequence[Segment]) -> dict[int, int]:
    """For each `{"body": n}` segment (by index), where its bytes start in the bodies file."""
    offsets: dict[int, int] = {}
    position = 0
    for index, segment in enumerate(segments):
        if "body" in segment:
            offsets[index] = position
            position += int(segment["body"])
    return offsets


def attachment_ranges(segments: Sequence[Segment]) -> list[tuple[int, int]]:
    """Where the attachment bodies stored apart are in the message: [start, end) in order."""
    ranges: list[tuple[int, int]] = []
    position = 0
    for segment in segments:
        length = segment_length(segment)
        if "att" in segment:
            ranges.append((position, position + length))
        position += length
    return ranges


def attachment_digests(segments: Sequence[Segment]) -> list[str]:
    """The distinct attachment digests a message references (one reference each)."""
    return sorted({str(segment["att"]) for segment in segments if "att" in segment})
