"""Cursor pagination over the real server: both directions, empty pages, bad cursors."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from wildpy.errors import InputValidationError
from wildpy.runtime import Runtime
from wildpy.storage.cursors import Cursor
from wildpy.storage.keyset import decode_position, encode_position
from wildpy.storage.pagination import PageRequest, decode_cursor, encode_cursor


async def test_walk_both_ways_and_past_the_end(runtime: Runtime) -> None:
    aliases = runtime.repositories.domain_aliases
    for index in range(7):
        await aliases.insert({"_id": f"{index:024x}", "alias": f"a{index}.test", "domain": "d"})
    first = await aliases.page({}, PageRequest(3), field="alias")
    assert [r["alias"] for r in first.results] == ["a0.test", "a1.test", "a2.test"]
    assert first.previous_cursor is False and first.total == 7
    assert isinstance(first.next_cursor, str)
    second = await aliases.page({}, PageRequest(3, next=first.next_cursor, page=2), field="alias")
    assert [r["alias"] for r in second.results] == ["a3.test", "a4.test", "a5.test"]
    assert isinstance(second.previous_cursor, str)
    back = await aliases.page(
        {}, PageRequest(3, previous=second.previous_cursor, page=2), field="alias"
    )
    assert [r["alias"] for r in back.results] == ["a0.test", "a1.test", "a2.test"]
    last = await aliases.page({}, PageRequest(3, next=second.next_cursor, page=3), field="alias")
    assert [r["alias"] for r in last.results] == ["a6.test"] and last.next_cursor is False
    # the rows after a cursor vanish: the empty page still leads back
    await aliases.delete_many({"alias": "a6.test"})
    empty = await aliases.page({}, PageRequest(3, next=second.next_cursor, page=3), field="alias")
    assert empty.results == [] and isinstance(empty.previous_cursor, str)
    again = await aliases.page(
        {}, PageRequest(3, previous=empty.previous_cursor, page=3), field="alias"
    )
    assert [r["alias"] for r in again.results] == ["a3.test", "a4.test", "a5.test"]


def test_cursor_round_trip_and_garbage() -> None:
    bound = decode_cursor(encode_cursor("x", "f" * 24), "next")
    assert (bound.value, bound.ident, bound.inclusive) == ("x", "f" * 24, False)
    for garbage in ("e30", "bm90IGpzb24", "W1tdLCAxXQ"):  # {}, "not json", [[], 1]
        with pytest.raises(InputValidationError):
            decode_cursor(garbage, "next")


def test_one_codec_reads_both_cursor_layouts() -> None:
    """A value cursor and a position cursor decode through the same function, either way."""
    when = datetime(2024, 10, 1, 10, 0, tzinfo=UTC)
    positional = encode_position(Cursor(when, "a" * 24, offset=40))
    assert decode_cursor(positional, "next") == Cursor(when, "a" * 24, 40, False)
    compact = encode_cursor(when, "b" * 24, inclusive=True)
    assert decode_position(compact, "previous") == Cursor(when, "b" * 24, None, True)
    # a string or an object is no cursor, whatever its length
    for garbage in ("ImFiIg", "eyJhIjoxLCJiIjoyfQ"):  # "ab", {"a":1,"b":2}
        with pytest.raises(InputValidationError):
            decode_cursor(garbage, "next")
