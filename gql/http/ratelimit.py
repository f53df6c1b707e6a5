"""Per-caller token buckets: 429 RATE_LIMITED with Retry-After.

The caller is who the verified token says (`user:<id>`); a request without a valid token
spends from its client address's bucket (`address:<ip>`), so inventing tokens buys nothing.
Buckets live in the worker process, or in Redis when CERTGRAPH_REDIS_URL is set
(gql/http/redis_limiter.py; docs/reliability.md).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Protocol

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gql.http.errors import language_of, send_error
from gql.http.scope import authentication_of, client_address, is_guarded
from gql.i18n import t

RATE_LIMITED_CODE = "RATE_LIMITED"
_LIMITER = "certgraph.rate_limit"


class RateLimiter(Protocol):
    """What the middleware needs of a limiter: the buckets of this process or Redis's."""

    @property
    def enabled(self) -> bool: ...

    async def admit(self, key: str) -> float:
        """Take one token for `key`: 0.0 when granted, else the seconds until it would be."""
        ...

    def charge(self, key: str, cost: float) -> Awaitable[None] | None:
        """Take `cost` more tokens, into debt if need be; what is left to await, if anything."""
        ...

    async def aclose(self) -> None: ...


class TokenBucketLimiter:
    """`burst` requests at once, then `per_minute`; at most `max_keys` buckets.

    Only a bucket that has refilled completely is forgotten to make room (it holds nothing a
    fresh one would not), so no flood of new keys can hand a throttled caller a new burst.
    When every bucket still holds a debt, a new key waits until the oldest one has refilled.
    """

    def __init__(
        self,
        *,
        per_minute: float,
        burst: int,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self.max_keys = max_keys
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def __len__(self) -> int:
        return len(self._buckets)

    def _tokens(self, entry: tuple[float, float], now: float) -> float:
        tokens, last = entry
        return min(self.burst, tokens + (now - last) * self.rate)

    def _make_room(self, now: float) -> float:
        """Forget refilled buckets, oldest first; 0.0 when there is room, else the wait."""
        while len(self._buckets) >= self.max_keys:
            key, entry = next(iter(self._buckets.items()))
            tokens = self._tokens(entry, now)
            if tokens < self.burst:
                return (self.burst - tokens) / self.rate
            del self._buckets[key]
        return 0.0

    def acquire(self, key: str, cost: float = 1.0) -> float:
        """Take `cost` tokens for `key`: 0.0 when granted, else the seconds until it would be."""
        now = self.clock()
        entry = self._buckets.pop(key, None)
        if entry is None:
            wait = self._make_room(now)
            if wait > 0:
                return wait
            tokens = self.burst
        else:
            tokens = self._tokens(entry, now)
        wait = 0.0
        if tokens >= min(cost, self.burst):
            tokens -= cost  # may go below zero: a costly request is paid for by the next ones
        else:
            wait = (min(cost, self.burst) - tokens) / self.rate
        self._buckets[key] = (tokens, now)
        return wait

    async def admit(self, key: str) -> float:
        return self.acquire(key)

    async def aclose(self) -> None:
        return None

    def charge(self, key: str, cost: float) -> None:
        """Take `cost` more tokens from an admitted caller's bucket, into debt if need be."""
        if cost <= 0 or not self.enabled:
            return
        now = self.clock()
        entry = self._buckets.pop(key, None)
        tokens = self.burst if entry is None else self._tokens(entry, now)
        self._buckets[key] = (tokens - cost, now)


def rate_limit_key(scope: Scope) -> str:
    authentication = authentication_of(scope)
    if authentication is not None and authentication.actor is not None:
        return f"user:{authentication.actor.user_id}"
    return "address:" + client_address(scope)


class RateLimiting:
    """What the GraphQL layer needs to charge a request by its cost."""

    def __init__(self, limiter: RateLimiter, key: str) -> None:
        self.limiter = limiter
        self.key = key
        self._pending: list[asyncio.Future[None]] = []

    def charge(self, cost: float) -> None:
        # Redis's charge runs beside the execution; the answer waits for it (see settled).
        pending = self.limiter.charge(self.key, cost)
        if pending is not None:
            self._pending.append(asyncio.ensure_future(pending))

    async def settled(self) -> None:
        """Wait for the charges still on their way, so the caller's next request sees them."""
        while self._pending:
            await self._pending.pop()


def rate_limiting_of(scope: Scope) -> RateLimiting | None:
    found = scope.get("state", {}).get(_LIMITER)
    return found if isinstance(found, RateLimiting) else None


class RateLimitMiddleware:
    """Runs after authentication, so the key is the verified caller."""

    def __init__(self, app: ASGIApp, limiter: RateLimiter) -> None:
        self.app = app
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.limiter.enabled or not is_guarded(scope):
            await self.app(scope, receive, send)
            return
        key = rate_limit_key(scope)
        wait = await self.limiter.admit(key)
        if wait <= 0:
            limiting = RateLimiting(self.limiter, key)
            scope.setdefault("state", {})[_LIMITER] = limiting

            async def send_when_charged(message: Message) -> None:
                if message["type"] == "http.response.start":
                    await limiting.settled()
                await send(message)

            await self.app(scope, receive, send_when_charged)
            return
        retry_after = max(1, math.ceil(wait))
        if key.startswith("user:"):
            message = t(
                "too many requests for this token; retry in {seconds} s", seconds=retry_after
            )
        else:
            message = t(
                "too many requests for this address; retry in {seconds} s", seconds=retry_after
            )
        await send_error(
            send,
            429,
            RATE_LIMITED_CODE,
            message,
            language=language_of(scope),
            headers={"Retry-After": str(retry_after)},
            extensions={"retryAfter": retry_after},
        )
