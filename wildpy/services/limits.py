"""Per-user limits: the global defaults, the counters behind them, and how they are reported.

A user's limit field of 0 (or missing) means "the global default", as in WildDuck.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from wildpy.counters import Counters

GIB = 1024**3

#: user field -> global default
DEFAULT_LIMITS: dict[str, int] = {
    "quota": GIB,
    "recipients": 2000,
    "forwards": 2000,
    "filters": 400,
    "imapMaxUpload": 10 * GIB,
    "imapMaxDownload": 10 * GIB,
    "pop3MaxDownload": 10 * GIB,
    "pop3MaxMessages": 250,
    "imapMaxConnections": 15,
    "receivedMax": 60,
}

LIMIT_FIELDS = tuple(DEFAULT_LIMITS)


@dataclass(frozen=True)
class WindowedLimit:
    """A limit counted in a time window: report key, user field, counter key prefix, window."""

    report_as: str
    field: str
    counter_prefix: str
    window: int


WINDOWED_LIMITS = (
    WindowedLimit("recipients", "recipients", "wdr:", 86400),
    WindowedLimit("forwards", "forwards", "wdf:", 86400),
    WindowedLimit("received", "receivedMax", "rl:rcpt:", 60),
    WindowedLimit("imapUpload", "imapMaxUpload", "iup:", 86400),
    WindowedLimit("imapDownload", "imapMaxDownload", "idw:", 86400),
    WindowedLimit("pop3Download", "pop3MaxDownload", "pdw:", 86400),
)

#: changing a limit resets the counter behind it (WildDuck does the same)
COUNTER_OF_FIELD = {limit.field: limit.counter_prefix for limit in WINDOWED_LIMITS}


def allowed(user: dict[str, Any], field: str) -> int:
    return int(user.get(field) or DEFAULT_LIMITS[field])


async def describe_limits(counters: Counters, user: dict[str, Any]) -> dict[str, Any]:
    """The `limits` object of GET /users/:id."""
    user_id = user["_id"]
    keys = [f"{limit.counter_prefix}{user_id}" for limit in WINDOWED_LIMITS]
    keys.append(f"imapconn:{user_id}")
    states = await counters.read(keys)
    limits: dict[str, Any] = {
        "quota": {"allowed": allowed(user, "quota"), "used": int(user.get("storageUsed", 0))},
    }
    for limit, state in zip(WINDOWED_LIMITS, states, strict=False):
        limits[limit.report_as] = {
            "allowed": allowed(user, limit.field),
            "used": state.value,
            "ttl": state.ttl if state.ttl is not None else False,
        }
    limits["filters"] = {
        "allowed": allowed(user, "filters"),
        "used": int(user.get("filterCount", 0)),
    }
    limits["pop3MaxMessages"] = {"allowed": allowed(user, "pop3MaxMessages")}
    limits["imapMaxConnections"] = {
        "allowed": allowed(user, "imapMaxConnections"),
        "used": states[-1].value,
    }
    return limits
