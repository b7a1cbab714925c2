"""Bad input that used to answer 5xx or slip through: deep JSON, line breaks in a composed
subject, control characters in mailbox paths. Each is a 400 InputValidationError naming the field.
"""

from __future__ import annotations

import pytest
from conftest import Api, assert_error
from message_samples import mailbox_ids, new_user

from wildpy.runtime import Runtime

JSON = {"Content-Type": "application/json"}


def nested(depth: int) -> bytes:
    """A body whose `metaData` value is `depth` levels of objects and arrays, alternating."""
    opening = "".join('{"a":' if level % 2 == 0 else "[" for level in range(depth))
    closing = "".join("}" if level % 2 == 0 else "]" for level in reversed(range(depth)))
    return ('{"metaData":' + opening + "1" + closing + "}").encode()


@pytest.mark.parametrize("depth", [150, 990, 1_500, 100_000])
async def test_deeply_nested_json_is_refused(api: Api, depth: int) -> None:
    user = await new_user(api)
    inbox = (await mailbox_ids(api, user))["INBOX"]
    path = f"/users/{user}/mailboxes/{inbox}/messages"
    status, body = await api.post(path, data=nested(depth), headers=JSON)
    assert_error(status, body, 400, "InputValidationError")
    assert "nested" in body["details"]["body"]
    # and the same route still takes a body nested like a real one
    status, body = await api.post(path, data=nested(20)[:-1] + b',"text":"ok"}', headers=JSON)
    assert status == 200, body


async def test_deep_json_in_any_route_and_form_bodies_stay_shallow(api: Api) -> None:
    status, body = await api.post("/users", data=b"[" * 50_000 + b"]" * 50_000, headers=JSON)
    assert_error(status, body, 400, "InputValidationError")
    status, body = await api.put("/users/" + "0" * 24, data=nested(3_000), headers=JSON)
    assert_error(status, body, 400, "InputValidationError")


@pytest.mark.parametrize("subject", ["Hello\r\nBcc: victim@example.com", "a\nb", "a\rb"])
async def test_line_breaks_in_a_composed_subject(api: Api, subject: str) -> None:
    user = await new_user(api)
    inbox = (await mailbox_ids(api, user))["INBOX"]
    path = f"/users/{user}/mailboxes/{inbox}/messages"
    status, body = await api.post(path, {"subject": subject, "text": "x"})
    assert_error(status, body, 400, "InputValidationError")
    assert "line breaks" in body["details"]["subject"]
    status, body = await api.post(path, {"subject": "Fine subject", "text": "x"})
    assert status == 200, body


@pytest.mark.parametrize(
    "bad", ["INBOX\u0000x", "Bills\r\nX", "Tab\there", "a/b\u007f", "C1\u0085"]
)
async def test_control_characters_in_mailbox_paths(api: Api, bad: str) -> None:
    user = await new_user(api)
    status, body = await api.post(f"/users/{user}/mailboxes", {"path": bad})
    assert_error(status, body, 400, "InputValidationError")
    assert body["details"] == {"path": '"path" must not contain control characters'}
    # renames go through the same rule
    status, created = await api.post(f"/users/{user}/mailboxes", {"path": "Plain"})
    assert status == 200, created
    status, body = await api.put(f"/users/{user}/mailboxes/{created['id']}", {"path": bad})
    assert_error(status, body, 400, "InputValidationError")
    # nothing was created: the user has the defaults and Plain only
    status, listing = await api.get(f"/users/{user}/mailboxes")
    assert status == 200
    assert all(
        not any(ord(ch) < 32 or 127 <= ord(ch) < 160 for ch in row["path"])
        for row in listing["results"]
    )


def deep_object_text(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


@pytest.mark.parametrize("depth", [150, 940])
async def test_deep_json_inside_a_metadata_string(api: Api, depth: int) -> None:
    """A string holds JSON the body may not: 940 levels were stored, then the listing broke."""
    user = await new_user(api)
    inbox = (await mailbox_ids(api, user))["INBOX"]
    path = f"/users/{user}/mailboxes/{inbox}/messages"
    status, body = await api.post(path, {"text": "x", "metaData": deep_object_text(depth)})
    assert_error(status, body, 400, "InputValidationError")
    assert "nested" in body["details"]["metaData"]
    status, body = await api.put(f"/users/{user}", {"metaData": deep_object_text(depth)})
    assert_error(status, body, 400, "InputValidationError")
    status, body = await api.get(path, params={"metaData": "true"})
    assert status == 200, body


async def test_deep_metadata_stored_earlier_reads_as_empty(api: Api, runtime: Runtime) -> None:
    user = await new_user(api)
    inbox = (await mailbox_ids(api, user))["INBOX"]
    path = f"/users/{user}/mailboxes/{inbox}/messages"
    status, body = await api.post(path, {"text": "x", "metaData": {"kept": True}})
    assert status == 200, body
    # as an older wildpy stored it, before depth was limited
    await runtime.repositories.messages.update_one(
        {"user": user, "mailbox": inbox}, {"$set": {"meta.custom": deep_object_text(940)}}
    )
    status, body = await api.get(path, params={"metaData": "true"})
    assert status == 200, body
    assert body["results"][0]["metaData"] == {}


@pytest.mark.parametrize("brk", ["\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\x1c"])
async def test_every_line_break_the_email_package_knows(api: Api, brk: str) -> None:
    """str.splitlines() breaks at more than CR and LF, and so does the email package."""
    user = await new_user(api)
    inbox = (await mailbox_ids(api, user))["INBOX"]
    path = f"/users/{user}/mailboxes/{inbox}/messages"
    for body, field in (
        ({"subject": f"a{brk}b"}, "subject"),
        ({"headers": [{"key": "X-A", "value": f"a{brk}b"}]}, "headers,0,value"),
        ({"to": [{"name": f"a{brk}b", "address": "to@example.com"}]}, "to,0,name"),
    ):
        status, answer = await api.post(path, {"text": "x", **body})
        assert_error(status, answer, 400, "InputValidationError")
        assert "line breaks" in answer["details"][field], answer


async def test_numbers_out_of_range(api: Api) -> None:
    user = await new_user(api)
    inbox = (await mailbox_ids(api, user))["INBOX"]
    path = f"/users/{user}/mailboxes/{inbox}/messages"
    # epoch milliseconds past year 9999
    status, body = await api.post(path, {"text": "x", "date": 1e30})
    assert_error(status, body, 400, "InputValidationError")
    assert "must be a valid date" in body["error"]
    # valid JSON, but no finite number: it could never be stored again
    status, body = await api.post(path, {"text": "x", "metaData": '{"a": 1e999}'})
    assert_error(status, body, 400, "InputValidationError")
    assert "metaData" in body["details"]
    # uids past any mailbox's (int() refuses 5,000 digits, MongoDB stops at 2**63)
    for uids in ("9" * 5000, str(2**63), "1:" + "9" * 30, f"1,{2**53 + 1}"):
        status, body = await api.put(path, {"message": uids, "seen": True})
        assert_error(status, body, 400, "InputValidationError")
        assert "message" in body["details"]
        status, body = await api.get(f"/users/{user}/search", params={"id": uids})
        assert_error(status, body, 400, "InputValidationError")
    status, body = await api.put(path, {"message": str(2**53), "seen": True})
    assert_error(status, body, 404, "MessageNotFound")
