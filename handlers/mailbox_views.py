"""How the REST API shows a mailbox: WildDuck's shape (absent keys are left out)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from wildpy.mailbox_paths import name_of


def mailbox_view(mailbox: Mapping[str, Any], *, counters: bool, sizes: bool) -> dict[str, Any]:
    """A mailbox as the API shows it (WildDuck's shape: absent keys are left out)."""
    row: dict[str, Any] = {
        "id": mailbox["_id"],
        "name": name_of(mailbox["path"]),
        "path": mailbox["path"],
    }
    if mailbox.get("specialUse"):
        row["specialUse"] = mailbox["specialUse"]
    row.update(
        modifyIndex=int(mailbox.get("modifyIndex", 0)),
        subscribed=bool(mailbox.get("subscribed", True)),
        hidden=bool(mailbox.get("hidden", False)),
        encryptMessages=bool(mailbox.get("encryptMessages", False)),
    )
    if mailbox.get("retention"):
        row["retention"] = int(mailbox["retention"])
    if sizes:
        row["size"] = int(mailbox.get("size", 0))
    if counters:
        row["total"] = int(mailbox.get("total", 0))
        row["unseen"] = int(mailbox.get("unseen", 0))
    return row
