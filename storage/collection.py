"""The base of every repository: one MongoDB collection, its declared indexes, guarded calls.

Repositories subclass `Collection`, name their logical database, collection and indexes, and add
the queries that belong to them. Everything public is async and `guarded` (database.Repository),
so callers only ever see catalogue errors or `AlreadyExists`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from pymongo import ASCENDING, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError, DuplicateKeyError, OperationFailure

from .database import Database, Document, Repository, translate
from .pagination import Page, PageRequest, paginate


@dataclass(frozen=True)
class Index:
    keys: list[tuple[str, int]]
    unique: bool = False
    sparse: bool = False
    options: dict[str, Any] = field(default_factory=dict)


class Collection(Repository):
    database: ClassVar[Literal["users", "mail", "attachments"]]
    name: ClassVar[str]
    indexes: ClassVar[list[Index]] = []

    def __init__(self, db: Database) -> None:
        self.db = db
        self.collection: AsyncCollection[Document] = getattr(db, self.database)[self.name]

    async def ensure_indexes(self) -> None:
        for index in self.indexes:
            await self.collection.create_index(
                index.keys, unique=index.unique, sparse=index.sparse, **index.options
            )

    async def insert(self, document: Document) -> None:
        await self.collection.insert_one(document)

    async def insert_each(self, documents: Sequence[Document]) -> list[Exception | None]:
        """Insert `documents` in one round trip, each on its own: the outcome per document,
        None when it was stored, else its error (AlreadyExists for a unique index). A failure
        of the command as a whole raises, as any call does (the group commit's writes)."""
        if not documents:
            return []
        try:
            await self.collection.insert_many(list(documents), ordered=False)
        except BulkWriteError as exc:
            if exc.details.get("writeConcernErrors"):
                raise
            outcomes: list[Exception | None] = [None] * len(documents)
            for error in exc.details.get("writeErrors", []):
                code = int(error.get("code", 0))
                kind = DuplicateKeyError if code == 11000 else OperationFailure
                outcomes[int(error["index"])] = translate(
                    kind(str(error.get("errmsg")), code, error)
                )
            return outcomes
        return [None] * len(documents)

    async def get(self, ident: str, projection: Document | None = None) -> Document | None:
        return await self.collection.find_one({"_id": ident}, projection)

    async def find_one(
        self, query: Document, projection: Document | None = None
    ) -> Document | None:
        return await self.collection.find_one(query, projection)

    async def find(
        self,
        query: Document,
        projection: Document | None = None,
        *,
        sort: list[tuple[str, int]] | None = None,
        limit: int = 0,
    ) -> list[Document]:
        cursor = self.collection.find(query, projection, sort=sort or [("_id", ASCENDING)])
        if limit:
            cursor = cursor.limit(limit)
        return await cursor.to_list(length=None)

    async def count(self, query: Document) -> int:
        return await self.collection.count_documents(query)

    async def update_one(self, query: Document, update: Document, *, upsert: bool = False) -> int:
        """Apply `update` to the first match; the number of documents matched (0 or 1)."""
        result = await self.collection.update_one(query, update, upsert=upsert)
        return result.matched_count + (1 if result.upserted_id is not None else 0)

    async def update_many(self, query: Document, update: Document) -> int:
        result = await self.collection.update_many(query, update)
        return result.modified_count

    async def find_one_and_update(
        self,
        query: Document,
        update: Document,
        *,
        projection: Document | None = None,
        return_new: bool = True,
    ) -> Document | None:
        return await self.collection.find_one_and_update(
            query,
            update,
            projection=projection,
            return_document=ReturnDocument.AFTER if return_new else ReturnDocument.BEFORE,
        )

    async def delete_one(self, query: Document) -> int:
        return (await self.collection.delete_one(query)).deleted_count

    async def delete_many(self, query: Document) -> int:
        return (await self.collection.delete_many(query)).deleted_count

    async def page(
        self,
        query: Document,
        paging: PageRequest,
        *,
        field: str = "_id",
        ascending: bool = True,
        projection: Document | None = None,
    ) -> Page:
        return await paginate(
            self.collection,
            query,
            field=field,
            ascending=ascending,
            paging=paging,
            projection=projection,
        )
