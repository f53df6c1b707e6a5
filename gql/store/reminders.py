"""The reminder sweep's SQL (docs/recurrence.md, "Reminders"): which enrollments are owed a
due-soon, overdue or expiring reminder that nobody has noted yet, and the enrollment_notice
rows that make each reminder once per enrollment and cycle.

Every read is one statement, keyset-paged on the index its range uses, with the notice
checked by NOT EXISTS on the notice's unique key, so a sweep with nothing to do gets no row.
Ended (unassigned) enrollments and deactivated learners are never reminded.
The cycle a reminder is for is computed from the columns denormalised from the newest award
(gql.domain.evaluation keeps them current, also when a certification's rules change):
cycle 1 until the first award, then the newest award's cycle + 1 once its window is open.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from tortoise.connection import get_connection

from gql.store.models import EnrollmentNotice
from gql.store.sql import Sql, as_datetime, fetch

# The cycle an enrollment not complete in its current cycle is in (the query's conditions
# admit only those): 1 before any award, else the one after the newest award.
_NEXT_CYCLE = "(CASE WHEN e.last_award_cycle IS NULL THEN 1 ELSE e.last_award_cycle + 1 END)"


@dataclass(frozen=True, slots=True)
class Candidate:
    """An enrollment owed a reminder of one kind for `cycle`, unless a sweeper notes it first."""

    enrollment_id: int
    learner_id: int
    certification_id: int
    due_at: datetime | None
    cycle: int
    expires_at: datetime | None  # the newest award's expiry (for expiring reminders)
    expires_on: date | None  # ... and the calendar day it falls on (the award's expires_on)
    window_opens_at: datetime | None  # when the newest award's window opened
    position: tuple[datetime, int]  # the keyset position: (the ordering datetime, id)


def _candidate(row: dict[str, Any], order_column: str) -> Candidate:
    return Candidate(
        enrollment_id=int(row["id"]),
        learner_id=int(row["learner_id"]),
        certification_id=int(row["certification_id"]),
        due_at=_when(row["due_at"]),
        cycle=int(row["cycle"]),
        expires_at=_when(row["last_expires_at"]),
        expires_on=_expiry_day(row),
        window_opens_at=_when(row["window_opens_at"]),
        position=(as_datetime(row[order_column]), int(row["id"])),
    )


def _when(value: Any) -> datetime | None:
    return None if value is None else as_datetime(value)


def _expiry_day(row: dict[str, Any]) -> date | None:
    """The newest award's expiry day; one an older release wrote during a rolling upgrade
    has none: its instant's UTC day (as records.award_record says)."""
    day = _day(row["last_expires_on"])
    expires_at = _when(row["last_expires_at"])
    if day is None and expires_at is not None:
        return expires_at.astimezone(UTC).date()
    return day


def _day(value: Any) -> date | None:
    # SQLite hands a DateField back as its ISO text
    return date.fromisoformat(value) if isinstance(value, str) else value


def _unnoted(sql: Sql, kind: str, cycle: str) -> str:
    return (
        "NOT EXISTS (SELECT 1 FROM enrollment_notice n WHERE n.enrollment_id = e.id"
        f" AND n.kind = {sql.p(kind)} AND n.cycle = {cycle})"
    )


def _after(sql: Sql, column: str, after: tuple[datetime, int] | None) -> str:
    if after is None:
        return "1=1"
    at, last_id = after
    return f"({column} > {sql.p(at)} OR ({column} = {sql.p(at)} AND e.id > {sql.p(last_id)}))"


async def _page(
    sql: Sql,
    conditions: list[str],
    cycle: str,
    order_column: str,
    limit: int,
    *,
    constant_prefix: str = "",
) -> list[Candidate]:
    """One page in (order_column, id) order. `constant_prefix`: a column the conditions make
    the same on every row, ordered by first so the order is exactly the index's."""
    order = f"{constant_prefix}, " if constant_prefix else ""
    rows = await fetch(
        "SELECT e.id, e.learner_id, e.certification_id, e.due_at, e.last_expires_at,"
        # the newest award's day, by the award's unique key (only for the rows returned)
        " (SELECT a.expires_on FROM award a WHERE a.enrollment_id = e.id"
        " AND a.cycle = e.last_award_cycle) AS last_expires_on,"
        f" e.window_opens_at, {cycle} AS cycle FROM enrollment e"
        ' JOIN "user" u ON u.id = e.learner_id AND u.deactivated_at IS NULL'
        f" WHERE e.ended_at IS NULL AND {' AND '.join(conditions)}"
        f" ORDER BY {order}{order_column}, e.id LIMIT {int(limit)}",
        sql,
    )
    return [_candidate(row, order_column.removeprefix("e.")) for row in rows]


