"""Fixtures for the API token tests: the API tests' app, client and world (admin, manager,
learner reporting to the manager, another learner, each with a token made by the operator)
and the domain tests' factory."""

from __future__ import annotations

from tests.api.conftest import (  # noqa: F401 (fixtures)
    app,
    graphql_client,
    http,
    settings,
    world,
)
from tests.domain.conftest import make  # noqa: F401 (fixture)
