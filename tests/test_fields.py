"""Tests for wildpy.fields: tags, tag filters, metaData and WildDuck booleans."""

from __future__ import annotations

import json
from typing import Any

import pytest

from wildpy.errors import InputValidationError
from wildpy.fields import (
    MAX_METADATA_SIZE,
    MAX_TAG_FILTER_LENGTH,
    MAX_TAG_LENGTH,
    decode_metadata,
    encode_metadata,
    normalize_tags,
    parse_bool,
    parse_tag_filter,
)

# ---------------------------------------------------------------------------------------------
# tags


@pytest.mark.parametrize(
    ("given", "tags", "view"),
    [
        ([], [], []),
        ("", [], []),
        (["a"], ["a"], ["a"]),
        ([" Beta ", "alpha", "", "  "], ["alpha", "Beta"], ["alpha", "beta"]),
        (["Work", "work", "WORK"], ["Work"], ["work"]),  # first spelling wins
        (["work", "Work"], ["work"], ["work"]),
        (["b", "A", "c", "a"], ["A", "b", "c"], ["a", "b", "c"]),  # sorted case-insensitively
        (["Zeta", "alpha", "Mu"], ["alpha", "Mu", "Zeta"], ["alpha", "mu", "zeta"]),
        ("vip, Work,,vip ,customer", ["customer", "vip", "Work"], ["customer", "vip", "work"]),
        ("single", ["single"], ["single"]),
        (["Õun", "õun", "apple"], ["apple", "Õun"], ["apple", "õun"]),
        (("tuple", "Input"), ["Input", "tuple"], ["input", "tuple"]),
    ],
)
def test_normalize_tags(given: Any, tags: list[str], view: list[str]) -> None:
    assert normalize_tags(given) == (tags, view)


def test_normalize_tags_length_limit() -> None:
    longest = "x" * MAX_TAG_LENGTH
    assert normalize_tags([longest]) == ([longest], [longest])
    assert normalize_tags([f"  {longest}  "]) == ([longest], [longest])  # trimmed first
    with pytest.raises(InputValidationError) as info:
        normalize_tags(["ok", "x" * (MAX_TAG_LENGTH + 1)])
    message = '"tags[1]" length must be less than or equal to 128 characters long'
    assert info.value.text == message
    assert info.value.details == {"tags": message}


@pytest.mark.parametrize(
    ("given", "message"),
    [
        (["ok", 5], '"tags[1]" must be a string'),
        ([None], '"tags[0]" must be a string'),
        (42, '"tags" must be an array'),
        ({"a": 1}, '"tags" must be an array'),
    ],
)
def test_normalize_tags_rejects_wrong_types(given: Any, message: str) -> None:
    with pytest.raises(InputValidationError) as info:
        normalize_tags(given)
    assert info.value.text == message


def test_normalize_tags_field_name() -> None:
    with pytest.raises(InputValidationError) as info:
        normalize_tags(["y" * 200], field="labels")
    assert list(info.value.details or {}) == ["labels"]


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("", []),
        ("Work", ["work"]),
        ("Work, VIP ,,work", ["work", "vip"]),
        (" , ,", []),
        (["a,B", "c"], ["a", "b", "c"]),
    ],
)
def test_parse_tag_filter(given: Any, expected: list[str]) -> None:
    assert parse_tag_filter(given) == expected


def test_parse_tag_filter_length_limit() -> None:
    exactly = ",".join(["abc"] * 300)[:MAX_TAG_FILTER_LENGTH]
    assert len(exactly) == MAX_TAG_FILTER_LENGTH
    assert parse_tag_filter(exactly)
    with pytest.raises(InputValidationError) as info:
        parse_tag_filter("a" * (MAX_TAG_FILTER_LENGTH + 1), field="requiredTags")
    message = '"requiredTags" length must be less than or equal to 1024 characters long'
    assert info.value.details == {"requiredTags": message}


# ---------------------------------------------------------------------------------------------
# metaData


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ({}, "{}"),
        ({"a": 1}, '{"a":1}'),
        ({"nested": {"list": [1, 2, None, True]}}, '{"nested":{"list":[1,2,null,true]}}'),
        ({"name": "Õnne"}, '{"name":"Õnne"}'),  # non-ASCII kept as is
        ({1: "int key"}, '{"1":"int key"}'),
        ("{}", "{}"),
        ('  { "a" : 1 }  ', '{"a":1}'),  # a JSON string is stored compactly
        ('{"name":"\\u00d5nne"}', '{"name":"Õnne"}'),
        ('{"lone":"\\ud800"}', '{"lone":"\\ud800"}'),  # unstorable surrogate stays escaped
    ],
)
def test_encode_metadata(given: object, stored: str) -> None:
    assert encode_metadata(given, "metaData") == stored
    assert decode_metadata(stored) == json.loads(stored)


