"""The OpenAPI document: valid, generated from the routes, listing each route's error codes."""

from __future__ import annotations

from typing import Any

from conftest import Api
from openapi_spec_validator import validate

from wildpy.app import create_app
from wildpy.config import Config
from wildpy.errors import catalogue
from wildpy.handlers.openapi import route_doc


def test_every_route_is_documented(config: Config) -> None:
    app = create_app(config)
    undocumented = [
        f"{route.method} {route.resource.canonical}"
        for route in app.router.routes()
        if route.method != "HEAD"
        and route.resource is not None
        and route_doc(route.handler) is None
    ]
    assert undocumented == []


async def test_document_is_valid_and_lists_codes(api: Api) -> None:
    response = await api.client.get("/openapi.json")  # no token needed
    assert response.status == 200
    document: dict[str, Any] = await response.json()
    validate(document)
    known = set(catalogue())
    operations = [op for item in document["paths"].values() for op in item.values()]
    assert len(operations) >= 40
    for operation in operations:
        for status, answer in operation["responses"].items():
            for code in answer.get("x-error-codes", []):
                assert code in known
                assert catalogue()[code].status == int(status)
    get_user = document["paths"]["/users/{user}"]["get"]
    assert "UserNotFound" in get_user["responses"]["404"]["x-error-codes"]
    assert "InvalidToken" in get_user["responses"]["401"]["x-error-codes"]
    create_user = document["paths"]["/users"]["post"]
    body = create_user["requestBody"]["content"]["application/json"]["schema"]
    assert {"username", "password"} <= set(body["required"])
    assert "UserExistsError" in create_user["responses"]["409"]["x-error-codes"]
