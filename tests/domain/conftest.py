"""Fixtures of the domain tests: a factory over a fresh database, and an event log plugin."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
import pytest_asyncio
from tortoise.context import tortoise_test_context

from gql.store.db import MODELS_MODULE, normalise_url

from .factories import EventLog, Factory

TEST_DATABASE_URL = os.environ.get("CERTGRAPH_TEST_DATABASE_URL", "sqlite://:memory:")
ON_POSTGRES = TEST_DATABASE_URL.startswith(("postgres://", "postgresql://"))


async def _drop_postgres_database(url: str) -> None:
    """tortoise_test_context creates the database but never drops it, so the next test's
    CREATE DATABASE would fail: drop it from the maintenance database once its pool is closed."""
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    maintenance = urlunsplit(("postgresql", parts.netloc, "/postgres", "", ""))
    connection = await asyncpg.connect(maintenance)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
    finally:
        await connection.close()


@pytest_asyncio.fixture
async def db() -> AsyncIterator[None]:
    """A fresh schema per test; on PostgreSQL a fresh database, dropped again afterwards."""
    if not ON_POSTGRES:
        async with tortoise_test_context([MODELS_MODULE], db_url=TEST_DATABASE_URL):
            yield
        return
    url = normalise_url(TEST_DATABASE_URL)
    await _drop_postgres_database(url)  # a leftover of an interrupted run
    try:
        async with tortoise_test_context([MODELS_MODULE], db_url=url):
            yield
    finally:
        await _drop_postgres_database(url)


@pytest.fixture
def make(db: None) -> Factory:
    return Factory()


@pytest.fixture
def events(plugin_host: Any) -> EventLog:
    log = EventLog()
    plugin_host.register(log, "test-events")
    return log
