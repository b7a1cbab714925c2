"""The layer rules that a grep can check: storage owns every query, handlers own no storage."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: a driver-style call whose query is written out on the spot
_LITERAL_QUERY = re.compile(
    r"\.(find|find_one|update_one|update_many|delete_one|delete_many|find_one_and_update"
    r"|aggregate|count|count_documents)\(\s*[\[{]"
)


def _sources(*folders: str) -> dict[str, str]:
    return {
        str(path.relative_to(ROOT)): path.read_text()
        for folder in folders
        for path in sorted((ROOT / folder).rglob("*.py"))
    }


def test_services_write_no_queries() -> None:
    """The services and the message store call repository methods named after what they do."""
    found = [
        f"{name}: {match.group(0)}"
        for name, text in _sources("wildpy/services", "wildpy/store").items()
        for match in _LITERAL_QUERY.finditer(text)
    ]
    assert found == []


def test_handlers_reach_no_storage() -> None:
    """Handlers call services by intention: no storage import, no projection handed down."""
    storage = re.compile(r"^\s*(from|import)\s+(wildpy\.)?storage\b", re.MULTILINE)
    # `{"_id": 1}` is how a projection was handed to `load`; WildDuck bodies hold 0s and 1s too
    projection = re.compile(r"\{\s*\"_id\"\s*:\s*1\s*\}|projection")
    found = [
        f"{name}: {match.group(0)}"
        for name, text in _sources("handlers").items()
        for pattern in (storage, projection)
        for match in pattern.finditer(text)
    ]
    assert found == []
