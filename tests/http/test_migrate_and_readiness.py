"""Instances started together: `certgraph migrate` run by each applies every migration once
(PostgreSQL advisory lock, SQLite lock file), and /readyz is 503 "migrations pending", naming
them, until the database has every migration the code knows of."""

from __future__ import annotations

import asyncio
import fcntl
import os
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
import pytest
from starlette.applications import Starlette

from gql.app import create_app
from gql.settings import Settings
from gql.store.db import (
    MIGRATION_LOCK_KEY,
    known_migrations,
    migrate_database,
    normalise_url,
)
from tests.test_migrations import FreshDatabase, fresh_database

__all__ = ["fresh_database"]  # a fixture, imported for this module

CERTGRAPH = Path(sys.executable).parent / "certgraph"
INSTANCES = 4


def migrate_process(url: str, directory: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CERTGRAPH_")}
    env.update({"CERTGRAPH_DATABASE_URL": url, "CERTGRAPH_DATA_DIR": str(directory / "data")})
    return subprocess.Popen(
        [str(CERTGRAPH), "migrate"],
        env=env,
        cwd=directory,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )


async def recorded_migrations(url: str) -> list[str]:
    """`app.name` of every row of tortoise_migrations, read with the raw driver."""
    query = "SELECT app, name FROM tortoise_migrations"
    if url.startswith("sqlite://"):
        import sqlite3

        with sqlite3.connect(url[len("sqlite://") :]) as raw:
            tables = "SELECT 1 FROM sqlite_master WHERE name = 'tortoise_migrations'"
            if raw.execute(tables).fetchone() is None:
                return []
            return [f"{app}.{name}" for app, name in raw.execute(query)]
    raw = await asyncpg.connect(normalise_url(url).replace("postgres://", "postgresql://", 1))
    try:
        if await raw.fetchval("SELECT to_regclass('tortoise_migrations')") is None:
            return []
        return [f"{row['app']}.{row['name']}" for row in await raw.fetch(query)]
    finally:
        await raw.close()


@pytest.mark.slow
async def test_instances_migrating_at_once_apply_each_migration_once(
    fresh_database: FreshDatabase, tmp_path: Path
) -> None:
    """4 `certgraph migrate` started together on a fresh database (PostgreSQL when the suite
    runs on it): all exit 0, and together they applied each migration exactly once."""
    url = await fresh_database("concurrent_migrate")
    processes = [migrate_process(url, tmp_path) for _ in range(INSTANCES)]
    outputs = [await asyncio.to_thread(p.communicate, timeout=120) for p in processes]
    codes = [p.returncode for p in processes]
    assert codes == [0] * INSTANCES, outputs
    applied = Counter(
        line.removeprefix("applied ")
        for stdout, _ in outputs
        for line in stdout.splitlines()
        if line.startswith("applied ")
    )
    known = known_migrations()
    assert applied == dict.fromkeys(known, 1), outputs
    assert sorted(await recorded_migrations(url)) == known
    # The others found nothing left: they waited for the lock, then read what was applied.
    nothing = [o for o, _ in outputs if "nothing to apply" in o]
    assert len(nothing) >= 1


@pytest.mark.slow
async def test_migrate_waits_for_whoever_holds_the_lock(
    fresh_database: FreshDatabase, tmp_path: Path
) -> None:
    """The lock is the documented one: held here (the advisory lock of MIGRATION_LOCK_KEY, or
    an flock on the SQLite file's `.migrate-lock`), `certgraph migrate` says it waits and
    applies nothing; released, it applies everything."""
    url = await fresh_database("held_lock")
    release = await hold_migration_lock(url)
    try:
        process = migrate_process(url, tmp_path)
        assert process.stderr is not None
        said = await asyncio.wait_for(asyncio.to_thread(process.stderr.readline), timeout=60)
        assert "holds the migration lock; waiting" in said
        await asyncio.sleep(1.0)
        assert process.poll() is None
        assert await recorded_migrations(url) == []
    finally:
        await release()
    stdout, stderr = await asyncio.to_thread(process.communicate, timeout=120)
    assert process.returncode == 0, stderr
    assert "applied models.0001_initial" in stdout
    assert sorted(await recorded_migrations(url)) == known_migrations()


async def hold_migration_lock(url: str) -> Callable[[], Awaitable[None]]:
    """Take the migration lock as another `migrate` would; returns what releases it."""
    if url.startswith("sqlite://"):
        descriptor = os.open(url[len("sqlite://") :] + ".migrate-lock", os.O_RDWR | os.O_CREAT)
        fcntl.flock(descriptor, fcntl.LOCK_EX)

        async def unlock_file() -> None:
            os.close(descriptor)

        return unlock_file
    raw = await asyncpg.connect(normalise_url(url).replace("postgres://", "postgresql://", 1))
    await raw.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)

    async def unlock_session() -> None:
        await raw.close()

    return unlock_session


async def readiness(app: Starlette) -> httpx.Response:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.get("/readyz")


async def execute(url: str, query: str, *params: object) -> None:
    """One statement with $n parameters, through the raw driver."""
    if url.startswith("sqlite://"):
        import sqlite3

        with sqlite3.connect(url[len("sqlite://") :]) as raw:
            raw.execute(re.sub(r"\$\d+", "?", query), params)
        return
    raw = await asyncpg.connect(normalise_url(url).replace("postgres://", "postgresql://", 1))
    try:
        await raw.execute(query, *params)
    finally:
        await raw.close()


async def forget_migration(url: str, name: str) -> None:
    app_label, migration = name.split(".", 1)
    await execute(
        url, "DELETE FROM tortoise_migrations WHERE app = $1 AND name = $2", app_label, migration
    )


async def record_migration(url: str, name: str) -> None:
    app_label, migration = name.split(".", 1)
    await execute(
        url,
        "INSERT INTO tortoise_migrations (app, name, applied_at) VALUES ($1, $2, $3)",
        app_label,
        migration,
        datetime.now(UTC),
    )


async def test_readyz_is_503_until_every_migration_is_applied(
    fresh_database: FreshDatabase, data_dir: Path
) -> None:
    url = await fresh_database("readiness")
    # No dispatcher: its sweep would fail on the tables the pending migrations make.
    app = create_app(Settings(database_url=url, data_dir=data_dir, dispatcher_enabled=False))
    known = known_migrations()
    assert known[0] == "models.0001_initial" and len(known) >= 5

    before = await readiness(app)  # an instance up before anyone ran `certgraph migrate`
    assert before.status_code == 503
    assert before.json() == {"status": "migrations pending", "pending": known}

    assert await migrate_database(url) == known
    await forget_migration(url, known[-1])  # as if the code were one release ahead
    behind = await readiness(app)
    assert behind.status_code == 503
    assert behind.json() == {"status": "migrations pending", "pending": [known[-1]]}

    await record_migration(url, known[-1])  # its tables are still there: only forgotten
    ready = await readiness(app)
    assert ready.status_code == 200 and ready.json() == {"status": "ok"}
