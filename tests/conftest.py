"""Shared fixtures: a fresh database per test (SQLite, or CERTGRAPH_TEST_DATABASE_URL: CI runs
the suite on both), a data directory per test, a small upload limit, an event log, a SQL
statement counter; and the rule that a test starting a process is marked slow."""

from __future__ import annotations

import asyncio
import importlib
import inspect
import logging
import os
import re
import sys
import warnings
from collections.abc import AsyncIterator, Coroutine, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
import pytest_asyncio
from tortoise.backends.base.config_generator import generate_config
from tortoise.backends.base.executor import EXECUTOR_CACHE
from tortoise.connection import get_connection
from tortoise.context import TortoiseContext
from tortoise.warnings import TortoiseLoopSwitchWarning

import gql.app
from gql import Event, clock, hookimpl
from gql.api import schema as schema_module
from gql.api.execution import execution_context_class
from gql.api.schema import CertgraphSchema, build_schema
from gql.domain.dispatcher import DispatchConfig, Dispatcher
from gql.plugins import create_plugin_host, set_plugin_host
from gql.settings import get_settings
from gql.store.course_links import kept_links
from gql.store.db import MODELS_MODULE, POSTGRES_ENGINE, SQLITE_ENGINE, normalise_url

TEST_DATABASE_URL = os.environ.get("CERTGRAPH_TEST_DATABASE_URL", "sqlite://:memory:")
ON_POSTGRES = TEST_DATABASE_URL.startswith(("postgres://", "postgresql://"))
if ON_POSTGRES and (_worker := os.environ.get("PYTEST_XDIST_WORKER")):
    # One database per pytest-xdist worker: each session drops and recreates its own.
    _parts = urlsplit(TEST_DATABASE_URL)
    TEST_DATABASE_URL = urlunsplit(_parts._replace(path=f"{_parts.path}_{_worker}"))


def _maintenance_call(url: str, statement: str) -> Coroutine[Any, Any, None]:
    async def run() -> None:
        parts = urlsplit(url)
        maintenance = urlunsplit(("postgresql", parts.netloc, "/postgres", "", ""))
        connection = await asyncpg.connect(maintenance)
        try:
            await connection.execute(statement.format(name=parts.path.lstrip("/")))
        finally:
            await connection.close()

    return run()


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str | None]:
    """One PostgreSQL database for the session, created fresh and dropped at the end.

    tortoise_test_context would create a database per test and never drop it (so the next
    test's CREATE DATABASE fails); creating one per session and emptying the tables per test
    is also ten times faster.
    """
    if not ON_POSTGRES:
        yield None
        return
    url = normalise_url(TEST_DATABASE_URL)
    asyncio.run(_maintenance_call(url, 'DROP DATABASE IF EXISTS "{name}"'))
    asyncio.run(_maintenance_call(url, 'CREATE DATABASE "{name}"'))
    try:
        yield url
    finally:
        asyncio.run(_maintenance_call(url, 'DROP DATABASE IF EXISTS "{name}"'))


_schema_generated: set[str] = set()
_running: list[pytest.Item] = []


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Iterator[object]:
    _running.append(item)
    try:
        return (yield)
    finally:
        _running.pop()


def _processes_only_in_slow_tests(event: str, args: tuple[Any, ...]) -> None:
    """A test that starts a process (or pip) must be marked slow, so `-m "not slow"` means it."""
    if event not in ("subprocess.Popen", "os.posix_spawn", "os.system", "os.fork"):
        return
    if _running and _running[-1].get_closest_marker("slow") is None:
        raise RuntimeError(
            f"{_running[-1].nodeid} starts a process ({event}, {args[:2]!r}): "
            "mark it @pytest.mark.slow"
        )


sys.addaudithook(_processes_only_in_slow_tests)


