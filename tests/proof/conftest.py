"""The proof suite: quality.md's Security and Reliability items as tests (see
docs/reliability.md). In-process tests run with `make test`; the ones that start real
servers (test_live_*.py) only with CERTGRAPH_PROOF=1, which `make proof` sets, on SQLite and
again on PostgreSQL (CERTGRAPH_TEST_DATABASE_URL)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from tests.proof.live import DATABASE_KIND, FIGURES, ON_POSTGRES, Deployment, create_database

PROOF = os.environ.get("CERTGRAPH_PROOF") == "1"
collect_ignore_glob = [] if PROOF else ["test_live_*.py"]
# A server test marked database_independent (live.DATABASE_INDEPENDENT) exercises no database
# behaviour: `make proof` runs it on its SQLite pass only.
ONCE = pytest.mark.skip(reason="database-independent proof: run on make proof's SQLite pass")


@pytest_asyncio.fixture
async def deployment(tmp_path: Path) -> AsyncIterator[Deployment]:
    """A migrated database and a data directory; servers started from it are stopped after."""
    database = await create_database(tmp_path, "db")
    deployed = Deployment(database, tmp_path)
    try:
        deployed.cli("migrate")
        yield deployed
    finally:
        deployed.stop_servers()
        await database.drop()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.name.startswith("test_live_"):
            item.add_marker(pytest.mark.slow)  # they start real servers
            if ON_POSTGRES and item.get_closest_marker("database_independent"):
                item.add_marker(ONCE)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not FIGURES:
        return
    terminalreporter.section(f"proof figures ({DATABASE_KIND})")
    for test, values in FIGURES:
        shown = ", ".join(f"{key}={value}" for key, value in values.items())
        terminalreporter.write_line(f"{test}: {shown}")
