"""Issue 11's malformed inputs at the domain and store: a CSV date outside the calendar is a
row error, pages refuse crafted cursors and long searches, database files are private."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gql.domain import courses, pages, users
from gql.domain.errors import InvalidInput
from gql.domain.imports import ImportResult, RowError, import_course_progress
from gql.files import LocalBlobStore
from gql.store.db import close_database, migrate_database, open_database
from gql.store.models import Course, CourseProgress, Role
from tests.files.samples import BytesStream

from .factories import Factory


async def test_a_completed_at_outside_the_calendar_is_a_row_error(
    make: Factory, data_dir: Path
) -> None:
    admin = await make.admin()
    learner = await make.learner()
    course = await make.course()
    email = learner.email
    text = (
        "learner_email,course_id,percent,completed_at\n"
        f"{email},{course.id},,0001-01-01T00:00:00+01:00\n"
        f"{email},{course.id},,9999-12-31T23:59:59-01:00\n"
    )
    result = await import_course_progress(
        admin,
        BytesStream(text.encode()),
        blobs=LocalBlobStore(data_dir, max_bytes=1 << 20),
        filename="progress.csv",
        declared_type="text/csv",
    )
    assert result.imported == 0 and result.error_count == 2
    assert result.row_errors[0] == RowError(
        2, "completed_at '0001-01-01T00:00:00+01:00' is outside the calendar"
    )
    assert result.row_errors[1].line == 3
    assert isinstance(result, ImportResult)
    assert not await CourseProgress.exists()


@pytest.mark.parametrize(
    "value",
    [
        ["x", 1e30],
        [1, 2],
        ["a", 2**31],
        ["a", True],
        ["a\u0000", 1],
        ["a"],
        ["a", 1, 2],
        [{"t": "0001-01-01T00:00:00+01:00"}, 1],
    ],
)
def test_cursor_values_must_have_their_keys_types(value: list[object]) -> None:
    encoded = pages.encode_cursor("k", [])
    assert pages.decode_cursor(encoded, "k", []) == []
    crafted = pages.encode_cursor("k", value)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput) as refused:
        pages.decode_cursor(crafted, "k", ["str", "int"])
    assert refused.value.field == ("after",)


def test_a_cursor_round_trips_its_values() -> None:
    at = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    encoded = pages.encode_cursor("k", [at, "name", 7, None])
    assert pages.decode_cursor(encoded, "k", ["datetime", "str", "bigint", "datetime?"]) == [
        at,
        "name",
        7,
        None,
    ]


async def test_long_searches_are_refused_before_any_query(make: Factory) -> None:
    admin = await make.admin()
    for search in ("a" * 201, "x" * 50_000):
        with pytest.raises(InvalidInput) as refused:
            await users.list_users(admin, search=search)
        assert refused.value.field == ("search",)
        with pytest.raises(InvalidInput):
            await courses.list_courses(admin, search=search)
    assert (await users.list_users(admin, search="a" * 200, role=Role.ADMIN)).total_count == 0


@pytest.fixture
def open_umask() -> Iterator[None]:
    previous = os.umask(0o022)  # the usual default: new files world-readable
    try:
        yield
    finally:
        os.umask(previous)


async def test_the_sqlite_database_and_its_wal_are_private(
    tmp_path: Path, open_umask: None
) -> None:
    path = tmp_path / "var" / "certgraph.sqlite3"
    url = f"sqlite://{path}"
    await migrate_database(url)
    await open_database(url)
    try:
        await Course.all().count()
    finally:
        await close_database()
    files = [p for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")) if p.exists()]
    assert path in files
    for file in files:
        assert stat.S_IMODE(file.stat().st_mode) == 0o600, file
    # a file left world-readable by an older version is made private on open
    os.chmod(path, 0o644)
    await open_database(url)
    try:
        await Course.all().count()
    finally:
        await close_database()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