@pytest_asyncio.fixture
async def db(postgres_database: str | None) -> AsyncIterator[None]:
    """A fresh, empty schema per test: in-memory SQLite, or PostgreSQL with emptied tables."""
    url = TEST_DATABASE_URL if postgres_database is None else postgres_database
    config = generate_config(url, {"models": [MODELS_MODULE]}, testing=True)
    # The app's own client, as `certgraph serve` has: on SQLite BEGIN IMMEDIATE and its
    # statement count; on PostgreSQL its pool and a connection lent per request.
    config["connections"]["default"]["engine"] = (
        SQLITE_ENGINE if postgres_database is None else POSTGRES_ENGINE
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=TortoiseLoopSwitchWarning)
        async with TortoiseContext() as context:
            await context.init(
                config=config, _create_db=postgres_database is None, use_tz=True, timezone="UTC"
            )
            if postgres_database is None or postgres_database not in _schema_generated:
                await context.generate_schemas(safe=False)
                await _install_triggers(get_connection("default"))
                if postgres_database is not None:
                    _schema_generated.add(postgres_database)
            else:
                await _empty_tables(get_connection("default"))
            yield


# The migrations' triggers (course links versions): generate_schemas makes tables only.
_LINKS_VERSION = importlib.import_module("gql.store.migrations.0007_course_links_version")


async def _install_triggers(connection: Any) -> None:
    for statement in _LINKS_VERSION.trigger_statements(connection.capabilities.dialect):
        await connection.execute_script(statement)


# Every table emptied and every sequence restarted, as TRUNCATE ... RESTART IDENTITY does, in
# one round trip. TRUNCATE makes new files for each table and index (half a second per test
# on a busy 2-core machine); DELETE with the foreign-key triggers off (session_replication_role,
# which needs a superuser, as CI's `postgres` is) takes milliseconds on a test's few rows.
_EMPTY_TABLES = """
BEGIN;
SET LOCAL session_replication_role = replica;
DO $$ DECLARE t text; BEGIN
  FOR t IN SELECT tablename FROM pg_tables WHERE schemaname = 'public' LOOP
    EXECUTE format('DELETE FROM %I', t);
  END LOOP;
END $$;
SELECT setval(c.oid, 1, false) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind = 'S' AND n.nspname = 'public';
COMMIT;
"""
_superuser: list[bool] = []


async def _empty_tables(connection: Any) -> None:
    if not _superuser:
        rows = await connection.execute_query_dict("SELECT current_setting('is_superuser') AS su")
        _superuser.append(rows[0]["su"] == "on")
    if _superuser[0]:
        await connection.execute_script(_EMPTY_TABLES)
        return
    tables = await connection.execute_query_dict(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
    )
    names = ", ".join(f'"{row["tablename"]}"' for row in tables)
    await connection.execute_script(f"TRUNCATE {names} RESTART IDENTITY CASCADE")


_schemas: dict[tuple[object, ...], CertgraphSchema] = {}
# Every setting gql/api/schema.py reads (read from its source, so a new one is never missed).
_SCHEMA_SETTINGS = sorted(set(re.findall(r"\bsettings\.(\w+)", inspect.getsource(schema_module))))


def _built_once(settings: Any = None, extra_extensions: Any = ()) -> CertgraphSchema:
    """create_app's build_schema, one schema per distinct schema settings in a worker.

    Building strawberry's schema is about half of an API test's setup. A schema holds no
    request state (its extensions are made per request), and one is reused only for the same
    values of every setting schema.py reads, the same extra extensions (tracing's are made
    per app, so never shared) and the same execution context class. Tests of build_schema
    itself call it directly and are untouched.
    """
    key = (
        None if settings is None else tuple(getattr(settings, n) for n in _SCHEMA_SETTINGS),
        tuple(extra_extensions),
        execution_context_class(),
    )
    if key not in _schemas:
        _schemas[key] = build_schema(settings, extra_extensions)
    return _schemas[key]


@pytest.fixture(autouse=True, scope="session")
def _one_schema_per_settings() -> Iterator[None]:
    patch = pytest.MonkeyPatch()
    patch.setattr(gql.app, "build_schema", _built_once)
    yield
    patch.undo()


