"""Domain aliases: `alias.example` delivers as `example.com` (WildDuck reference 5.4)."""

from __future__ import annotations

from wildpy import errors
from wildpy.addressing import normalize_domain
from wildpy.clock import utcnow
from wildpy.storage.accounts import DomainAliases
from wildpy.storage.database import AlreadyExists, new_id
from wildpy.storage.pagination import Page, PageRequest

from .account_records import DomainAlias, DomainAliasSummary


class DomainAliasService:
    def __init__(self, aliases: DomainAliases) -> None:
        self._aliases = aliases

    async def retarget(self, old_domain: str, new_domain: str) -> int:
        """Point the aliases of `old_domain` at `new_domain` (a domain rename)."""
        return await self._aliases.retarget(old_domain, new_domain)

    async def target_of(self, domain: str) -> str | None:
        """The domain that `domain` is an alias of, if it is one."""
        return await self._aliases.target_of(domain)

    async def create(self, alias: str, domain: str) -> str:
        document = {
            "_id": new_id(),
            "alias": normalize_domain(alias, field="alias"),
            "domain": normalize_domain(domain),
            "created": utcnow(),
        }
        try:
            await self._aliases.insert(document)
        except AlreadyExists:
            raise errors.AliasExists(details={"alias": document["alias"]}) from None
        return str(document["_id"])

    async def get(self, alias_id: str) -> DomainAlias:
        document = await self._aliases.by_id(alias_id)
        if document is None:
            raise errors.AliasNotFound()
        return {
            "id": document["_id"],
            "alias": document["alias"],
            "domain": document["domain"],
            "created": document["created"],
        }

    async def resolve(self, alias: str) -> str:
        try:
            name = normalize_domain(alias, field="alias")
        except errors.InputValidationError:
            raise errors.AliasNotFound() from None
        alias_id = await self._aliases.id_of(name)
        if alias_id is None:
            raise errors.AliasNotFound()
        return alias_id

    async def delete(self, alias_id: str) -> None:
        if not await self._aliases.remove(alias_id):
            raise errors.AliasNotFound()

    async def list(
        self, paging: PageRequest, *, query: str | None
    ) -> tuple[Page, list[DomainAliasSummary]]:
        result = await self._aliases.page_matching(query, paging)
        rows: list[DomainAliasSummary] = [
            {"id": d["_id"], "alias": d["alias"], "domain": d["domain"]} for d in result.results
        ]
        return result, rows
