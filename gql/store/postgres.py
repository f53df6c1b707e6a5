"""certgraph's PostgreSQL backend for Tortoise: Tortoise's asyncpg client, keeping the pool it
creates in hand so its use can be reported (/metrics); and connections outside the pool.

Named as the `engine` of PostgreSQL connections by gql.store.db.tortoise_config.
"""

from __future__ import annotations

from typing import Any

import asyncpg  # type: ignore[import-untyped]
from tortoise.backends.asyncpg.client import AsyncpgDBClient
from tortoise.backends.base.config_generator import expand_db_url


class PooledPostgresClient(AsyncpgDBClient):
    pool: asyncpg.Pool | None = None

    async def create_pool(self, **kwargs: Any) -> asyncpg.Pool:
        pool = await super().create_pool(**kwargs)
        self.pool = pool
        return pool

    def pool_usage(self) -> tuple[int, int] | None:
        """(connections lent out, connections open), None before the pool exists."""
        pool = self.pool
        if pool is None or pool.is_closing():
            return None
        size = pool.get_size()
        return size - pool.get_idle_size(), size


async def connect(url: str) -> asyncpg.Connection:
    """A connection of its own, outside the pool, to the database of a `postgres://` URL
    (tortoise_config's form): for session state such as advisory locks and LISTEN."""
    credentials = expand_db_url(url)["credentials"]
    return await asyncpg.connect(
        host=credentials.get("host"),
        port=credentials.get("port"),
        user=credentials.get("user"),
        password=credentials.get("password"),
        database=credentials.get("database"),
        ssl=credentials.get("ssl"),
    )


client_class = PooledPostgresClient
