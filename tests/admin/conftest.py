"""Fixtures for the admin tooling tests (exports, the admin script): the API tests' app,
client and world (admin, manager, learner reporting to the manager, another learner)."""

from __future__ import annotations

from tests.api.conftest import (  # noqa: F401 (fixtures)
    app,
    graphql_client,
    http,
    settings,
    world,
)
