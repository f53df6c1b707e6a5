"""Several `certgraph serve` instances of one deployment (docs/deploy.md): one PostgreSQL
database and one Redis shared, each instance with its own port, workers and data directory,
the secret key and every other shared setting the same, as behind a load balancer.

Tests take the `instances` fixture and start the instances with the settings they need.
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from redis.asyncio import Redis

from tests.proof.live import ON_POSTGRES, Deployment, Server

REDIS_URL = "redis://127.0.0.1:6379/0"


@dataclass
class Instances:
    """The instances of `deployment`, started by `start`; stopped with the deployment."""

    deployment: Deployment
    redis_prefix: str
    servers: list[Server] = field(default_factory=list)

    def data_dir(self, index: int) -> Path:
        return self.deployment.directory / f"instance-{index}" / "data"

    async def start(self, count: int = 2, *, workers: int = 2, **overrides: str) -> list[Server]:
        """`count` more instances of `workers` workers each, with `overrides` on top of the
        shared settings; answers once every one is ready (/readyz 200)."""
        first = len(self.servers)
        started = [
            self.deployment.server(
                workers=workers, CERTGRAPH_DATA_DIR=str(self.data_dir(first + i)), **overrides
            )
            for i in range(count)
        ]
        await asyncio.gather(*(server.start() for server in started))
        self.servers.extend(started)
        return started

    def http(self, server: Server, connections: int = 10) -> httpx.AsyncClient:
        """A client of one instance; `connections` of them open at once, all kept open, so a
        burst really is concurrent and Server.connections_by_process can tell which worker
        accepted each."""
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        return httpx.AsyncClient(base_url=server.url, timeout=120.0, limits=limits)

    @asynccontextmanager
    async def workers_serving(self, servers: list[Server]) -> AsyncIterator[list[set[int]]]:
        """For each of `servers`, the pids of the worker processes seen holding a client
        connection while the block ran (sampled from /proc: a refused request's connection
        is closed at once, so one look at the end would miss them)."""
        seen: list[set[int]] = [set() for _ in servers]
        done = asyncio.Event()

        def look() -> None:
            for pids, server in zip(seen, servers, strict=True):
                pids.update(server.connections_by_process())

        async def sample() -> None:
            while not done.is_set():
                look()
                await asyncio.sleep(0.01)

        sampler = asyncio.create_task(sample())
        try:
            yield seen
        finally:
            look()
            done.set()
            await sampler


@pytest_asyncio.fixture
async def instances(deployment: Deployment) -> AsyncIterator[Instances]:
    """Instances on the deployment's PostgreSQL database (skipped on SQLite, whose file one
    machine's processes share: see test_live_concurrency) and the Redis on 127.0.0.1:6379,
    under a key prefix of their own, deleted afterwards."""
    if not ON_POSTGRES:
        pytest.skip("several instances share a PostgreSQL database; SQLite is one machine's")
    prefix = f"certgraph-proof:{uuid.uuid4().hex}:"
    # Shared by every instance, and by the CLI: the signing key (a download URL signed by
    # one instance is checked by another) and the Redis the rate limits are counted in.
    deployment.settings.update(
        {
            "CERTGRAPH_SECRET_KEY": secrets.token_urlsafe(32),
            "CERTGRAPH_REDIS_URL": REDIS_URL,
            "CERTGRAPH_REDIS_PREFIX": prefix,
        }
    )
    redis = Redis.from_url(REDIS_URL)
    try:
        yield Instances(deployment, prefix)
    finally:
        deployment.stop_servers()
        keys = [key async for key in redis.scan_iter(match=prefix + "*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()
