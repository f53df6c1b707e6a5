"""The admin lists' hand-written SQL: enrollments by certification, learner, manager, derived
status, overdue and due date (Query.enrollments, and the export that streams the same search
in keyset batches), and the direct reports of many managers at once (User.reports).

Which people a viewer may see arrives as a `PersonScope` (gql.domain.access decides it);
statuses and overdue are the expressions of gql.store.sql, so a list agrees with the
certification report's counts. Placeholders and datetimes follow the connection's dialect.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gql.store.models import User
from gql.store.records import USER_COLUMNS, EnrollmentRecord, UserRecord
from gql.store.sql import (
    _ENROLLMENT_SELECT,
    SortKey,
    Sql,
    enrollment_record,
    fetch,
    keyset_condition,
    order_by,
    status_conditions,
)


@dataclass(frozen=True, slots=True)
class PersonScope:
    """The people a viewer may see, for SQL: those whose id is in `ids`, and the direct
    reports of `team_of` (when set). None (instead of a scope) means everyone."""

    ids: tuple[int, ...] = ()
    team_of: int | None = None


def person_condition(sql: Sql, scope: PersonScope | None, alias: str) -> str:
    """The rows of table `alias` ("user" rows) the scope lets through."""
    if scope is None:
        return "1=1"
    terms = []
    if scope.ids:
        terms.append(f"{alias}.id IN ({sql.ps(scope.ids)})")
    if scope.team_of is not None:
        terms.append(f"{alias}.manager_id = {sql.p(scope.team_of)}")
    return "(" + " OR ".join(terms) + ")" if terms else "1=0"


@dataclass(frozen=True, slots=True)
class EnrollmentSearch:
    """What Query.enrollments selects, as columns hold it. None: no condition."""

    scope: PersonScope | None
    certification_id: int | None = None
    learner_id: int | None = None
    manager_id: int | None = None
    statuses: tuple[str, ...] | None = None
    overdue: bool | None = None
    due_before: datetime | None = None  # exclusive
    due_after: datetime | None = None  # inclusive
    include_ended: bool = False
    learner_active: bool | None = True


# Each enrollment joined with its certification (the page is the read) and its learner (the
# scope, managerId and the learner's deactivation are conditions on the learner's row).
_SEARCH_FROM = (
    "enrollment e JOIN certification c ON c.id = e.certification_id"
    ' JOIN "user" u ON u.id = e.learner_id'
)
_COUNT_FROM = 'enrollment e JOIN "user" u ON u.id = e.learner_id'
# Enrollment ids only: keyset pages in id order (oldest enrollment first).
SEARCH_KEYS = [SortKey("e.id", "k_id")]


def _search_where(sql: Sql, search: EnrollmentSearch, now: datetime) -> list[str]:
    where = [person_condition(sql, search.scope, "u")]
    if search.certification_id is not None:
        where.append(f"e.certification_id = {sql.p(search.certification_id)}")
    if search.learner_id is not None:
        where.append(f"e.learner_id = {sql.p(search.learner_id)}")
    if search.manager_id is not None:
        where.append(f"u.manager_id = {sql.p(search.manager_id)}")
    where += status_conditions(sql, search.statuses, search.overdue, now)
    if search.due_before is not None:
        where.append(f"e.due_at < {sql.p(search.due_before)}")
    if search.due_after is not None:
        where.append(f"e.due_at >= {sql.p(search.due_after)}")
    if not search.include_ended:
        where.append("e.ended_at IS NULL")
    if search.learner_active is not None:
        where.append(f"u.deactivated_at IS {'' if search.learner_active else 'NOT '}NULL")
    return where


async def count_enrollments(search: EnrollmentSearch, now: datetime) -> int:
    sql = Sql()
    where = _search_where(sql, search, now)
    rows = await fetch(f"SELECT COUNT(*) AS n FROM {_COUNT_FROM} WHERE {' AND '.join(where)}", sql)
    return int(rows[0]["n"])


async def enrollments(
    search: EnrollmentSearch,
    now: datetime,
    after: list[Any] | None,
    limit: int,
    keys: list[SortKey] = SEARCH_KEYS,
) -> list[EnrollmentRecord]:
    """Up to `limit` enrollments (each with its certification) after the cursor `after`
    (the values of SEARCH_KEYS: the id) in the order of `keys` (SEARCH_KEYS, or reversed to
    read backwards). One statement."""
    sql = Sql()
    where = _search_where(sql, search, now)
    if after is not None:
        where.append(keyset_condition(sql, keys, after))
    select = ", ".join(f"{k.expr} AS {k.alias}" for k in keys)
    rows = await fetch(
        f"SELECT e.id AS id, {select}{_ENROLLMENT_SELECT} FROM {_SEARCH_FROM}"
        f" WHERE {' AND '.join(where)} ORDER BY {order_by(keys)} LIMIT {int(limit)}",
        sql,
    )
    return [enrollment_record(row) for row in rows]


# -- a manager's direct reports ---------------------------------------------------------------

# Reports are listed by name, then id (as Query.users lists people).
REPORT_KEYS = [SortKey("u.name", "k_name", type="str"), SortKey("u.id", "k_id")]


def _reports_where(
    sql: Sql, manager_ids: Sequence[int], scope: PersonScope | None, active: bool | None
) -> list[str]:
    where = [f"u.manager_id IN ({sql.ps(manager_ids)})", person_condition(sql, scope, "u")]
    if active is not None:
        where.append(f"u.deactivated_at IS {'' if active else 'NOT '}NULL")
    return where


async def report_pages(
    *,
    manager_ids: Sequence[int],
    scope: PersonScope | None,
    active: bool | None,
    after: list[Any] | None,
    limit: int,
    keys: list[SortKey] = REPORT_KEYS,
) -> tuple[dict[int, list[tuple[UserRecord, list[Any]]]], dict[int, int]]:
    """Each manager's first `limit` direct reports after `after` (values of REPORT_KEYS) in
    the order of `keys` (REPORT_KEYS, or reversed to read backwards) that the scope lets
    through, each with its key values; and each manager's total. Three statements for any
    number of managers (ROW_NUMBER() OVER (PARTITION BY manager))."""
    if not manager_ids:
        return {}, {}
    count_sql = Sql()
    counts = await fetch(
        'SELECT u.manager_id AS manager, COUNT(*) AS n FROM "user" u'
        f" WHERE {' AND '.join(_reports_where(count_sql, manager_ids, scope, active))}"
        " GROUP BY u.manager_id",
        count_sql,
    )
    sql = Sql()
    where = _reports_where(sql, manager_ids, scope, active)
    if after is not None:
        where.append(keyset_condition(sql, keys, after))
    select = ", ".join(f"{k.expr} AS {k.alias}" for k in keys)
    ranked = await fetch(
        f"SELECT * FROM (SELECT u.id AS id, u.manager_id AS manager, {select},"
        f" ROW_NUMBER() OVER (PARTITION BY u.manager_id ORDER BY {order_by(keys)})"
        f' AS k_rank FROM "user" u WHERE {" AND ".join(where)}) ranked'
        f" WHERE k_rank <= {int(limit)} ORDER BY manager, k_rank",
        sql,
    )
    records: dict[int, UserRecord] = {}
    if ranked:
        ids = [int(row["id"]) for row in ranked]
        for values in await User.filter(id__in=ids).values_list(*USER_COLUMNS):
            records[values[0]] = UserRecord(*values)
    pages: dict[int, list[tuple[UserRecord, list[Any]]]] = {}
    for row in ranked:
        record = records.get(int(row["id"]))
        if record is not None:  # gone between the two reads
            sort_values = [row[k.alias] for k in keys]
            pages.setdefault(int(row["manager"]), []).append((record, sort_values))
    return pages, {int(r["manager"]): int(r["n"]) for r in counts}
