"""The list queries whose order is computed in SQL: learners' enrollments, the catalog, reports.

RELEVANCE (domain.md "What learners see") is a CASE over stored columns and "now", so a
page is one indexed query and a keyset cursor, whatever the page number.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from gql.domain.pages import CertificationSort, as_datetime
from gql.store.sql import SortKey, Sql, fetch, keyset_condition

# Stored Enrollment.verdict_status values, see gql.domain.status.
_COMPLETED = (
    "e.last_awarded_at IS NOT NULL AND (e.last_expires_at IS NULL OR e.last_expires_at > {now})"
)

_DATETIME_ALIASES = {"k_due", "k_pub"}


def _bucket(now: str) -> str:
    """needs action 0, in progress 1, not started 2, waiting 3, completed 4."""
    return (
        "CASE"
        f" WHEN {_COMPLETED.format(now=now)} THEN 4"
        " WHEN e.last_awarded_at IS NOT NULL THEN 0"
        " WHEN e.verdict_status = 'REJECTED' THEN 0"
        f" WHEN e.due_at IS NOT NULL AND e.due_at < {now} THEN 0"
        " WHEN e.verdict_status IN ('STARTED', 'COMPLETE') THEN 1"
        " WHEN e.verdict_status = 'PENDING_APPROVAL' THEN 3"
        " ELSE 2 END"
    )


def _status(now: str) -> str:
    return (
        "CASE"
        f" WHEN {_COMPLETED.format(now=now)} THEN 'COMPLETED'"
        " WHEN e.last_awarded_at IS NOT NULL THEN 'EXPIRED'"
        " WHEN e.verdict_status = 'COMPLETE' THEN 'STARTED'"
        " ELSE e.verdict_status END"
    )


def _keys(sort: CertificationSort, row_id: str, bucket: str, origin: str) -> list[SortKey]:
    due_null = SortKey("CASE WHEN e.due_at IS NULL THEN 1 ELSE 0 END", "k_due_null")
    due = SortKey("e.due_at", "k_due")
    pub_null = SortKey("CASE WHEN c.published_at IS NULL THEN 1 ELSE 0 END", "k_pub_null")
    if sort == CertificationSort.RELEVANCE:
        return [
            SortKey(bucket, "k_bucket"),
            due_null,
            due,
            SortKey(origin, "k_origin"),
            pub_null,
            SortKey("c.published_at", "k_pub", descending=True),
            SortKey(row_id, "k_id"),
        ]
    if sort == CertificationSort.PUBLISHED_NEWEST:
        return [pub_null, SortKey("c.published_at", "k_pub", True), SortKey(row_id, "k_id", True)]
    if sort == CertificationSort.PUBLISHED_OLDEST:
        return [pub_null, SortKey("c.published_at", "k_pub"), SortKey(row_id, "k_id")]
    if sort == CertificationSort.NAME_ASC:
        return [SortKey("c.name", "k_name"), SortKey(row_id, "k_id")]
    if sort == CertificationSort.NAME_DESC:
        return [SortKey("c.name", "k_name", True), SortKey(row_id, "k_id", True)]
    return [due_null, due, SortKey(row_id, "k_id")]  # DUE_DATE


# "now" appears inside key expressions; it is bound per query, so keys hold a marker.
_NOW = "\x00now\x00"


def enrollment_keys(sort: CertificationSort) -> list[SortKey]:
    origin = "CASE WHEN e.origin = 'ASSIGNED' THEN 0 ELSE 1 END"
    return _keys(sort, "e.id", _bucket(_NOW), origin)


def catalog_keys(sort: CertificationSort) -> list[SortKey]:
    bucket = f"CASE WHEN e.id IS NULL THEN 5 ELSE {_bucket(_NOW)} END"
    origin = "CASE WHEN e.id IS NULL THEN 2 WHEN e.origin = 'ASSIGNED' THEN 0 ELSE 1 END"
    return _keys(sort, "c.id", bucket, origin)


def _bind(keys: list[SortKey], sql: Sql, now: datetime) -> list[SortKey]:
    bound = []
    for key in keys:
        expr = key.expr
        while _NOW in expr:
            expr = expr.replace(_NOW, sql.p(now), 1)
        bound.append(SortKey(expr, key.alias, key.descending))
    return bound


def key_values(row: dict[str, Any], keys: list[SortKey]) -> list[Any]:
    return [
        as_datetime(row[k.alias]) if k.alias in _DATETIME_ALIASES else row[k.alias] for k in keys
    ]


async def _page(
    base_from: str,
    where: list[str],
    where_sql: Sql,
    keys: list[SortKey],
    now: datetime,
    after: list[Any] | None,
    limit: int,
    id_column: str,
) -> tuple[list[dict[str, Any]], int]:
    count_sql = Sql(params=list(where_sql.params))
    count_rows = await fetch(
        f"SELECT COUNT(*) AS n FROM {base_from} WHERE {' AND '.join(where) or '1=1'}", count_sql
    )
    sql = Sql(params=list(where_sql.params))
    bound = _bind(keys, sql, now)
    conditions = list(where)
    if after is not None:
        keyset_keys = _bind(keys, sql, now)
        conditions.append(keyset_condition(sql, keyset_keys, after))
    select = ", ".join(f"{k.expr} AS {k.alias}" for k in bound)
    order = ", ".join(f"{k.alias} {'DESC' if k.descending else 'ASC'}" for k in bound)
    rows = await fetch(
        f"SELECT {id_column} AS id, {select} FROM {base_from}"
        f" WHERE {' AND '.join(conditions) or '1=1'} ORDER BY {order} LIMIT {int(limit)}",
        sql,
    )
    return rows, int(count_rows[0]["n"])


async def enrollment_page(
    *,
    learner_id: int,
    keys: list[SortKey],
    pending: bool,
    kind: str | None,
    now: datetime,
    after: list[Any] | None,
    limit: int,
) -> tuple[list[dict[str, Any]], int]:
    sql = Sql()
    where = [f"e.learner_id = {sql.p(learner_id)}"]
    if kind is not None:
        where.append(f"c.kind = {sql.p(str(kind))}")
    if pending:
        # not COMPLETED, or COMPLETED with its recertification window open
        where.append(
            "(e.last_awarded_at IS NULL"
            f" OR (e.window_opens_at IS NOT NULL AND e.window_opens_at <= {sql.p(now)})"
            f" OR (e.last_expires_at IS NOT NULL AND e.last_expires_at <= {sql.p(now)}))"
        )
    base = "enrollment e JOIN certification c ON c.id = e.certification_id"
    return await _page(base, where, sql, keys, now, after, limit, "e.id")


async def catalog_page(
    *,
    viewer_id: int | None,
    keys: list[SortKey],
    states: list[str] | None,
    kind: str | None,
    search: str | None,
    now: datetime,
    after: list[Any] | None,
    limit: int,
) -> tuple[list[dict[str, Any]], int]:
    sql = Sql()
    viewer = sql.p(viewer_id if viewer_id is not None else -1)
    base = (
        "certification c LEFT JOIN enrollment e"
        f" ON e.certification_id = c.id AND e.learner_id = {viewer}"
    )
    where: list[str] = []
    if states:
        where.append("c.state IN (" + ", ".join(sql.p(str(s)) for s in states) + ")")
    if kind is not None:
        where.append(f"c.kind = {sql.p(str(kind))}")
    if search:
        where.append(
            "(" + sql.like("c.name", search) + " OR " + sql.like("c.overview", search) + ")"
        )
    return await _page(base, where, sql, keys, now, after, limit, "c.id")


def _team_condition(sql: Sql, team_of: int | None) -> str:
    if team_of is None:
        return "1=1"
    manager = sql.p(team_of)
    reports = f'SELECT id FROM "user" WHERE manager_id = {sql.p(team_of)}'
    return f"(e.learner_id = {manager} OR e.learner_id IN ({reports}))"


async def status_counts(
    certification_id: int, team_of: int | None, now: datetime
) -> tuple[dict[str, int], int]:
    """Enrollments by derived status, and how many are overdue; `team_of` scopes to a manager."""
    sql = Sql()
    status = _status(sql.p(now))
    rows = await fetch(
        f"SELECT {status} AS status, COUNT(*) AS n FROM enrollment e"
        f" WHERE e.certification_id = {sql.p(certification_id)} AND {_team_condition(sql, team_of)}"
        f" GROUP BY 1",
        sql,
    )
    over = Sql()
    overdue = await fetch(
        "SELECT COUNT(*) AS n FROM enrollment e"
        f" WHERE e.certification_id = {over.p(certification_id)}"
        f" AND {_team_condition(over, team_of)}"
        f" AND e.due_at IS NOT NULL AND e.due_at < {over.p(now)}"
        f" AND NOT ({_COMPLETED.format(now=over.p(now))})",
        over,
    )
    return {str(r["status"]): int(r["n"]) for r in rows}, int(overdue[0]["n"])


async def count_expiring(
    certification_id: int, team_of: int | None, now: datetime, until: datetime
) -> int:
    """Awards in force now that expire by `until`."""
    sql = Sql()
    rows = await fetch(
        "SELECT COUNT(*) AS n FROM enrollment e"
        f" WHERE e.certification_id = {sql.p(certification_id)} AND {_team_condition(sql, team_of)}"
        f" AND e.last_awarded_at IS NOT NULL AND e.last_expires_at IS NOT NULL"
        f" AND e.last_expires_at > {sql.p(now)} AND e.last_expires_at <= {sql.p(until)}",
        sql,
    )
    return int(rows[0]["n"])
