"""The one clock: aware UTC times that survive a round trip through the database unchanged."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from wildpy.clock import epoch_ms, utcnow

ROOT = Path(__file__).resolve().parent.parent


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


def test_epoch_ms_of_a_time_and_of_now() -> None:
    when = datetime(2026, 1, 2, 3, 4, 5, 678_000, tzinfo=UTC)
    assert epoch_ms(when) == int(when.timestamp()) * 1000 + 678
    before = time.time_ns() // 1_000_000
    assert before <= epoch_ms() <= time.time_ns() // 1_000_000


def test_no_other_clock() -> None:
    """Every reading of the wall clock goes through wildpy/clock.py (one precision, one zone)."""
    clock = re.compile(r"datetime\.(now|utcnow)\(|time\.time(_ns)?\(")
    readers = [
        str(path.relative_to(ROOT))
        for folder in ("wildpy", "storage", "handlers")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if clock.search(path.read_text()) and path != ROOT / "wildpy" / "clock.py"
    ]
    assert readers == []
