"""Login rate limits that hold under concurrency: per account, per client IP, and overall.

An attempt reserves its place on every counter before its password is checked, with one atomic
check-and-increment per counter (`Counters.limited_increment`: a Lua script on Redis, no await in
between in process), so a burst of parallel guesses cannot all read "11 failures so far" and all
go ahead. A wrong password keeps the reservations: they are the failures. A right one resets the
account's counter (WildDuck's rule) and gives back its place on the IP and global counters, so
logging in to one's own account never buys more guesses at somebody else's. An attempt that ends
in neither (an unexpected error) gives its places back.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from wildpy import errors
from wildpy.config import LimitsConfig
from wildpy.counters import Counters, CounterState
from wildpy.errors import LimitState

#: failed logins per account (or per login name naming no account) and window: WildDuck's
ACCOUNT_FAILURES = 12
ACCOUNT_WINDOW = 120
#: IPv6 clients are counted per /64: one host usually holds a whole /64 and can pick any of it
IPV6_PREFIX = 64


@dataclass(frozen=True)
class WindowLimit:
    """At most `failures` failed logins per `window` seconds; 0 failures: no limit."""

    failures: int
    window: int


@dataclass(frozen=True)
class _Held:
    key: str
    limit: WindowLimit
    state: CounterState


def client_key(ip: str | None) -> str | None:
    """The counter name of a client address: IPv4 as is, IPv6 by its /64; None if not an IP."""
    if not ip:
        return None
    try:
        address = ipaddress.ip_address(ip.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/{IPV6_PREFIX}", strict=False))
    return str(address)


class Reservation:
    """The places one login attempt holds; settle it with `succeeded()` or `cancel()`, or keep
    it (a failed login)."""

    def __init__(self, counters: Counters, account: _Held, others: list[_Held]) -> None:
        self._counters = counters
        self._account = account
        self._others = others

    @property
    def limit(self) -> LimitState:
        """Where the account stands after this attempt failed (the X-RateLimit-* headers)."""
        limit, state = self._account.limit, self._account.state
        return LimitState(limit.failures, limit.failures - state.value, state.ttl or limit.window)

    async def succeeded(self) -> None:
        await self._counters.delete(self._account.key)
        for held in self._others:
            await self._counters.release(held.key, 1)

    async def cancel(self) -> None:
        for held in [self._account, *self._others]:
            await self._counters.release(held.key, 1)


class LoginLimits:
    """Reserves login attempts on the account, client IP and global counters."""

    def __init__(self, counters: Counters, settings: LimitsConfig) -> None:
        self._counters = counters
        self.account = WindowLimit(ACCOUNT_FAILURES, ACCOUNT_WINDOW)
        self.per_ip = WindowLimit(settings.auth_ip_failures, settings.auth_ip_window)
        self.overall = WindowLimit(settings.auth_global_failures, settings.auth_global_window)

    async def reserve(self, account_key: str, client_ip: str | None) -> Reservation:
        """One place on each counter, or RateLimitedError (holding none) from the first full one.

        The account comes first, so a refused account costs the IP and global counters nothing.
        """
        plan = [(f"auth:{account_key}", self.account)]
        client = client_key(client_ip)
        if client is not None and self.per_ip.failures:
            plan.append((f"authip:{client}", self.per_ip))
        if self.overall.failures:
            plan.append(("authall", self.overall))
        held: list[_Held] = []
        for key, limit in plan:
            state = await self._counters.limited_increment(key, 1, limit.failures, limit.window)
            if not state.allowed:
                for earlier in held:
                    await self._counters.release(earlier.key, 1)
                raise _refused(limit, state)
            held.append(_Held(key, limit, state))
        return Reservation(self._counters, held[0], held[1:])


def _refused(limit: WindowLimit, state: CounterState) -> errors.RateLimitedError:
    retry_after = state.ttl or limit.window
    refused = errors.RateLimitedError(
        "Authentication was rate limited",
        details={"limit": limit.failures, "window": limit.window, "retry_after": retry_after},
    )
    refused.limit = LimitState(limit.failures, 0, retry_after)
    return refused
