"""Fixtures for the HTTP layer against the real Redis on 127.0.0.1:6379: a key prefix of the
test's own (its keys deleted afterwards), and a TCP relay to Redis the test can take down,
bring back or slow down."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from collections.abc import AsyncIterator

import pytest_asyncio
from redis.asyncio import Redis

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
REDIS_URL = f"redis://{REDIS_HOST}:{REDIS_PORT}/0"


def free_port() -> int:
    """A loopback port nothing listens on (bound and released: the kernel gives it out)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest_asyncio.fixture
async def redis() -> AsyncIterator[Redis]:
    client = Redis.from_url(REDIS_URL)
    try:
        yield client
    finally:
        await client.aclose()


@pytest_asyncio.fixture
async def redis_prefix(redis: Redis) -> AsyncIterator[str]:
    """`certgraph-test:<random>:`, so tests running at once never share a bucket."""
    prefix = f"certgraph-test:{uuid.uuid4().hex}:"
    try:
        yield prefix
    finally:
        keys = [key async for key in redis.scan_iter(match=prefix + "*")]
        if keys:
            await redis.delete(*keys)


class RedisRelay:
    """A loopback port relaying to Redis: `stop` closes it (connections refused, open ones
    cut), `start` reopens it, `delay` holds each chunk from Redis that long."""

    def __init__(self) -> None:
        self.port = free_port()
        self.delay = 0.0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.close()
            await self._server.wait_closed()
            self._server = None

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(REDIS_HOST, REDIS_PORT)
        self._writers.update((writer, up_writer))
        try:
            await asyncio.gather(
                self._pump(reader, up_writer, 0.0), self._pump(up_reader, writer, None)
            )
        finally:
            for each in (writer, up_writer):
                self._writers.discard(each)
                each.close()

    async def _pump(
        self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, delay: float | None
    ) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while chunk := await source.read(65536):
                wait = self.delay if delay is None else delay
                if wait:
                    await asyncio.sleep(wait)
                sink.write(chunk)
                await sink.drain()
        with contextlib.suppress(ConnectionError, OSError, RuntimeError):
            sink.close()


@pytest_asyncio.fixture
async def relay() -> AsyncIterator[RedisRelay]:
    relay = RedisRelay()
    try:
        yield relay
    finally:
        await relay.stop()
