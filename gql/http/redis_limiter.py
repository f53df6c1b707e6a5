"""Rate limits counted in Redis (CERTGRAPH_REDIS_URL): every worker and instance spends from
one bucket per caller, one script call per request. Redis down or slow: requests are served
uncounted (fail open), with one warning a minute; counting resumes when it answers."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from redis.asyncio import Redis
from redis.exceptions import RedisError

from gql.http.redis_client import FailOpen, redacted, redis_client
from gql.settings import Settings

log = logging.getLogger("certgraph.guards")

# TokenBucketLimiter's rule, in one atomic step on Redis's clock (instances' clocks may
# differ). KEYS[1]: the bucket; ARGV: burst, tokens per second, cost, and "admit" (take the
# cost when min(cost, burst) tokens are there, else answer the wait) or "charge" (take it,
# into debt). Answers the seconds to wait, "0" when granted. A bucket expires once it would
# be full again, so Redis keeps only the callers of the last few minutes.
BUCKET_SCRIPT = """
local burst = tonumber(ARGV[1])
local rate = tonumber(ARGV[2]) / 1000
local cost = tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = burst
if state[1] then
  tokens = math.min(burst, tonumber(state[1]) + math.max(0, now - tonumber(state[2])) * rate)
end
local wait = 0
if ARGV[4] == 'charge' then
  tokens = tokens - cost
else
  local need = math.min(cost, burst)
  if tokens >= need then
    tokens = tokens - cost
  else
    wait = (need - tokens) / rate / 1000
  end
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate) + 1000)
return tostring(wait)
"""


class RedisRateLimiter:
    """`burst` requests at once, then `per_minute`, per key, shared through one Redis."""

    def __init__(
        self,
        client: Redis,
        *,
        per_minute: float,
        burst: int,
        prefix: str,
        where: str = "redis",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.rate = per_minute / 60.0
        self.burst = burst
        self.prefix = prefix
        self.where = where
        self.clock = clock
        # Registered once: EVALSHA per request, the script's text sent again only when Redis
        # does not know it (a restarted server).
        self._script = client.register_script(BUCKET_SCRIPT)
        self._redis = FailOpen(
            log,
            failing=f"rate limits not counted, requests served uncounted: {where}",
            recovered=f"rate limits counted in Redis again ({where})",
            clock=lambda: self.clock(),
        )
        self._charges: set[asyncio.Task[None]] = set()

    @classmethod
    def from_settings(cls, settings: Settings, url: str) -> RedisRateLimiter:
        return cls(
            redis_client(url, settings.redis_timeout_seconds),
            per_minute=settings.rate_limit_per_minute,
            burst=settings.rate_limit_burst,
            prefix=settings.redis_key_prefix,
            where=redacted(url),
        )

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    async def _run(self, key: str, cost: float, mode: str) -> float:
        """The script's answer; 0.0 (fail open) when Redis cannot be asked or does not answer."""
        if not self._redis.available():
            return 0.0
        try:
            answer = await self._script(
                keys=[f"{self.prefix}ratelimit:{key}"],
                args=[self.burst, self.rate, cost, mode],
            )
        except (RedisError, OSError) as exc:  # TimeoutError is an OSError
            self._redis.failed(exc)
            return 0.0
        self._redis.answered()
        return float(answer)

    async def admit(self, key: str) -> float:
        return await self._run(key, 1.0, "admit")

    def charge(self, key: str, cost: float) -> asyncio.Task[None] | None:
        if cost <= 0 or not self.enabled:
            return None
        task = asyncio.get_running_loop().create_task(self._charge(key, cost))
        self._charges.add(task)
        task.add_done_callback(self._charges.discard)
        return task

    async def _charge(self, key: str, cost: float) -> None:
        await self._run(key, cost, "charge")

    async def aclose(self) -> None:
        if self._charges:
            await asyncio.gather(*self._charges, return_exceptions=True)
        await self.client.aclose()
