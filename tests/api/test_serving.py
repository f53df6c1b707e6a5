"""`certgraph serve`'s app (gql.app.create_served_app): the process tuned for serving once it
has started (docs/performance.md, "The tail"); an app built by create_app leaves it alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gql import app as app_module

# Each app in a process of its own, as each worker of `certgraph serve` is: the tuning is the
# process's, and a test must not leave it (or its frozen objects) to the next.
START = """
import asyncio, gc, json, sys
from gql.app import create_app, create_served_app
from gql.store.db import migrate_database

async def main():
    await migrate_database(sys.argv[1])
    app = create_served_app() if sys.argv[2] == "served" else create_app()
    built = [gc.get_freeze_count(), gc.get_threshold()]
    async with app.router.lifespan_context(app):
        print(json.dumps([built, [gc.get_freeze_count(), gc.get_threshold()]]))

asyncio.run(main())
"""


def started(tmp_path: Path, kind: str) -> tuple[list[object], list[object]]:
    url = f"sqlite://{tmp_path / 'served.sqlite3'}"
    env = dict(os.environ, CERTGRAPH_DATABASE_URL=url, CERTGRAPH_DATA_DIR=str(tmp_path))
    done = subprocess.run(
        [sys.executable, "-c", START, url, kind],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    built, running = json.loads(done.stdout.strip().splitlines()[-1])
    return built, running


@pytest.mark.slow
@pytest.mark.database_independent
def test_a_served_app_freezes_what_start_up_made(tmp_path: Path) -> None:
    (built_frozen, built_threshold), (frozen, threshold) = started(tmp_path, "served")
    assert built_frozen == 0  # at start-up, not at build
    assert tuple(built_threshold) != app_module.GC_THRESHOLDS  # type: ignore[arg-type]
    assert frozen > 10_000  # type: ignore[operator]
    assert tuple(threshold) == app_module.GC_THRESHOLDS  # type: ignore[arg-type]


@pytest.mark.slow
@pytest.mark.database_independent
def test_an_app_of_create_app_leaves_the_collector_alone(tmp_path: Path) -> None:
    built, running = started(tmp_path, "plain")
    assert running == built
    assert running[0] == 0