@pytest.fixture(autouse=True)
def _fresh_clock_plugins_and_statements() -> Iterator[None]:
    """Every test starts with the real clock, only the installed plugins, and no cached SQL.

    Tortoise caches each model's INSERT/DELETE text per connection name whatever the dialect:
    a test that opens a SQLite file in-process would leave `?` statements that later tests of
    a PostgreSQL run would send (and the other way round).
    """
    clock.unfreeze()
    set_plugin_host(None)
    EXECUTOR_CACHE.clear()
    kept_links.clear()
    yield
    clock.unfreeze()
    set_plugin_host(None)
    EXECUTOR_CACHE.clear()
    kept_links.clear()


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every test's files (and generated secret key) go to its own tmp_path, never to ./var.

    The process settings are cached: cleared so the next read sees this environment.
    """
    path = tmp_path / "data"
    monkeypatch.setenv("CERTGRAPH_DATA_DIR", str(path))
    for name in ("CERTGRAPH_SECRET_KEY", "CERTGRAPH_MAX_UPLOAD_BYTES"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    yield path
    get_settings.cache_clear()


SMALL_UPLOAD_LIMIT = 100 * 1024


@pytest.fixture
def upload_limit(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """A small upload limit, so tests exceed it cheaply. Set before an app is built: its
    /graphql body limit is derived from it."""
    monkeypatch.setenv("CERTGRAPH_MAX_UPLOAD_BYTES", str(SMALL_UPLOAD_LIMIT))
    get_settings.cache_clear()
    yield SMALL_UPLOAD_LIMIT
    get_settings.cache_clear()


def stored_files(root: Path) -> list[str]:
    """Every file under a data directory except the generated secret key, relative, sorted."""
    if not root.exists():
        return []
    found = []
    for directory, _, names in os.walk(root):
        for name in names:
            relative = os.path.relpath(os.path.join(directory, name), root)
            if relative != "secret_key":
                found.append(relative)
    return sorted(found)


@pytest.fixture
def frozen_now() -> Iterator[datetime]:
    at = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
    clock.freeze(at)
    yield at
    clock.unfreeze()


@pytest.fixture
def plugin_host():  # type: ignore[no-untyped-def]
    """A plugin host of the installed plugins, installed for the test; register extras on it."""
    host = create_plugin_host()
    set_plugin_host(host)
    return host


class EventLog:
    """A certgraph_event plugin that keeps every event it is handed. Reading it first runs a
    dispatcher until nothing is due, so what the test's use cases wrote to the outbox has
    been delivered (as the server's dispatcher would, moments later)."""

    def __init__(self, host: Any) -> None:
        self.delivered: list[Event] = []
        self.dispatcher = Dispatcher(host, DispatchConfig(hook_threads=1, sweep_interval_seconds=0))

    @hookimpl
    def certgraph_event(self, event: Event) -> None:
        self.delivered.append(event)

    async def all(self) -> list[Event]:
        await self.dispatcher.run_until_idle()
        return list(self.delivered)

    async def named(self, event_type: str) -> list[Event]:
        return [e for e in await self.all() if e.type == event_type]

    async def types(self) -> list[str]:
        return [e.type for e in await self.all()]

    async def clear(self) -> None:
        """Deliver what is pending, then forget it."""
        await self.all()
        self.delivered.clear()


@pytest.fixture
def events(plugin_host: Any) -> Iterator[EventLog]:
    """The events emitted during the test, from a plugin registered on the test's host."""
    log = EventLog(plugin_host)
    plugin_host.register(log, "test-events")
    yield log
    log.dispatcher.threads.shutdown(wait=True)


class QueryCounter(logging.Handler):
    """Counts the SQL statements Tortoise sends (its db_client logger logs each one once)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.statements: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if not message.startswith(("Created connection", "Closed connection")):
            self.statements.append(message)

    @property
    def count(self) -> int:
        return len(self.statements)

    def reset(self) -> None:
        self.statements.clear()


@pytest.fixture
def sql_queries() -> Iterator[QueryCounter]:
    logger = logging.getLogger("tortoise.db_client")
    counter = QueryCounter()
    previous = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(counter)
    try:
        yield counter
    finally:
        logger.removeHandler(counter)
        logger.setLevel(previous)
