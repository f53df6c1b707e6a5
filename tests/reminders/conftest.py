"""Fixtures of the reminder tests: the API harness of tests/api (imported, not redefined, so
these tests run against exactly the app, database and data directory the other API tests use)."""

from __future__ import annotations

from tests.api.conftest import app, graphql_client, http, settings, world

__all__ = ["app", "graphql_client", "http", "settings", "world"]
