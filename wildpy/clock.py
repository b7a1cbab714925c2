"""The one clock of wildpy: the current time as MongoDB will store it.

BSON dates hold milliseconds, so a time with microseconds reads back different from what was
written; taking the time at millisecond precision makes what a service just wrote, what it
answers and what it reads back later the same value.
"""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """Now, timezone-aware in UTC, truncated to the millisecond (as BSON stores it)."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond - now.microsecond % 1000)


def epoch_ms(when: datetime | None = None) -> int:
    """`when` (default: now) as epoch milliseconds, the unit of WildDuck's expiry times (`rdate`),
    thread subject-key ages and attachment upload leases."""
    return int((when or utcnow()).timestamp() * 1000)
