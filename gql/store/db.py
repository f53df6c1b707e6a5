"""Database configuration and the write-transaction discipline shared by every use case."""

from __future__ import annotations

import asyncio
import random
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from tortoise import Tortoise
from tortoise.backends.base.client import BaseDBAsyncClient, TransactionalDBClient
from tortoise.backends.sqlite.client import (
    SqliteClient,
    SqliteTransactionContext,
    SqliteTransactionWrapper,
)
from tortoise.connection import get_connection
from tortoise.exceptions import OperationalError, TransactionManagementError
from tortoise.transactions import in_transaction

from gql.settings import Settings, get_settings

MODELS_MODULE = "gql.store.models"
MIGRATIONS_MODULE = "gql.store.migrations"

T = TypeVar("T")


def normalise_url(url: str, busy_timeout_ms: int = 5000) -> str:
    """Return a Tortoise URL: postgres:// gets asyncpg, SQLite gets WAL and a busy timeout.

    The SQLite file's directory is created so a fresh checkout can start without set-up.
    """
    if url.startswith("postgresql://"):
        url = "postgres://" + url[len("postgresql://") :]
    if url.startswith("sqlite://"):
        parts = urlsplit(url)
        path = url[len("sqlite://") :].split("?", 1)[0]
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        query = dict(parse_qsl(parts.query))
        query.setdefault("journal_mode", "WAL")
        query.setdefault("busy_timeout", str(busy_timeout_ms))
        query.setdefault("synchronous", "NORMAL")
        return "sqlite://" + path + "?" + urlencode(query)
    return urlunsplit(urlsplit(url))


def tortoise_config(url: str | None = None, settings: Settings | None = None) -> dict[str, Any]:
    settings = settings or get_settings()
    db_url = normalise_url(url or settings.database_url, settings.sqlite_busy_timeout_ms)
    return {
        "connections": {"default": db_url},
        "apps": {
            "models": {
                "models": [MODELS_MODULE],
                "migrations": MIGRATIONS_MODULE,
                "default_connection": "default",
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


# `tortoise makemigrations` reads this through [tool.tortoise] in pyproject.toml.
TORTOISE_ORM = tortoise_config(url="sqlite://:memory:", settings=Settings())


async def open_database(url: str | None = None) -> None:
    # uvicorn runs the lifespan in another task than the requests: the global fallback (as
    # tortoise.contrib.starlette.RegisterTortoise sets it) lets request tasks find the ORM.
    await Tortoise.init(config=tortoise_config(url), _enable_global_fallback=True)


async def close_database() -> None:
    await Tortoise.close_connections()


async def migrate_database(url: str | None = None) -> list[str]:
    """Apply every pending migration; return the names applied."""
    from tortoise.migrations.api.migrate import migrate

    applied: list[str] = []

    def progress(event: str, app_label: str, name: str) -> None:
        if event.endswith("done") or event == "apply_done":
            applied.append(f"{app_label}.{name}")

    try:
        await migrate(config=tortoise_config(url), progress=progress)
    finally:
        # migrate() opens its own connections; leaving them open keeps the process alive
        await Tortoise.close_connections()
    return applied


def dialect() -> str:
    return str(get_connection("default").capabilities.dialect)


def _is_transient(exc: BaseException) -> bool:
    text = str(exc).lower()
    return any(
        marker in text
        for marker in ("database is locked", "could not serialize", "deadlock detected", "busy")
    )


class _ImmediateTransaction(SqliteTransactionWrapper):
    """A SQLite transaction opened with BEGIN IMMEDIATE instead of Tortoise's deferred BEGIN."""

    async def begin(self) -> None:
        try:
            await self._connection.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:  # locked past busy_timeout: let retrying() see it
            raise OperationalError(str(exc)) from exc


@asynccontextmanager
async def write_transaction() -> AsyncIterator[BaseDBAsyncClient]:
    """A transaction that holds the database's write lock from its first statement.

    SQLite opens transactions with a deferred BEGIN: one that reads and then writes fails at
    once with "database is locked" when another process wrote in between, whatever
    busy_timeout says. BEGIN IMMEDIATE takes the write lock up front (waiting for it under
    busy_timeout), so reads inside see the state the write will change. Inside another
    transaction this is a savepoint. PostgreSQL needs nothing here: use cases lock the rows
    they decide on.
    """
    client = get_connection("default")
    if isinstance(client, SqliteClient) and not isinstance(client, TransactionalDBClient):
        async with SqliteTransactionContext(_ImmediateTransaction(client), client._lock) as conn:
            yield conn
        return
    async with in_transaction() as conn:
        yield conn


async def retrying(action: Callable[[], Awaitable[T]], attempts: int = 5) -> T:
    """Run a whole use case again when the database reports a transient conflict."""
    for attempt in range(attempts):
        try:
            return await action()
        except (OperationalError, TransactionManagementError) as exc:
            if attempt == attempts - 1 or not _is_transient(exc):
                raise
            await asyncio.sleep(random.uniform(0.01, 0.05) * (2**attempt))
    raise AssertionError("unreachable")
