"""Fixtures of the domain tests: a factory over a fresh database, and an event log plugin."""

from __future__ import annotations

from typing import Any

import pytest

from .factories import EventLog, Factory


@pytest.fixture
def make(db: None) -> Factory:
    return Factory()


@pytest.fixture
def events(plugin_host: Any) -> EventLog:
    log = EventLog()
    plugin_host.register(log, "test-events")
    return log
