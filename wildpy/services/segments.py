"""How a raw message is cut into stored pieces, and put back together byte for byte.

A stored message keeps `segments`, an ordered list whose concatenation is the original:

- `{"raw": <bytes>}`: a piece of the message kept inline in the message document;
- `{"zraw": <zlib bytes>, "len": n}`: the same, compressed (when that saves a tenth or more:
  the embedded server stores documents uncompressed);
- `{"body": n}`: the next `n` bytes of the message's file in the `bodies` bucket (used instead
  of `raw` pieces when they would make the document big, see `inline_body_limit`);
- `{"att": <sha256 hex>, "file": <GridFS id>, "len": n}`: an attachment body, exactly as
  encoded in the message, shared with every other message that carries the same bytes.

Only attachments of at least `min_attachment` encoded bytes are cut out: for a tiny signature
or icon a shared file would cost more round trips and bytes than it saves.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from wildpy.mime import AttachmentInfo

Segment = dict[str, Any]

#: zlib level for stored pieces: 6 compresses a typical 4 KB message in about 0.1 ms
ZLIB_LEVEL = 6


@dataclass(frozen=True)
class Piece:
    """A range of the raw message: kept as message bytes, or cut out as attachment `digest`."""

    start: int
    end: int
    digest: str | None = None

    @property
    def length(self) -> int:
        return self.end - self.start


def cut(raw_size: int, attachments: Sequence[AttachmentInfo], min_attachment: int) -> list[Piece]:
    """The pieces of a message of `raw_size` bytes: raw ranges around cut-out attachments.

    Attachment ranges come from the MIME parser; ranges that overlap an earlier one (which the
    parser should not produce) are left inside the raw pieces, so the result always covers the
    message exactly once, in order.
    """
    pieces: list[Piece] = []
    position = 0
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
    raw: bytes, pieces: Sequence[Piece], files: Mapping[str, str], *, inline: bool
) -> list[Segment]:
    """The `segments` list; `files` maps each cut-out digest to the GridFS file holding it.

    With `inline` False the raw pieces become `{"body": n}` references to the message's
    bodies file, whose content is `body_of(raw, pieces)`.
    """
    segments: list[Segment] = []
    for piece in pieces:
        if piece.digest is not None:
            segments.append({"att": piece.digest, "file": files[piece.digest], "len": piece.length})
        elif inline:
            segments.append(_inline(raw[piece.start : piece.end]))
        else:
            segments.append({"body": piece.length})
    return segments


def _inline(piece: bytes) -> Segment:
    packed = zlib.compress(piece, ZLIB_LEVEL)
    if len(packed) <= len(piece) * 0.9:
        return {"zraw": packed, "len": len(piece)}
    return {"raw": piece}


def inline_bytes(segment: Segment) -> bytes:
    """The message bytes of an inline segment (`raw` or `zraw`)."""
    if "zraw" in segment:
        return zlib.decompress(segment["zraw"])
    return bytes(segment["raw"])


def body_of(raw: bytes, pieces: Sequence[Piece]) -> bytes:
    """The content of a message's bodies file: its raw pieces, concatenated."""
    return b"".join(raw[piece.start : piece.end] for piece in pieces if piece.digest is None)


def segment_length(segment: Segment) -> int:
    if "raw" in segment:
        return len(segment["raw"])
    if "body" in segment:
        return int(segment["body"])
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


def attachment_digests(segments: Sequence[Segment]) -> list[str]:
    """The distinct attachment digests a message references (one reference each)."""
    return sorted({str(segment["att"]) for segment in segments if "att" in segment})
