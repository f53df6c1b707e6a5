"""Redis as certgraph uses it (CERTGRAPH_REDIS_URL): a client that fails fast, and the
fail-open rule of everything shared through it (rate limits, persisted queries): a Redis
that does not answer is skipped for a second at a time, with one warning a minute."""

from __future__ import annotations

import logging
from collections.abc import Callable
from urllib.parse import urlsplit

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

WARN_EVERY_SECONDS = 60.0
# After a failure, Redis is tried again after this long: meanwhile requests do not each wait
# out a timeout of their own.
RETRY_AFTER_FAILURE_SECONDS = 1.0


def redis_client(url: str, timeout_seconds: float) -> Redis:
    return Redis.from_url(
        url,
        socket_timeout=timeout_seconds,
        socket_connect_timeout=timeout_seconds,
        # One attempt: a retry would double the wait of a request while Redis is away.
        retry=Retry(NoBackoff(), 0),
    )


def redacted(url: str) -> str:
    """The Redis URL without its password, for the log."""
    parts = urlsplit(url)
    host = parts.hostname or parts.path or "?"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}"


class FailOpen:
    """Whether to ask Redis now, and the log lines when it stops and starts answering.

    `failing` says what goes without Redis (it completes "… did not answer (<error>); …").
    """

    def __init__(
        self,
        log: logging.Logger,
        *,
        failing: str,
        recovered: str,
        clock: Callable[[], float],
    ) -> None:
        self.log = log
        self.failing = failing
        self.recovered = recovered
        self.clock = clock
        self._down_until: float | None = None
        self._warned_at: float | None = None

    def available(self) -> bool:
        return self._down_until is None or self.clock() >= self._down_until

    def failed(self, exc: BaseException) -> None:
        now = self.clock()
        self._down_until = now + RETRY_AFTER_FAILURE_SECONDS
        if self._warned_at is None or now - self._warned_at >= WARN_EVERY_SECONDS:
            self._warned_at = now
            self.log.warning(
                "%s: Redis did not answer (%s: %s) (this warning at most once a minute)",
                self.failing,
                type(exc).__name__,
                exc,
            )

    def answered(self) -> None:
        if self._down_until is not None:
            self._down_until = None
            self.log.info("%s", self.recovered)
