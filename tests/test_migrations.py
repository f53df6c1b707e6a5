"""The checked-in migrations are the schema: nothing pending; applied, they make every column."""

from __future__ import annotations

from pathlib import Path

from tortoise import Tortoise
from tortoise.cli.cli import tortoise_cli_context
from tortoise.connection import get_connection
from tortoise.migrations.autodetector import MigrationAutodetector

from gql.store import models
from gql.store.db import close_database, migrate_database, tortoise_config
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


async def _fresh_database_url(tmp_path: Path) -> str:
    if not ON_POSTGRES:
        return f"sqlite://{tmp_path}/migrated.sqlite3"
    import asyncpg

    server, name = TEST_DATABASE_URL.rsplit("/", 1)
    name = name.split("?")[0] + "_migrations"
    admin = await asyncpg.connect(server.replace("postgres://", "postgresql://") + "/postgres")
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return f"{server}/{name}"


async def test_migrations_create_every_column(tmp_path: Path) -> None:
    url = await _fresh_database_url(tmp_path)
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
