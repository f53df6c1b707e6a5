"""Fixtures of the recurrence tests: the API harness of tests/api, an event log, a clean cache.

The API fixtures are imported (not redefined) so these tests run against exactly the app,
database and data directory (autouse: files go to tmp_path) the other API tests use.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from tortoise.backends.base.executor import EXECUTOR_CACHE

from tests.api.conftest import app, data_dir, gql, http, settings, world
from tests.domain.factories import EventLog

__all__ = ["app", "data_dir", "gql", "http", "settings", "world"]


@pytest.fixture
def events(plugin_host: Any) -> EventLog:
    log = EventLog()
    plugin_host.register(log, "recurrence-events")
    return log


@pytest.fixture
def fresh_statement_cache() -> Iterator[None]:
    """For tests that open a SQLite file in-process (next to the `db` fixture's database).

    Tortoise caches each model's INSERT/DELETE text per connection name, whatever the
    dialect: SQLite's `?` statements cached here would be sent to PostgreSQL by later tests
    of a PostgreSQL run (and the other way round). Start and leave with an empty cache.
    """
    EXECUTOR_CACHE.clear()
    yield
    EXECUTOR_CACHE.clear()