async def due_soon(
    kind: str,
    now: datetime,
    until: datetime,
    after: tuple[datetime, int] | None,
    limit: int,
) -> list[Candidate]:
    """Enrollments due in [now, until] and not complete in their current cycle, whose due
    date falls in that cycle, without a `kind` notice for it; in (due_at, id) order."""
    sql = Sql()
    conditions = [
        f"e.due_at >= {sql.p(now)}",
        f"e.due_at <= {sql.p(until)}",
        # no award yet, or the newest award's window is open and the due date is in the
        # new cycle (a due date from before it is an earlier cycle's)
        "(e.last_award_cycle IS NULL"
        f" OR (e.window_opens_at <= {sql.p(now)} AND e.due_at >= e.window_opens_at))",
        _after(sql, "e.due_at", after),
        _unnoted(sql, kind, _NEXT_CYCLE),
    ]
    return await _page(sql, conditions, _NEXT_CYCLE, "e.due_at", limit)


async def overdue_unawarded(
    kind: str, now: datetime, after: tuple[datetime, int] | None, limit: int
) -> list[Candidate]:
    """Enrollments never awarded and past their due date (overdue in cycle 1), without a
    `kind` notice for it; in (due_at, id) order. The read grows with the enrollments that
    are overdue, not with every one whose due date has passed (most were completed)."""
    sql = Sql()
    conditions = [
        "e.last_award_cycle IS NULL",
        f"e.due_at < {sql.p(now)}",
        _after(sql, "e.due_at", after),
        _unnoted(sql, kind, "1"),
    ]
    # all NULL here: ordered by first, the (last_award_cycle, due_at, id) index gives the
    # order without a sort (PostgreSQL would otherwise walk every past due date in order)
    return await _page(
        sql, conditions, "1", "e.due_at", limit, constant_prefix="e.last_award_cycle"
    )


async def overdue_expired(
    kind: str, now: datetime, after: tuple[datetime, int] | None, limit: int
) -> list[Candidate]:
    """Enrollments whose newest award has expired and whose due date is in the cycle after
    it and has passed, without a `kind` notice for that cycle; in (last_expires_at, id)
    order (the read grows with the expired enrollments)."""
    sql = Sql()
    cycle = "(e.last_award_cycle + 1)"
    conditions = [
        f"e.last_expires_at <= {sql.p(now)}",
        f"e.due_at < {sql.p(now)}",
        "e.due_at >= e.window_opens_at",
        _after(sql, "e.last_expires_at", after),
        _unnoted(sql, kind, cycle),
    ]
    return await _page(sql, conditions, cycle, "e.last_expires_at", limit)


async def expiring(
    kind: str,
    now: datetime,
    horizon: datetime,
    after: tuple[datetime, int] | None,
    limit: int,
) -> list[Candidate]:
    """Enrollments whose newest award is in force, expires by `horizon` and has its
    recertification window open, without a `kind` notice for the next cycle; in
    (last_expires_at, id) order."""
    sql = Sql()
    cycle = "(e.last_award_cycle + 1)"
    conditions = [
        f"e.last_expires_at > {sql.p(now)}",
        f"e.last_expires_at <= {sql.p(horizon)}",
        f"e.window_opens_at <= {sql.p(now)}",
        _after(sql, "e.last_expires_at", after),
        _unnoted(sql, kind, cycle),
    ]
    return await _page(sql, conditions, cycle, "e.last_expires_at", limit)


async def longest_window_days() -> int:
    """The longest recertification window of any certification (0 when there is none)."""
    rows = await fetch(
        "SELECT MAX(recertification_window_days) AS longest FROM certification", Sql()
    )
    value = rows[0]["longest"] if rows else None
    return int(value) if value is not None else 0


async def note_once(
    kind: str, notices: Sequence[tuple[int, int]], noted_at: datetime
) -> set[tuple[int, int]]:
    """Insert a `kind` notice for each (enrollment_id, cycle) unless one exists; return the
    pairs this call inserted (the compare-and-set each sweeper wins or loses).

    One statement, ON CONFLICT DO NOTHING on the (enrollment, kind, cycle) unique key, so a
    lost race does not abort the caller's transaction. The rows go in (enrollment, cycle)
    order: on PostgreSQL a sweeper waits on a racing one's uncommitted notice and then skips
    it, and one order for every sweeper means two never wait on each other crosswise.
    """
    ordered = sorted(set(notices))
    if not ordered:
        return set()
    sql = Sql()
    values = ",".join(
        f"({sql.p(enrollment_id)},{sql.p(kind)},{sql.p(cycle)},{sql.p(noted_at)})"
        for enrollment_id, cycle in ordered
    )
    text = (
        'INSERT INTO "enrollment_notice" ("enrollment_id","kind","cycle","noted_at")'
        f' VALUES {values} ON CONFLICT ("enrollment_id","kind","cycle") DO NOTHING'
        ' RETURNING "enrollment_id","cycle"'
    )
    # the dict form: it fetches rows on PostgreSQL, where execute_query drops an INSERT's
    rows = await get_connection("default").execute_query_dict(text, sql.params)
    return {(int(row["enrollment_id"]), int(row["cycle"])) for row in rows}


async def forget_notices(enrollment_ids: Sequence[int], kinds: Sequence[str]) -> int:
    """Delete these enrollments' notices of these kinds (every cycle); how many."""
    if not enrollment_ids or not kinds:
        return 0
    return await EnrollmentNotice.filter(
        enrollment_id__in=sorted(set(enrollment_ids)), kind__in=list(kinds)
    ).delete()
