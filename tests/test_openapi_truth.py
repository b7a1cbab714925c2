"""The OpenAPI document tells the truth: what it promises, the server does (Hardening 5)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

from conftest import Api
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

PASSWORD = "correct horse battery staple"


async def document(api: Api) -> dict[str, Any]:
    response = await api.client.get("/openapi.json")
    assert response.status == 200
    result: dict[str, Any] = await response.json()
    return result


def accepts(doc: dict[str, Any], schema: dict[str, Any], value: Any) -> bool:
    """Whether `value` is valid under `schema`, its `$ref`s resolved against the document."""
    registry: Registry[Any] = Registry().with_resource(
        "urn:doc", Resource(contents=doc, specification=DRAFT202012)
    )
    wrapped = {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}
    # a schema with no $id resolves "#/..." against the document it sits in
    wrapped["$id"] = "urn:doc"
    validator = Draft202012Validator(wrapped, registry=registry)
    return validator.is_valid(value)


def body_schema(doc: dict[str, Any], path: str, method: str = "post") -> dict[str, Any]:
    schema: dict[str, Any] = doc["paths"][path][method]["requestBody"]["content"][
        "application/json"
    ]["schema"]
    return schema


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)


def resolve(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = doc
    for part in ref[2:].split("/"):
        assert isinstance(node, dict) and part in node, ref
        node = node[part]
    return node


async def test_every_reference_resolves(api: Api) -> None:
    doc = await document(api)
    found = set(refs(doc))
    # the nested request models (addresses, attachments, autoreply...) are among them
    assert {"#/components/schemas/AddressIn", "#/components/schemas/Autoreply"} <= found
    for ref in found:
        resolved = resolve(doc, ref)
        assert isinstance(resolved, dict) and resolved, ref
    autoreply = resolve(doc, "#/components/schemas/Autoreply")
    assert {"status", "start", "end", "subject"} <= set(autoreply["properties"])


async def test_ids_are_documented_as_24_hex(api: Api) -> None:
    doc = await document(api)
    get_user = doc["paths"]["/users/{user}"]["get"]
    (user,) = [p for p in get_user["parameters"] if p["name"] == "user"]
    assert not accepts(doc, user["schema"], "not-an-id")
    assert not accepts(doc, user["schema"], "a" * 23)
    assert accepts(doc, user["schema"], "0123456789abcdefABCDEF01")
    status, answer = await api.get("/users/not-an-id")
    assert status == 400, answer
    every_user_param = [
        parameter["schema"]
        for item in doc["paths"].values()
        for operation in item.values()
        for parameter in operation.get("parameters", [])
        if parameter["in"] == "path" and parameter["name"] in ("user", "mailbox")
    ]
    assert every_user_param
    assert all(not accepts(doc, schema, "x" * 24) for schema in every_user_param)
    get_mailbox = doc["paths"]["/users/{user}/mailboxes/{mailbox}"]["get"]
    (mailbox,) = [p for p in get_mailbox["parameters"] if p["name"] == "mailbox"]
    assert accepts(doc, mailbox["schema"], "resolve")


async def test_bodies_with_required_fields_are_required(api: Api) -> None:
    doc = await document(api)
    create_user = doc["paths"]["/users"]["post"]
    assert create_user["requestBody"]["required"] is True
    status, answer = await api.post("/users")  # no body at all: refused, as documented
    assert status == 400, answer
    # a body whose fields are all optional is not required
    logout = doc["paths"]["/users/{user}/logout"]["put"]
    assert logout["requestBody"].get("required", False) is False
    for item in doc["paths"].values():
        for operation in item.values():
            body = operation.get("requestBody")
            if body is not None:
                schema = body["content"]["application/json"]["schema"]
                assert body.get("required", False) is bool(schema["required"])


async def test_optional_booleans_refuse_null_as_documented(api: Api) -> None:
    doc = await document(api)
    schema = body_schema(doc, "/addresses/forwarded")["properties"]["allowWildcard"]
    assert not accepts(doc, schema, None)
    for value in (True, False, "yes", "Off", 1, ""):
        assert accepts(doc, schema, value), value
    status, answer = await api.post(
        "/addresses/forwarded",
        {
            "address": f"n{uuid.uuid4().hex[:8]}@fwd.test",
            "targets": ["a@b.test"],
            "allowWildcard": None,
        },
    )
    assert status == 400, answer
    assert "allowWildcard" in answer["details"]


async def test_public_routes_need_no_token_in_the_document(api: Api) -> None:
    doc = await document(api)
    assert doc["security"] == [{"AccessToken": []}]
    anonymous = api.as_token(None)
    for path in ("/health", "/errors", "/openapi.json"):
        assert doc["paths"][path]["get"]["security"] == [], path
        response = await anonymous.client.get(path)
        assert response.status == 200, path
    assert "security" not in doc["paths"]["/users"]["get"]


async def test_valid_after_zero_is_a_date(api: Api) -> None:
    """Joi.date() reads numbers as epoch milliseconds: 0 is 1970-01-01, not `false`."""
    doc = await document(api)
    schema = body_schema(doc, "/users/{user}/password/reset")["properties"]["validAfter"]
    assert accepts(doc, schema, 0)
    status, answer = await api.post(
        "/users", {"username": f"u{uuid.uuid4().hex[:10]}", "password": PASSWORD}
    )
    assert status == 200, answer
    user_id = answer["id"]
    status, answer = await api.post(f"/users/{user_id}/password/reset", {"validAfter": 0})
    assert status == 200, answer
    assert answer["validAfter"].startswith("1970-01-01T00:00:00")
    # milliseconds, as in JavaScript, also for numbers pydantic alone would read as seconds
    status, answer = await api.post(f"/users/{user_id}/password/reset", {"validAfter": 86400000})
    assert status == 200, answer
    assert answer["validAfter"].startswith("1970-01-02T00:00:00")


async def test_autoreply_end_zero_is_documented_and_a_date(api: Api) -> None:
    doc = await document(api)
    autoreply = resolve(doc, "#/components/schemas/Autoreply")
    assert accepts(doc, autoreply["properties"]["end"], 0)
    assert accepts(doc, autoreply["properties"]["start"], 86400000)
    assert not accepts(doc, autoreply["properties"]["end"], -62135596800001)
    status, answer = await api.post(
        "/addresses/forwarded",
        {
            "address": f"a{uuid.uuid4().hex[:8]}@fwd.test",
            "targets": ["a@b.test"],
            "autoreply": {"status": True, "start": 86400000, "end": 0},
        },
    )
    assert status == 200, answer
    status, body = await api.get(f"/addresses/forwarded/{answer['id']}")
    assert status == 200, body
    assert body["autoreply"]["start"].startswith("1970-01-02T00:00:00")
    assert body["autoreply"]["end"].startswith("1970-01-01T00:00:00")
    status, answer = await api.post(
        "/addresses/forwarded",
        {
            "address": f"b{uuid.uuid4().hex[:8]}@fwd.test",
            "targets": ["a@b.test"],
            "autoreply": {"end": -62135596800001},  # before year 1: refused, as documented
        },
    )
    assert status == 400, answer


async def test_autoreply_takes_its_own_keys_only(api: Api) -> None:
    """Found by schemathesis: `sess` inside `autoreply` was documented, then crashed (500)."""
    doc = await document(api)
    autoreply = resolve(doc, "#/components/schemas/Autoreply")
    assert "sess" not in autoreply["properties"]
    status, answer = await api.post(
        "/addresses/forwarded",
        {
            "address": f"c{uuid.uuid4().hex[:8]}@fwd.test",
            "targets": ["a@b.test"],
            "autoreply": {"sess": "", "ip": ""},
        },
    )
    assert status == 400, answer
    assert set(answer["details"]) == {"autoreply,sess", "autoreply,ip"}