def _circular() -> dict[str, Any]:
    value: dict[str, Any] = {}
    value["self"] = value
    return value


@pytest.mark.parametrize(
    "given", [{"a": {1, 2}}, {"a": float("nan")}, {"a": object()}, {(1, 2): "x"}, _circular()]
)
def test_encode_metadata_not_serializable(given: object) -> None:
    with pytest.raises(InputValidationError) as info:
        encode_metadata(given, "internalData")
    message = "internalData value must be serializable to JSON"
    assert info.value.text == message
    assert info.value.details == {"internalData": message}


@pytest.mark.parametrize(
    "given",
    [
        "",
        "not json",
        "{broken",
        "[1, 2]",
        "42",
        '"a string"',
        "null",
        "true",
        '{"a": NaN}',
        '{"a": Infinity}',
        [1, 2],
        42,
        None,
        True,
    ],
)
def test_encode_metadata_not_an_object(given: object) -> None:
    with pytest.raises(InputValidationError) as info:
        encode_metadata(given, "metaData")
    message = "metaData value must be valid JSON object string"
    assert info.value.text == message
    assert info.value.details == {"metaData": message}


def test_encode_metadata_size_limit() -> None:
    overhead = len('{"k":""}')
    fits = {"k": "x" * (MAX_METADATA_SIZE - overhead)}
    assert len(encode_metadata(fits, "metaData")) == MAX_METADATA_SIZE
    assert len(encode_metadata(json.dumps(fits), "metaData")) == MAX_METADATA_SIZE

    too_big = {"k": "x" * (MAX_METADATA_SIZE - overhead + 1)}
    with pytest.raises(InputValidationError) as info:
        encode_metadata(too_big, "metaData")
    message = '"metaData" length must be less than or equal to 1048576 characters long'
    assert info.value.details == {"metaData": message}
    with pytest.raises(InputValidationError):
        encode_metadata(json.dumps(too_big), "metaData")


def test_encode_metadata_size_counts_utf8_octets() -> None:
    overhead = len('{"k":""}')
    # two octets per "õ": half as many characters already reach the limit
    with pytest.raises(InputValidationError):
        encode_metadata({"k": "õ" * ((MAX_METADATA_SIZE - overhead) // 2 + 1)}, "metaData")
    fits = {"k": "õ" * ((MAX_METADATA_SIZE - overhead) // 2)}
    assert encode_metadata(fits, "metaData")


def test_encode_metadata_whitespace_does_not_count() -> None:
    padded = '{"k":"' + "x" * (MAX_METADATA_SIZE - 8) + '"}' + " " * 1000
    assert len(encode_metadata(padded, "metaData")) == MAX_METADATA_SIZE


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        (None, {}),
        ("", {}),
        ("{}", {}),
        ('{"a":1}', {"a": 1}),
        (b'{"a":1}', {"a": 1}),
        ("not json", {}),
        ("[1,2]", {}),
        ("42", {}),
        ("null", {}),
        ({"already": "a dict"}, {"already": "a dict"}),
    ],
)
def test_decode_metadata(stored: Any, expected: dict[str, Any]) -> None:
    assert decode_metadata(stored) == expected


def test_decode_metadata_round_trip() -> None:
    value = {"a": [1, {"b": "Õ"}], "c": None, "d": 1.5}
    assert decode_metadata(encode_metadata(value, "metaData")) == value


# ---------------------------------------------------------------------------------------------
# booleans


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (True, True),
        (False, False),
        (1, True),
        (0, False),
        (1.0, True),
        (0.0, False),
        ("Y", True),
        ("y", True),
        ("true", True),
        ("TRUE", True),
        ("True", True),
        ("yes", True),
        ("Yes", True),
        ("on", True),
        ("ON", True),
        ("1", True),
        ("N", False),
        ("n", False),
        ("false", False),
        ("False", False),
        ("no", False),
        ("NO", False),
        ("off", False),
        ("Off", False),
        ("0", False),
        ("", None),
    ],
)
def test_parse_bool(given: object, expected: bool | None) -> None:
    assert parse_bool(given) is expected


@pytest.mark.parametrize(
    "given", [None, 2, -1, 0.5, "2", "maybe", "t", "f", " true", "true ", "tru", [], {}, "null"]
)
def test_parse_bool_rejects(given: object) -> None:
    with pytest.raises(ValueError, match='"value" must be a boolean'):
        parse_bool(given)


def test_parse_bool_field_name() -> None:
    with pytest.raises(ValueError, match='"metaData" must be a boolean'):
        parse_bool("perhaps", field="metaData")
