"""The one clock: aware UTC times that survive a round trip through the database unchanged."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from wildpy.clock import utcnow


def test_utcnow_is_aware_utc_at_millisecond_precision() -> None:
    before = datetime.now(UTC) - timedelta(milliseconds=1)
    now = utcnow()
    assert now.tzinfo is UTC
    assert now.microsecond % 1000 == 0
    assert before <= now <= datetime.now(UTC)


async def test_utcnow_reads_back_unchanged(runtime: Any) -> None:
    users = runtime.repositories.users
    written = utcnow()
    await users.insert({"_id": "0" * 24, "unameview": "clock-probe", "created": written})
    stored = await users.by_id("0" * 24)
    await users.remove("0" * 24)
    assert stored is not None and stored["created"] == written
