"""An award is inserted once per enrollment and cycle; the loser of the race gets None and
its transaction goes on (PostgreSQL aborts a transaction on a failed statement)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

from gql.domain import users
from gql.domain.access import Actor
from gql.store.db import write_transaction
from gql.store.models import Award, Role
from gql.store.sql import insert_award_once, lock_users
from tests.conftest import ON_POSTGRES, QueryCounter

from .factories import Factory


async def test_the_second_award_of_a_cycle_is_not_written(make: Factory) -> None:
    course = await make.course()
    cert = await make.certification(course)
    enrollment = await make.assign(cert, await make.learner())
    awarded = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=timezone(timedelta(hours=2)))
    expires = datetime(2027, 1, 2, 3, 4, 5, tzinfo=UTC)
    created = datetime(2026, 1, 2, 9, 0, tzinfo=UTC)

    async with write_transaction():
        first = await insert_award_once(
            enrollment.id, 1, awarded, expires, date(2026, 1, 2), date(2027, 1, 2), created
        )
        second = await insert_award_once(
            enrollment.id, 1, created, None, date(2026, 1, 2), None, created
        )
        other_cycle = await insert_award_once(
            enrollment.id, 2, created, None, date(2026, 1, 2), None, created
        )
        still_usable = await Award.filter(enrollment_id=enrollment.id).count()

    assert first is not None and other_cycle is not None and first != other_cycle
    assert second is None
    assert still_usable == 2
    row = await Award.get(id=first)
    assert (row.enrollment_id, row.cycle) == (enrollment.id, 1)
    assert (row.awarded_at, row.expires_at, row.created_at) == (awarded, expires, created)
    assert (row.earned_on, row.expires_on) == (date(2026, 1, 2), date(2027, 1, 2))
    assert row.expiry_noted_at is None
    assert (await Award.get(id=other_cycle)).expires_at is None


async def test_locking_learners_takes_row_locks_on_postgresql(
    db: None, sql_queries: QueryCounter
) -> None:
    """FOR UPDATE reaches PostgreSQL (Tortoise's values queries drop it)."""
    admin = await users.create_user(
        Actor.system(), name="Ada", email="ada@example.com", role=Role.ADMIN
    )
    sql_queries.reset()
    async with write_transaction():
        assert await lock_users([admin.id, 999_999]) == {admin.id}
    [statement] = [s for s in sql_queries.statements if 'FROM "user"' in s]
    assert statement.rstrip().split(":")[0].endswith("FOR UPDATE") is ON_POSTGRES, statement
