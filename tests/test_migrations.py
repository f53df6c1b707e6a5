"""The checked-in migrations are the schema: nothing pending; applied, they make every column."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest_asyncio
from tortoise import Tortoise
from tortoise.cli.cli import tortoise_cli_context
from tortoise.connection import get_connection
from tortoise.migrations.autodetector import MigrationAutodetector

from gql.store import models
from gql.store.db import close_database, migrate_database, normalise_url, tortoise_config
from tests.conftest import ON_POSTGRES, TEST_DATABASE_URL


async def test_models_have_no_changes_missing_from_the_migrations() -> None:
    config = tortoise_config("sqlite://:memory:")
    apps = config["apps"]
    async with tortoise_cli_context(config) as ctx:
        writers = await MigrationAutodetector(ctx.apps, apps).changes()
    assert [w.name for w in writers] == [], "run `tortoise makemigrations` and commit the result"


def _expected_columns() -> dict[str, set[str]]:
    return {
        model._meta.db_table: set(model._meta.fields_db_projection.values())
        for model in vars(models).values()
        if isinstance(model, type) and issubclass(model, models.Model) and model is not models.Model
    }


async def _columns(table: str) -> set[str]:
    conn = get_connection("default")
    if conn.capabilities.dialect == "sqlite":
        rows = await conn.execute_query_dict(f'PRAGMA table_info("{table}")')
        return {r["name"] for r in rows}
    rows = await conn.execute_query_dict(
        "SELECT column_name FROM information_schema.columns WHERE table_name = $1", [table]
    )
    return {r["column_name"] for r in rows}


FreshDatabase = Callable[[str], Awaitable[str]]


async def _admin_execute(statement: str) -> None:
    import asyncpg

    server = TEST_DATABASE_URL.rsplit("/", 1)[0]
    admin = await asyncpg.connect(server.replace("postgres://", "postgresql://") + "/postgres")
    try:
        await admin.execute(statement)
    finally:
        await admin.close()


@pytest_asyncio.fixture
async def fresh_database(tmp_path: Path) -> AsyncIterator[FreshDatabase]:
    """Makes empty databases (a file on SQLite; on PostgreSQL the test database's name with a
    suffix) and drops the PostgreSQL ones when the test ends."""
    made: list[str] = []

    async def make(suffix: str) -> str:
        if not ON_POSTGRES:
            return f"sqlite://{tmp_path}/{suffix}.sqlite3"
        server, name = TEST_DATABASE_URL.rsplit("/", 1)
        name = name.split("?")[0] + "_" + suffix
        await _admin_execute(f'DROP DATABASE IF EXISTS "{name}"')
        await _admin_execute(f'CREATE DATABASE "{name}"')
        made.append(name)
        return f"{server}/{name}"

    yield make
    await close_database()
    for name in made:
        await _admin_execute(f'DROP DATABASE IF EXISTS "{name}"')


async def test_migrations_create_every_column(fresh_database: FreshDatabase) -> None:
    url = await fresh_database("migrations")
    applied = await migrate_database(url)
    assert applied[0] == "models.0001_initial"
    await close_database()
    await Tortoise.init(config=tortoise_config(url))
    try:
        for table, columns in _expected_columns().items():
            assert columns <= await _columns(table), table
        assert await migrate_database(url) == []  # idempotent: nothing left to apply
    finally:
        await close_database()


async def _indexes(url: str) -> set[tuple[str, tuple[str, ...], bool]]:
    """(table, columns, unique) of every index, read with the raw driver."""
    if url.startswith("sqlite://"):
        import sqlite3

        with sqlite3.connect(url[len("sqlite://") :]) as raw:
            tables = [
                r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='table'")
            ]
            found = set()
            for table in tables:
                for _, name, unique, *_ in raw.execute(f"PRAGMA index_list('{table}')"):
                    columns = tuple(r[2] for r in raw.execute(f"PRAGMA index_info('{name}')"))
                    found.add((table, columns, bool(unique)))
            return found
    import asyncpg

    raw = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
    try:
        rows = await raw.fetch(
            "SELECT t.relname AS table, i.indisunique AS unique,"
            " array_agg(a.attname ORDER BY k.n) AS columns"
            " FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid"
            " JOIN pg_namespace ns ON ns.oid = t.relnamespace AND ns.nspname = 'public'"
            " CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n)"
            " JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum"
            " GROUP BY i.indexrelid, t.relname, i.indisunique"
        )
        return {(r["table"], tuple(r["columns"]), r["unique"]) for r in rows}
    finally:
        await raw.close()


async def test_migrations_create_every_index_the_models_declare(
    fresh_database: FreshDatabase,
) -> None:
    """Some Tortoise operations rebuild SQLite tables; the indexes (the unique ones above all)
    must survive every migration."""
    migrated = await fresh_database("migrations")
    await migrate_database(migrated)
    generated = await fresh_database("generated")
    await Tortoise.init(config=tortoise_config(generated))
    try:
        await Tortoise.generate_schemas()
    finally:
        await close_database()
    bare = lambda url: normalise_url(url).split("?")[0]  # noqa: E731
    expected = {i for i in await _indexes(bare(generated)) if i[0] != "tortoise_migrations"}
    actual = {i for i in await _indexes(bare(migrated)) if i[0] != "tortoise_migrations"}
    assert expected <= actual, sorted(expected - actual)
    assert ("enrollment", ("learner_id", "certification_id"), True) in actual


async def test_migration_0007_versions_the_links_there_and_every_change_after(
    fresh_database: FreshDatabase,
) -> None:
    """Certifications made before it get a version; after it, the triggers give a new one to
    each change, and a certification made after it has one from the start."""
    from tortoise.migrations.api.migrate import migrate

    url = await fresh_database("links_version")
    config = tortoise_config(url)
    await migrate(config=config, target="models.0006_award_dates")
    await close_database()
    await Tortoise.init(config=config)
    conn = get_connection("default")
    try:
        for statement in (
            "INSERT INTO course (id, name, description, published_at, updated_at)"
            " VALUES (1, 'A', '', '2026-01-01 00:00:00+00:00', '2026-01-01 00:00:00+00:00')",
            *(
                "INSERT INTO certification (id, name, overview, kind, type, issuer,"
                " recertification_window_days, state, policy_name, policy_config, created_at,"
                f" updated_at) VALUES ({i}, 'C{i}', '', 'INTERNAL', 'PERPETUAL', '', 0, 'DRAFT',"
                " 'all-mandatory', '{}', '2026-01-01 00:00:00+00:00',"
                " '2026-01-01 00:00:00+00:00')"
                for i in (1, 2)
            ),
            "INSERT INTO certification_course (certification_id, course_id, mandatory, position)"
            " VALUES (1, 1, true, 0)",
        ):
            await conn.execute_script(statement)
    finally:
        await close_database()

    assert await migrate_database(url) == ["models.0007_course_links_version"]

    async def versions() -> dict[int, int]:
        rows = await get_connection("default").execute_query_dict(
            "SELECT certification_id, version FROM course_links_version"
        )
        return {r["certification_id"]: r["version"] for r in rows}

    await Tortoise.init(config=config)
    conn = get_connection("default")
    try:
        before = await versions()
        assert set(before) == {1, 2}  # with links or without
        await conn.execute_script("UPDATE course SET name = 'A2' WHERE id = 1")
        renamed = await versions()
        assert renamed[1] != before[1] and renamed[2] == before[2]
        await conn.execute_script(
            "INSERT INTO certification_course (certification_id, course_id, mandatory, position)"
            " VALUES (2, 1, false, 0)"
        )
        linked = await versions()
        assert linked[2] != renamed[2] and linked[1] == renamed[1]
        await conn.execute_script(
            "INSERT INTO certification (id, name, overview, kind, type, issuer,"
            " recertification_window_days, state, policy_name, policy_config, created_at,"
            " updated_at) VALUES (3, 'C3', '', 'EXTERNAL', 'PERPETUAL', '', 0, 'DRAFT',"
            " 'all-mandatory', '{}', '2026-01-01 00:00:00+00:00', '2026-01-01 00:00:00+00:00')"
        )
        assert set(await versions()) == {1, 2, 3}
    finally:
        await close_database()
