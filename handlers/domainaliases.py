"""REST routes for domain aliases (WildDuck reference 5.4)."""

from __future__ import annotations

from aiohttp import web
from pydantic import Field

from wildpy import errors

from .auth import permit
from .context import runtime
from .openapi import documented
from .responses import ok, page_answer
from .validation import ObjectIdStr, PageParams, Params, read_params

routes = web.RouteTableDef()


class ListAliases(PageParams):
    query: str | None = Field(None, max_length=255)


class CreateAlias(Params):
    alias: str = Field(min_length=1, max_length=255)
    domain: str = Field(min_length=1, max_length=255)


class AliasPath(Params):
    alias: ObjectIdStr


class ResolveAlias(Params):
    alias: str = Field(min_length=1, max_length=255)


@routes.get("/domainaliases")
@documented(ListAliases)
async def list_aliases(request: web.Request) -> web.Response:
    params = await read_params(request, ListAliases, body=False)
    permit(request, "read", "domainaliases")
    page, aliases = await runtime(request).domain_aliases.list(params.paging, query=params.query)
    rows = [{"id": a["id"], "alias": a["alias"], "domain": a["domain"]} for a in aliases]
    return page_answer(page, rows, query=params.query or "")


@routes.post("/domainaliases")
@documented(CreateAlias, errors.AliasExists)
async def create_alias(request: web.Request) -> web.Response:
    params = await read_params(request, CreateAlias)
    permit(request, "create", "domainaliases")
    return ok(id=await runtime(request).domain_aliases.create(params.alias, params.domain))


@routes.get("/domainaliases/resolve/{alias}")
@documented(ResolveAlias, errors.AliasNotFound)
async def resolve_alias(request: web.Request) -> web.Response:
    params = await read_params(request, ResolveAlias, body=False)
    permit(request, "read", "domainaliases")
    return ok(id=await runtime(request).domain_aliases.resolve(params.alias))


@routes.get("/domainaliases/{alias}")
@documented(AliasPath, errors.AliasNotFound)
async def get_alias(request: web.Request) -> web.Response:
    params = await read_params(request, AliasPath, body=False)
    permit(request, "read", "domainaliases")
    alias = await runtime(request).domain_aliases.get(params.alias)
    return ok(
        id=alias["id"], alias=alias["alias"], domain=alias["domain"], created=alias["created"]
    )


@routes.delete("/domainaliases/{alias}")
@documented(AliasPath, errors.AliasNotFound)
async def delete_alias(request: web.Request) -> web.Response:
    params = await read_params(request, AliasPath)
    permit(request, "delete", "domainaliases")
    await runtime(request).domain_aliases.delete(params.alias)
    return ok()
