"""Database configuration and the write-transaction discipline shared by every use case.

Everything here takes its configuration as parameters (the app factory and the CLI pass the
settings); SQLite connections use gql.store.sqlite's client.
"""

from __future__ import annotations

import asyncio
import fcntl
import importlib
import os
import pkgutil
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from tortoise import Tortoise
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.connection import get_connection
from tortoise.exceptions import OperationalError, TransactionManagementError
from tortoise.transactions import in_transaction

from gql.store import postgres
from gql.store.course_links import kept_links
from gql.store.postgres import PooledPostgresClient

MODELS_MODULE = "gql.store.models"
MIGRATIONS_MODULE = "gql.store.migrations"
MIGRATIONS_APP = "models"  # the app label migrations are recorded under (tortoise_migrations)
MIGRATIONS_TABLE = "tortoise_migrations"
# The PostgreSQL advisory lock (session level) `certgraph migrate` holds while it applies
# migrations, so instances started together apply each once. Fixed, in every version, since
# an old and a new release must wait for each other too: the bytes "certgrph" as a bigint.
MIGRATION_LOCK_KEY = 7162256626679967848

T = TypeVar("T")


DEFAULT_BUSY_TIMEOUT_MS = 5000
SQLITE_ENGINE = "gql.store.sqlite"
POSTGRES_ENGINE = "gql.store.postgres"


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
    elif db_url.startswith(("postgres://", "asyncpg://")):
        connection = expand_db_url(db_url)
        connection["engine"] = POSTGRES_ENGINE
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
    kept_links.clear()  # what was kept came from another database


async def close_database() -> None:
    await Tortoise.close_connections()
    kept_links.clear()


@asynccontextmanager
async def request_connection() -> AsyncIterator[Callable[[], Awaitable[None]]]:
    """One database connection for the statements within (a request), on PostgreSQL a pooled
    connection lent to it (gql.store.postgres.LentConnection); SQLite has one connection
    already. Yields `pause`: give the connection back while the request waits (on its
    client); the next statement takes one again."""
    try:
        client = get_connection("default")
    except Exception:  # ConfigurationError before the database is opened
        client = None
    if not isinstance(client, PooledPostgresClient):
        yield _nothing_held
        return
    async with client.lent_connection() as lent:
        yield _nothing_held if lent is None else lent.give_back


async def _nothing_held() -> None:
    return None


def pool_usage() -> tuple[int, int] | None:
    """(connections lent out, open) of the PostgreSQL pool; None on SQLite or before it opens."""
    try:
        client = get_connection("default")
    except Exception:  # ConfigurationError before the database is opened
        return None
    return client.pool_usage() if isinstance(client, PooledPostgresClient) else None


@asynccontextmanager
async def migration_lock(
    url: str, waiting: Callable[[], None] | None = None
) -> AsyncIterator[None]:
    """Held while migrations are read and applied, so concurrent `migrate`s run one at a time
    and each finds what the previous one applied.

    PostgreSQL: pg_advisory_lock(MIGRATION_LOCK_KEY) on a connection of its own, held until
    it is released or that session ends (a killed migrate frees it). SQLite: an exclusive
    flock on `<database file>.migrate-lock` (SQLite's own write lock cannot be held across
    the migrations' transactions, which run on another connection); the file stays.
    `waiting` is called once when another holds the lock, before waiting for it.
    """
    db_url = normalise_url(url)
    if db_url.startswith("sqlite://"):
        path = db_url[len("sqlite://") :].split("?", 1)[0]
        if path == ":memory:":
            yield
            return
        descriptor = os.open(f"{path}.migrate-lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if waiting is not None:
                    waiting()
                await asyncio.to_thread(fcntl.flock, descriptor, fcntl.LOCK_EX)
            yield
        finally:
            os.close(descriptor)  # closing the descriptor releases the lock
        return
    connection = await postgres.connect(db_url)
    try:
        if not await connection.fetchval("SELECT pg_try_advisory_lock($1)", MIGRATION_LOCK_KEY):
            if waiting is not None:
                waiting()
            await connection.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
        yield
    finally:
        await connection.close()  # ends the session, which releases its advisory locks


async def migrate_database(
    url: str,
    *,
    busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
    waiting: Callable[[], None] | None = None,
) -> list[str]:
    """Apply every pending migration, under migration_lock; return the names applied."""
    from tortoise.migrations.api.migrate import migrate

    applied: list[str] = []

    def progress(event: str, app_label: str, name: str) -> None:
        if event.endswith("done") or event == "apply_done":
            applied.append(f"{app_label}.{name}")

    async with migration_lock(url, waiting):
        try:
            await migrate(config=tortoise_config(url, busy_timeout_ms), progress=progress)
        finally:
            # migrate() opens its own connections; leaving them open keeps the process alive
            await Tortoise.close_connections()
    return applied


def known_migrations() -> list[str]:
    """Every migration the code carries, as `migrate` names them (`models.0001_initial`)."""
    package = importlib.import_module(MIGRATIONS_MODULE)
    return sorted(
        f"{MIGRATIONS_APP}.{name}"
        for _, name, is_package in pkgutil.iter_modules(package.__path__)
        if not is_package and name[0] not in "_~"
    )


async def pending_migrations(known: Sequence[str]) -> list[str]:
    """Which of `known` the open database has not applied (all of them before the first
    `migrate`); raises when the database does not answer."""
    connection = get_connection("default")
    try:
        rows = await connection.execute_query_dict(f"SELECT app, name FROM {MIGRATIONS_TABLE}")
    except Exception:
        # No migrations table yet, or no database: SELECT 1 says which.
        await connection.execute_query("SELECT 1")
        return list(known)
    applied = {f"{row['app']}.{row['name']}" for row in rows}
    return [name for name in known if name not in applied]


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
