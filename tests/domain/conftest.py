"""Fixtures of the domain tests: a factory over a fresh database (the event log is
tests/conftest.py's)."""

from __future__ import annotations

import pytest

from .factories import Factory


@pytest.fixture
def make(db: None) -> Factory:
    return Factory()
