"""Database configuration and the write-transaction discipline shared by every use case.

Everything here takes its configuration as parameters (the app factory and the CLI pass the
settings); SQLite connections use gql.store.sqlite's client.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from tortoise import Tortoise
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.exceptions import OperationalError, TransactionManagementError
from tortoise.transactions import in_transaction

MODELS_MODULE = "gql.store.models"
MIGRATIONS_MODULE = "gql.store.migrations"

T = TypeVar("T")


DEFAULT_BUSY_TIMEOUT_MS = 5000
SQLITE_ENGINE = "gql.store.sqlite"


def normalise_url(url: str, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS) -> str:
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


def tortoise_config(url: str, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS) -> dict[str, Any]:
    db_url = normalise_url(url, busy_timeout_ms)
    connection: str | dict[str, Any] = db_url
    if db_url.startswith("sqlite://"):
        connection = expand_db_url(db_url)
        connection["engine"] = SQLITE_ENGINE
    return {
        "connections": {"default": connection},
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
TORTOISE_ORM = tortoise_config("sqlite://:memory:")


async def open_database(url: str, *, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS) -> None:
    # uvicorn runs the lifespan in another task than the requests: the global fallback (as
    # tortoise.contrib.starlette.RegisterTortoise sets it) lets request tasks find the ORM.
    await Tortoise.init(config=tortoise_config(url, busy_timeout_ms), _enable_global_fallback=True)


async def close_database() -> None:
    await Tortoise.close_connections()


async def migrate_database(
    url: str, *, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS
) -> list[str]:
    """Apply every pending migration; return the names applied."""
    from tortoise.migrations.api.migrate import migrate

    applied: list[str] = []

    def progress(event: str, app_label: str, name: str) -> None:
        if event.endswith("done") or event == "apply_done":
            applied.append(f"{app_label}.{name}")

    try:
        await migrate(config=tortoise_config(url, busy_timeout_ms), progress=progress)
    finally:
        # migrate() opens its own connections; leaving them open keeps the process alive
        await Tortoise.close_connections()
    return applied


class CommitLog:
    """Whether a use case run for one request has committed: a request cut short after that
    must not claim that nothing was kept."""

    def __init__(self) -> None:
        self.committed = False


_commits: ContextVar[CommitLog | None] = ContextVar("certgraph_commits", default=None)


@contextmanager
def logging_commits() -> Iterator[CommitLog]:
    """Record in the returned log whether a use case run inside commits (see note_commit)."""
    log = CommitLog()
    token = _commits.set(log)
    try:
        yield log
    finally:
        _commits.reset(token)


def note_commit() -> None:
    """A use case's transaction committed (called by gql.domain.unit after it does)."""
    log = _commits.get()
    if log is not None:
        log.committed = True


def _is_transient(exc: BaseException) -> bool:
    text = str(exc).lower()
    return any(
        marker in text
        for marker in ("database is locked", "could not serialize", "deadlock detected", "busy")
    )


@asynccontextmanager
async def write_transaction() -> AsyncIterator[BaseDBAsyncClient]:
    """A transaction that holds the database's write lock from its first statement.

    On SQLite (gql.store.sqlite) every transaction begins IMMEDIATE, so reads inside see the
    state the write will change; inside another transaction this is a savepoint. PostgreSQL
    needs nothing here: use cases lock the rows they decide on.
    """
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
