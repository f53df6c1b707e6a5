"""Fixtures of the recurrence tests: the API harness of tests/api, an event log, a clean cache.

The API fixtures are imported (not redefined) so these tests run against exactly the app,
database and data directory (autouse: files go to tmp_path) the other API tests use.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.conftest import app, data_dir, gql, http, settings, world
from tests.domain.factories import EventLog

__all__ = ["app", "data_dir", "gql", "http", "settings", "world"]


@pytest.fixture
def events(plugin_host: Any) -> EventLog:
    log = EventLog()
    plugin_host.register(log, "recurrence-events")
    return log
