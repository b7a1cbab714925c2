"""MIME parsing for wildpy: one lenient pass over a raw message (see parse_message)."""

from __future__ import annotations

from wildpy.mime.decode import decode_part, part_text
from wildpy.mime.html import html_to_text, replace_cid_links, sanitize_html
from wildpy.mime.imap_format import format_body, format_envelope, format_string
from wildpy.mime.imap_structure import ImapValue, build_body, build_envelope
from wildpy.mime.parse import (
    Address,
    AttachmentInfo,
    ParsedMessage,
    ThreadHeaders,
    header_index,
    make_intro,
    normalize_newlines,
    parse_message,
    render_body,
    thread_headers,
)
from wildpy.mime.sections import resolve_section, section_range
from wildpy.mime.structure import MAX_DEPTH, MAX_PARTS, MimeNode, drop_ranges, parse_tree

__all__ = [
    "MAX_DEPTH",
    "MAX_PARTS",
    "Address",
    "AttachmentInfo",
    "ImapValue",
    "MimeNode",
    "ParsedMessage",
    "ThreadHeaders",
    "build_body",
    "build_envelope",
    "decode_part",
    "drop_ranges",
    "format_body",
    "format_envelope",
    "format_string",
    "header_index",
    "html_to_text",
    "make_intro",
    "normalize_newlines",
    "parse_message",
    "parse_tree",
    "part_text",
    "render_body",
    "replace_cid_links",
    "resolve_section",
    "sanitize_html",
    "section_range",
    "thread_headers",
]
