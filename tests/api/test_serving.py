"""`certgraph serve`'s app (gql.app.create_served_app): the process tuned for serving once it
has started (docs/performance.md, "The tail"); an app built by create_app leaves it alone."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.applications import Starlette

from gql import app as app_module
from gql.settings import Settings
from gql.store.db import migrate_database


@pytest.fixture
def restored_gc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The collector as it was, after. Its start-up collection is left out: here it would
    collect earlier tests' garbage, whose finalisers belong to no test."""
    threshold = gc.get_threshold()
    monkeypatch.setattr(gc, "collect", lambda generation=2: 0)
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)


async def test_a_served_app_freezes_what_start_up_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, restored_gc: None
) -> None:
    url = f"sqlite://{tmp_path / 'served.sqlite3'}"
    await migrate_database(url)
    monkeypatch.setenv("CERTGRAPH_DATABASE_URL", url)
    monkeypatch.setenv("CERTGRAPH_DATA_DIR", str(tmp_path))
    gc.unfreeze()
    app: Starlette = app_module.create_served_app()
    assert gc.get_freeze_count() == 0  # at start-up, not at build
    async with app.router.lifespan_context(app):
        assert gc.get_freeze_count() > 10_000
        assert gc.get_threshold()[0] == app_module.GC_YOUNG_THRESHOLD


async def test_an_app_of_create_app_leaves_the_collector_alone(
    tmp_path: Path, restored_gc: None
) -> None:
    url = f"sqlite://{tmp_path / 'plain.sqlite3'}"
    await migrate_database(url)
    gc.unfreeze()
    threshold = gc.get_threshold()
    app = app_module.create_app(Settings(database_url=url, data_dir=tmp_path))
    async with app.router.lifespan_context(app):
        assert gc.get_freeze_count() == 0
        assert gc.get_threshold() == threshold
