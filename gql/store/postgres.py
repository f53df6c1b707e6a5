"""certgraph's PostgreSQL backend for Tortoise: Tortoise's asyncpg client, keeping the pool it
creates in hand so its use can be reported (/metrics); one pooled connection lent to a whole
request (`lent_connection`); and connections outside the pool.

Named as the `engine` of PostgreSQL connections by gql.store.db.tortoise_config.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from tortoise.backends.asyncpg.client import AsyncpgDBClient, TransactionWrapper
from tortoise.backends.base.client import (
    PoolConnectionWrapper,
    TransactionalDBClient,
    TransactionContext,
    TransactionContextPooled,
)
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.connection import get_connections
from tortoise.exceptions import TransactionManagementError

from gql.store.statements import StatementLog


class LentConnection:
    """One pooled connection for a request's statements, taken at its first statement and
    given back when the request waits on its client or ends: asyncpg resets a connection
    (advisory locks, cursors, LISTEN, session settings) each time it returns to the pool, a
    round trip that per statement cost as many as the statements themselves. One statement
    or transaction at a time (a request's resolvers run concurrently), as on SQLite's one
    connection.
    """

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self.lock = asyncio.Lock()
        self.connection: asyncpg.Connection | None = None
        # Ended: a task the request started and left running uses the pool again.
        self.ended = False

    async def take(self) -> asyncpg.Connection:
        if self.connection is None:
            self.connection = await self.pool.acquire()
        return self.connection

    async def give_back(self, *, end: bool = False) -> None:
        """Back to the pool (the next statement takes another); unless `end`, only when no
        statement or transaction is using it, which will give it back itself later."""
        if not end and self.lock.locked():
            return
        async with self.lock:
            self.ended = self.ended or end
            connection, self.connection = self.connection, None
            if connection is not None:
                await self.pool.release(connection)


_lent: ContextVar[LentConnection | None] = ContextVar("certgraph_lent_connection", default=None)


class _LentStatement:
    """acquire_connection() inside a request: the request's connection, one user at a time;
    the pool's, as after the request, for one that waited past the request's end."""

    __slots__ = ("client", "fallback", "lent")

    def __init__(self, client: PooledPostgresClient, lent: LentConnection) -> None:
        self.client = client
        self.lent = lent
        self.fallback: PoolConnectionWrapper[Any] | None = None

    async def __aenter__(self) -> asyncpg.Connection:
        await self.lent.lock.acquire()
        if self.lent.ended:
            self.lent.lock.release()
            self.fallback = PoolConnectionWrapper(self.client, self.client._pool_init_lock)
            return await self.fallback.__aenter__()
        try:
            return await self.lent.take()
        except BaseException:
            self.lent.lock.release()
            raise

    async def __aexit__(self, *exc_info: Any) -> None:
        if self.fallback is not None:
            await self.fallback.__aexit__(*exc_info)
        else:
            self.lent.lock.release()


class _LentTransaction(TransactionContext):
    """A transaction on the request's connection, holding it until commit or rollback
    (Tortoise's TransactionContextPooled, with the lent connection for the pool's); one that
    waited past the request's end takes the pool's, as after the request."""

    def __init__(
        self, client: TransactionWrapper, lent: LentConnection, pool_init_lock: asyncio.Lock
    ) -> None:
        self.client = client
        self.lent = lent
        self.pool_init_lock = pool_init_lock
        self.fallback: TransactionContextPooled | None = None

    async def __aenter__(self) -> TransactionalDBClient:
        await self.lent.lock.acquire()
        if self.lent.ended:
            self.lent.lock.release()
            self.fallback = TransactionContextPooled(self.client, self.pool_init_lock)
            return await self.fallback.__aenter__()
        try:
            self.client._connection = await self.lent.take()
            self.token = get_connections().set(self.client.connection_name, self.client)
            try:
                await self.client.begin()
            except BaseException:
                get_connections().reset(self.token)
                raise
        except BaseException:
            self.lent.lock.release()
            raise
        return self.client

    async def __aexit__(self, exc_type: Any, exc_val: Any, exc_tb: Any) -> None:
        if self.fallback is not None:
            await self.fallback.__aexit__(exc_type, exc_val, exc_tb)
            return
        try:
            if not self.client._finalized:
                if exc_type:
                    if exc_type is not TransactionManagementError:
                        await self.client.rollback()
                else:
                    await self.client.commit()
        finally:
            get_connections().reset(self.token)
            self.lent.lock.release()


class PooledPostgresClient(AsyncpgDBClient):
    pool: asyncpg.Pool | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # its transactions take the same; Tortoise calls only debug() on it
        self.log = StatementLog(self.log)  # type: ignore[assignment]

    def _lent(self) -> LentConnection | None:
        lent = _lent.get()
        if lent is None or lent.ended or lent.pool is not self.pool:
            return None
        return lent

    def acquire_connection(self) -> Any:
        lent = self._lent()
        return super().acquire_connection() if lent is None else _LentStatement(self, lent)

    def _in_transaction(self) -> TransactionContext:
        lent = self._lent()
        if lent is None:
            return super()._in_transaction()
        return _LentTransaction(TransactionWrapper(self), lent, self._pool_init_lock)

    @asynccontextmanager
    async def lent_connection(self) -> AsyncIterator[LentConnection | None]:
        """Within: this task's statements (and those of tasks it starts) share one pooled
        connection, given back on leaving; None (statements use the pool as usual) before the
        pool exists or inside another lent connection."""
        if self.pool is None or _lent.get() is not None:
            yield None
            return
        lent = LentConnection(self.pool)
        token = _lent.set(lent)
        try:
            yield lent
        finally:
            _lent.reset(token)
            await lent.give_back(end=True)

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
