"""Shared fixtures: a fresh database per test, on SQLite or on CERTGRAPH_TEST_DATABASE_URL.

CI runs the suite twice: once on SQLite (the default) and once with
CERTGRAPH_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/<db>.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import pytest
import pytest_asyncio
from tortoise.context import tortoise_test_context

from gql import clock
from gql.plugins import create_plugin_host, set_plugin_host
from gql.store.db import MODELS_MODULE, normalise_url

TEST_DATABASE_URL = os.environ.get("CERTGRAPH_TEST_DATABASE_URL", "sqlite://:memory:")
ON_POSTGRES = TEST_DATABASE_URL.startswith(("postgres://", "postgresql://"))


@pytest_asyncio.fixture
async def db() -> AsyncIterator[None]:
    """A fresh, empty schema for one test (generated from the models; migrations are tested
    separately in test_migrations.py)."""
    url = normalise_url(TEST_DATABASE_URL) if ON_POSTGRES else TEST_DATABASE_URL
    async with tortoise_test_context([MODELS_MODULE], db_url=url):
        yield


@pytest.fixture(autouse=True)
def _fresh_clock_and_plugins() -> Iterator[None]:
    """Every test starts with the real clock and only the installed plugins."""
    clock.unfreeze()
    set_plugin_host(None)
    yield
    clock.unfreeze()
    set_plugin_host(None)


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
