"""pytest plugin: the API suite on strawberry's own executor instead of FastExecutionContext.

.venv/bin/pytest -p tests.api.stock_executor tests/api
"""

from __future__ import annotations

import pytest

from gql.api import execution


def pytest_configure(config: pytest.Config) -> None:
    execution.STOCK_ONLY = True


def pytest_report_header(config: pytest.Config) -> str:
    return "GraphQL executor: strawberry's own (tests.api.stock_executor)"
