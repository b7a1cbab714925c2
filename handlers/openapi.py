"""The OpenAPI document, generated from the routes themselves.

Each route handler declares, with `@documented(Model, SomeError, ...)`, the parameters model it
reads and the catalogue errors it can answer besides the ones every route can (`COMMON_ERRORS`).
`GET /openapi.json` walks the router, so a route cannot exist without being documented (a test
checks that every route is).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel

from wildpy import errors
from wildpy.errors import WildpyError

from .responses import dumps

H = TypeVar("H", bound=Callable[..., Any])

#: what any authenticated route can answer
COMMON_ERRORS: tuple[type[WildpyError], ...] = (
    errors.InputValidationError,
    errors.InvalidContent,
    errors.InvalidToken,
    errors.MissingPrivileges,
    errors.PayloadTooLarge,
    errors.InternalError,
    errors.InternalDatabaseError,
)

_ATTRIBUTE = "__wildpy_openapi__"


@dataclass(frozen=True)
class RouteDoc:
    params: type[BaseModel] | None
    errors: tuple[type[WildpyError], ...]


def documented(params: type[BaseModel] | None, *codes: type[WildpyError]) -> Callable[[H], H]:
    """Declare a handler's parameters model and the errors it can answer."""

    def mark(handler: H) -> H:
        setattr(handler, _ATTRIBUTE, RouteDoc(params, codes))
        return handler

    return mark


def route_doc(handler: Any) -> RouteDoc | None:
    doc = getattr(handler, _ATTRIBUTE, None)
    return doc if isinstance(doc, RouteDoc) else None


_ENVELOPE = {
    "type": "object",
    "required": ["success", "error", "code", "requestId"],
    "properties": {
        "success": {"type": "boolean", "const": False},
        "error": {"type": "string"},
        "code": {"type": "string"},
        "details": {"type": "object"},
        "requestId": {"type": "string"},
    },
}


#: where the shared schemas live; pydantic's default `#/$defs/...` would point at the document's
#: root, where nothing is, once a model's schema is placed inside an operation
_REF_TEMPLATE = "#/components/schemas/{model}"


def _model_schema(model: type[BaseModel], shared: dict[str, Any]) -> dict[str, Any]:
    """The model's schema, its nested models moved into `shared` (components/schemas)."""
    schema: dict[str, Any] = _without_null_defaults(
        model.model_json_schema(ref_template=_REF_TEMPLATE)
    )
    for name, definition in schema.pop("$defs", {}).items():
        if shared.setdefault(name, definition) != definition:
            # two different models under one name would silently document one of them
            raise ValueError(f"two different request models are both named {name}")
    return schema


def _without_null_defaults(node: Any) -> Any:
    """Drop `default: null`: it means "not given", and where null is refused it would be a lie."""
    if isinstance(node, dict):
        return {
            k: _without_null_defaults(v)
            for k, v in node.items()
            if not (k == "default" and v is None)
        }
    if isinstance(node, list):
        return [_without_null_defaults(v) for v in node]
    return node


def _operation(
    method: str, path: str, handler: Any, doc: RouteDoc, shared: dict[str, Any]
) -> dict[str, Any]:
    summary = (handler.__doc__ or handler.__name__).strip().splitlines()[0]
    operation: dict[str, Any] = {"operationId": handler.__name__, "summary": summary}
    path_names = {part[1:-1].split(":")[0] for part in path.split("/") if part.startswith("{")}
    schema = _model_schema(doc.params, shared) if doc.params is not None else {}
    properties: dict[str, Any] = schema.get("properties", {})
    parameters: list[dict[str, Any]] = [
        # the model's own rule for the segment (an id is 24 hex characters), else any string
        {"name": name, "in": "path", "required": True, "schema": _path_schema(properties, name)}
        for name in sorted(path_names)
    ]
    if doc.params is not None:
        fields = {k: v for k, v in properties.items() if k not in path_names}
        if method in ("GET", "DELETE", "HEAD"):
            required = set(schema.get("required", []))
            parameters += [
                {"name": name, "in": "query", "required": name in required, "schema": field}
                for name, field in fields.items()
            ]
        else:
            body = dict(schema, properties=fields)
            body["required"] = [n for n in schema.get("required", []) if n not in path_names]
            request_body: dict[str, Any] = {"content": {"application/json": {"schema": body}}}
            if body["required"]:
                request_body["required"] = True  # without a body the required fields are missing
            operation["requestBody"] = request_body
    if parameters:
        operation["parameters"] = parameters
    public = handler.__name__ in _PUBLIC
    if public:
        operation["security"] = []  # overrides the document's default: no token needed
    responses: dict[str, Any] = {"200": {"description": "success: true, and the route's fields"}}
    by_status: dict[int, list[str]] = {}
    codes = COMMON_ERRORS if not public else ()
    for error in (*codes, *doc.errors):
        names = by_status.setdefault(error.status, [])
        if error.code() not in names:
            names.append(error.code())
    for status, names in sorted(by_status.items()):
        responses[str(status)] = {
            "description": ", ".join(names),
            "x-error-codes": names,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
    operation["responses"] = responses
    return operation


def _path_schema(properties: dict[str, Any], name: str) -> dict[str, Any]:
    field = properties.get(name)
    if not isinstance(field, dict):
        return {"type": "string"}
    return {k: v for k, v in field.items() if k not in ("title", "default")}


#: handlers that need no token, so they cannot answer InvalidToken or MissingPrivileges
_PUBLIC = frozenset({"list_errors", "health", "openapi_document"})


def build_document(app: web.Application) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    shared: dict[str, Any] = {}
    for route in app.router.routes():
        if route.method == "HEAD" or route.resource is None:
            continue
        doc = route_doc(route.handler)
        if doc is None:
            continue
        path = route.resource.canonical
        method = route.method.upper()
        paths.setdefault(path, {})[method.lower()] = _operation(
            method, path, route.handler, doc, shared
        )
    return {
        "openapi": "3.1.0",
        "info": {"title": "wildpy", "version": "0.1.0"},
        "components": {
            "schemas": {**dict(sorted(shared.items())), "Error": _ENVELOPE},
            "securitySchemes": {
                "AccessToken": {"type": "apiKey", "in": "header", "name": "X-Access-Token"}
            },
        },
        "security": [{"AccessToken": []}],
        "paths": paths,
    }


routes = web.RouteTableDef()


@routes.get("/openapi.json")
@documented(None)
async def openapi_document(request: web.Request) -> web.Response:
    """The OpenAPI document of this server, with each route's possible error codes."""
    return web.Response(text=dumps(build_document(request.app)), content_type="application/json")
