"""Hand-written SQL, where its semantics are the point: the computed sorts and keysets
(RELEVANCE), report counts, the award's INSERT ... ON CONFLICT DO NOTHING, the learners'
FOR UPDATE locks and the event deliveries' claim (NOT EXISTS, SKIP LOCKED). Placeholders
and datetimes follow the default connection's dialect. The admin lists' filters
(gql.store.search) are built on its status and overdue conditions."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from tortoise.connection import get_connection

from gql.store.records import (
    CERTIFICATION_COLUMNS,
    ENROLLMENT_COLUMNS,
    CertificationRecord,
    EnrollmentRecord,
)
from gql.vocabulary import (
    CertificationKind,
    CertificationState,
    CertificationType,
    EnrollmentOrigin,
)


def _dialect() -> str:
    return str(get_connection("default").capabilities.dialect)


@dataclass
class Sql:
    """Collects SQL text and parameters; `p(value)` returns the right placeholder."""

    dialect: str = field(default_factory=_dialect)
    params: list[Any] = field(default_factory=list)

    def p(self, value: Any) -> str:
        if isinstance(value, datetime):
            value = self.datetime_value(value)
        elif isinstance(value, date) and self.dialect == "sqlite":
            value = value.isoformat()  # as Tortoise stores a DateField there
        self.params.append(value)
        # numbered placeholders on both, so parameters may be bound in any textual order
        return f"?{len(self.params)}" if self.dialect == "sqlite" else f"${len(self.params)}"

    def ps(self, values: Iterable[Any]) -> str:
        """Placeholders for a list of values, e.g. the inside of IN (...)."""
        return ",".join(self.p(value) for value in values)

    def datetime_value(self, value: datetime) -> Any:
        value = value.astimezone(UTC)
        # SQLite stores Tortoise datetimes as text in str(datetime) form; comparing against
        # the same form keeps text order equal to time order.
        return str(value) if self.dialect == "sqlite" else value

    def like(self, column: str, text: str) -> str:
        escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        op = "LIKE" if self.dialect == "sqlite" else "ILIKE"
        return f"{column} {op} {self.p('%' + escaped + '%')} ESCAPE '\\'"


@dataclass(frozen=True, slots=True)
class SortKey:
    """One ORDER BY term. A nullable expression must follow a key that orders its NULLs
    (a 0/1 flag), so NULLs are only ever compared with NULLs: then every key reversed reads
    the list backwards (gql.domain.pages.Window.order), whatever NULL order a database
    gives DESC.

    `type` is what a cursor carries for it (gql.domain.pages checks cursors against it):
    "int", "str", or "datetime?" (a nullable datetime).
    """

    expr: str
    alias: str
    descending: bool = False
    type: str = "int"


def keyset_condition(sql: Sql, keys: list[SortKey], after: list[Any]) -> str:
    """Rows strictly after the cursor `after` in the order `keys` (mixed directions, NULLs).

    Expands the row comparison into OR branches; a NULL cursor value only matches NULL and
    never has a "greater" branch, because the flag key before it already ordered the NULLs.
    """
    branches: list[str] = []
    for i, key in enumerate(keys):
        if after[i] is None:
            continue  # bind no parameters for a branch that is not emitted
        terms: list[str] = []
        for prev, value in zip(keys[:i], after[:i], strict=True):
            terms.append(
                f"{prev.expr} IS NULL" if value is None else f"{prev.expr} = {sql.p(value)}"
            )
        value = after[i]
        op = "<" if key.descending else ">"
        terms.append(f"{key.expr} {op} {sql.p(value)}")
        branches.append("(" + " AND ".join(terms) + ")")
    return "(" + " OR ".join(branches) + ")" if branches else "1=0"


def order_by(keys: list[SortKey]) -> str:
    return ", ".join(f"{k.expr} {'DESC' if k.descending else 'ASC'}" for k in keys)


async def fetch(sql_text: str, sql: Sql) -> list[dict[str, Any]]:
    rows = await get_connection("default").execute_query_dict(sql_text, sql.params)
    return rows


# Stored Enrollment.verdict_status values, see gql.domain.status.
_COMPLETED = (
    "e.last_awarded_at IS NOT NULL AND (e.last_expires_at IS NULL OR e.last_expires_at > {now})"
)


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


def overdue_condition(sql: Sql, now: datetime) -> str:
    """Past its due date and not COMPLETED (the enrollment view's and the report's rule)."""
    return (
        f"(e.due_at IS NOT NULL AND e.due_at < {sql.p(now)}"
        f" AND NOT ({_COMPLETED.format(now=sql.p(now))}))"
    )


def status_conditions(
    sql: Sql, statuses: Sequence[str] | None, overdue: bool | None, now: datetime
) -> list[str]:
    """Enrollments (alias `e`) of these derived statuses (None: any), overdue or not (None:
    either); the statuses as `_status` derives them, so lists agree with the report."""
    where = []
    if statuses is not None:
        where.append(f"{_status(sql.p(now))} IN ({sql.ps(sorted(set(statuses)))})")
    if overdue is not None:
        condition = overdue_condition(sql, now)
        where.append(condition if overdue else f"NOT {condition}")
    return where


def _keys(sort: str, row_id: str, bucket: str, origin: str) -> list[SortKey]:
    """The keys of a certification sort, named as gql.domain.pages.CertificationSort names it."""
    due_null = SortKey("CASE WHEN e.due_at IS NULL THEN 1 ELSE 0 END", "k_due_null")
    due = SortKey("e.due_at", "k_due", type="datetime?")
    pub_null = SortKey("CASE WHEN c.published_at IS NULL THEN 1 ELSE 0 END", "k_pub_null")
    newest = SortKey("c.published_at", "k_pub", True, "datetime?")
    if sort == "RELEVANCE":
        return [
            SortKey(bucket, "k_bucket"),
            due_null,
            due,
            SortKey(origin, "k_origin"),
            pub_null,
            newest,
            SortKey(row_id, "k_id"),
        ]
    if sort == "PUBLISHED_NEWEST":
        return [pub_null, newest, SortKey(row_id, "k_id", True)]
    if sort == "PUBLISHED_OLDEST":
        return [
            pub_null,
            SortKey("c.published_at", "k_pub", type="datetime?"),
            SortKey(row_id, "k_id"),
        ]
    if sort == "NAME_ASC":
        return [SortKey("c.name", "k_name", type="str"), SortKey(row_id, "k_id")]
    if sort == "NAME_DESC":
        return [SortKey("c.name", "k_name", True, "str"), SortKey(row_id, "k_id", True)]
    if sort == "DUE_DATE":
        return [due_null, due, SortKey(row_id, "k_id")]
    raise ValueError(f"unknown sort {sort}")


# "now" appears inside key expressions; it is bound per query, so keys hold a marker.
_NOW = "\x00now\x00"


def enrollment_keys(sort: str) -> list[SortKey]:
    origin = "CASE WHEN e.origin = 'ASSIGNED' THEN 0 ELSE 1 END"
    return _keys(sort, "e.id", _bucket(_NOW), origin)


def catalog_keys(sort: str) -> list[SortKey]:
    bucket = f"CASE WHEN e.id IS NULL THEN 5 ELSE {_bucket(_NOW)} END"
    origin = "CASE WHEN e.id IS NULL THEN 2 WHEN e.origin = 'ASSIGNED' THEN 0 ELSE 1 END"
    return _keys(sort, "c.id", bucket, origin)


def _bind(keys: list[SortKey], sql: Sql, now: datetime) -> list[SortKey]:
    bound = []
    for key in keys:
        expr = key.expr
        while _NOW in expr:
            expr = expr.replace(_NOW, sql.p(now), 1)
        bound.append(SortKey(expr, key.alias, key.descending, key.type))
    return bound


def as_datetime(value: Any) -> Any:
    """Raw SQLite rows carry datetimes as the text Tortoise stored; cursors carry datetimes."""
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return value
    return value


def key_values(row: dict[str, Any], keys: list[SortKey]) -> list[Any]:
    """A row's values of `keys`, as a cursor carries them."""
    return [
        as_datetime(row[k.alias]) if k.type.startswith("datetime") else row[k.alias] for k in keys
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
    columns: str = "",
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
        f"SELECT {id_column} AS id, {select}{columns} FROM {base_from}"
        f" WHERE {' AND '.join(conditions) or '1=1'} ORDER BY {order} LIMIT {int(limit)}",
        sql,
    )
    return rows, int(count_rows[0]["n"])


# Each listed row carries its enrollment and certification: the page is the read.
_ENROLLMENT_SELECT = "".join(
    [f", e.{column} AS e_{column}" for column in ENROLLMENT_COLUMNS]
    + [f", c.{column} AS c_{column}" for column in CERTIFICATION_COLUMNS]
)
_DATETIMES = frozenset(
    {"enrolled_at", "started_at", "due_at", "last_awarded_at", "last_expires_at"}
    | {"window_opens_at", "updated_at", "published_at", "ended_at"}
)


# (the record's field, the listed row's key, whether it is a datetime), worked out once.
_CERTIFICATION_KEYS = tuple(
    (column, f"c_{column}", column in _DATETIMES) for column in CERTIFICATION_COLUMNS
)
_ENROLLMENT_KEYS = tuple(
    (column, f"e_{column}", column in _DATETIMES) for column in ENROLLMENT_COLUMNS
)


def enrollment_record(row: dict[str, Any]) -> EnrollmentRecord:
    """The enrollment (with its certification) a listed row carries."""
    cert = {
        column: as_datetime(row[key]) if is_datetime else row[key]
        for column, key, is_datetime in _CERTIFICATION_KEYS
    }
    config = cert["policy_config"]
    cert["policy_config"] = json.loads(config) if isinstance(config, str | bytes) else config
    cert["kind"] = CertificationKind(cert["kind"])
    cert["type"] = CertificationType(cert["type"])
    cert["state"] = CertificationState(cert["state"])
    values = {
        column: as_datetime(row[key]) if is_datetime else row[key]
        for column, key, is_datetime in _ENROLLMENT_KEYS
    }
    values["origin"] = EnrollmentOrigin(values["origin"])
    values["verdict_progress"] = float(values["verdict_progress"])
    return EnrollmentRecord(**values, certification=CertificationRecord(**cert))


async def enrollment_pages(
    *,
    learner_ids: list[int],
    keys: list[SortKey],
    pending: bool,
    kind: str | None,
    now: datetime,
    after: list[Any] | None,
    limit: int,
    include_ended: bool = False,
    statuses: Sequence[str] | None = None,
    overdue: bool | None = None,
) -> tuple[dict[int, list[dict[str, Any]]], dict[int, int]]:
    """Each learner's first `limit` enrollments after `after` in the order of `keys`, and
    each learner's total; two statements for any number of learners (one page per learner:
    ROW_NUMBER() OVER (PARTITION BY learner), on SQLite and PostgreSQL alike). Ended
    (unassigned) enrollments only when `include_ended`."""
    sql = Sql()
    where = [f"e.learner_id IN ({sql.ps(learner_ids)})"]
    if not include_ended:
        where.append("e.ended_at IS NULL")
    if kind is not None:
        where.append(f"c.kind = {sql.p(str(kind))}")
    where += status_conditions(sql, statuses, overdue, now)
    if pending:
        # not COMPLETED, or COMPLETED with its recertification window open
        where.append(
            "(e.last_awarded_at IS NULL"
            f" OR (e.window_opens_at IS NOT NULL AND e.window_opens_at <= {sql.p(now)})"
            f" OR (e.last_expires_at IS NOT NULL AND e.last_expires_at <= {sql.p(now)}))"
        )
    base = "enrollment e JOIN certification c ON c.id = e.certification_id"
    if len(learner_ids) == 1:  # one learner's list: a plain ORDER BY ... LIMIT
        rows, total = await _page(
            base, where, sql, keys, now, after, limit, "e.id", _ENROLLMENT_SELECT
        )
        return {learner_ids[0]: rows} if rows else {}, {learner_ids[0]: total} if total else {}
    counts = await fetch(
        f"SELECT e.learner_id AS learner, COUNT(*) AS n FROM {base}"
        f" WHERE {' AND '.join(where)} GROUP BY e.learner_id",
        Sql(params=list(sql.params)),
    )
    page_sql = Sql(params=list(sql.params))
    bound = _bind(keys, page_sql, now)
    conditions = list(where)
    if after is not None:
        conditions.append(keyset_condition(page_sql, _bind(keys, page_sql, now), after))
    select = ", ".join(f"{k.expr} AS {k.alias}" for k in bound)
    window_order = order_by(_bind(keys, page_sql, now))
    rows = await fetch(
        f"SELECT * FROM (SELECT e.id AS id, e.learner_id AS learner, {select}{_ENROLLMENT_SELECT},"
        f" ROW_NUMBER() OVER (PARTITION BY e.learner_id ORDER BY {window_order}) AS k_rank"
        f" FROM {base} WHERE {' AND '.join(conditions)}) ranked"
        f" WHERE k_rank <= {int(limit)} ORDER BY learner, k_rank",
        page_sql,
    )
    pages: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        pages.setdefault(int(row["learner"]), []).append(row)
    return pages, {int(r["learner"]): int(r["n"]) for r in counts}


async def catalog_page(
    *,
    viewer_id: int | None,
    keys: list[SortKey],
    states: Sequence[str] | None,
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
        f" ON e.certification_id = c.id AND e.learner_id = {viewer} AND e.ended_at IS NULL"
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


# The enrollment's learner is not deactivated (alias `e`).
_ACTIVE_LEARNER = (
    'NOT EXISTS (SELECT 1 FROM "user" du WHERE du.id = e.learner_id'
    " AND du.deactivated_at IS NOT NULL)"
)


async def status_counts(
    certification_id: int, team_of: int | None, now: datetime
) -> tuple[dict[str, int], int]:
    """Enrollments by derived status, and how many are overdue; `team_of` scopes to a manager.
    Ended (unassigned) enrollments and deactivated people are not counted, as the lists
    leave them out by default."""
    sql = Sql()
    status = _status(sql.p(now))
    rows = await fetch(
        f"SELECT {status} AS status, COUNT(*) AS n FROM enrollment e"
        f" WHERE e.certification_id = {sql.p(certification_id)} AND {_team_condition(sql, team_of)}"
        f" AND e.ended_at IS NULL AND {_ACTIVE_LEARNER} GROUP BY 1",
        sql,
    )
    over = Sql()
    overdue = await fetch(
        "SELECT COUNT(*) AS n FROM enrollment e"
        f" WHERE e.certification_id = {over.p(certification_id)}"
        f" AND {_team_condition(over, team_of)} AND e.ended_at IS NULL AND {_ACTIVE_LEARNER}"
        f" AND e.due_at IS NOT NULL AND e.due_at < {over.p(now)}"
        f" AND NOT ({_COMPLETED.format(now=over.p(now))})",
        over,
    )
    return {str(r["status"]): int(r["n"]) for r in rows}, int(overdue[0]["n"])


async def count_expiring(
    certification_id: int, team_of: int | None, now: datetime, until: datetime
) -> int:
    """Awards in force now that expire by `until` (of enrollments not ended, of people not
    deactivated)."""
    sql = Sql()
    rows = await fetch(
        "SELECT COUNT(*) AS n FROM enrollment e"
        f" WHERE e.certification_id = {sql.p(certification_id)} AND {_team_condition(sql, team_of)}"
        f" AND e.ended_at IS NULL AND {_ACTIVE_LEARNER}"
        f" AND e.last_awarded_at IS NOT NULL AND e.last_expires_at IS NOT NULL"
        f" AND e.last_expires_at > {sql.p(now)} AND e.last_expires_at <= {sql.p(until)}",
        sql,
    )
    return int(rows[0]["n"])


async def insert_award_once(
    enrollment_id: int,
    cycle: int,
    awarded_at: datetime,
    expires_at: datetime | None,
    earned_on: date,
    expires_on: date | None,
    created_at: datetime,
) -> int | None:
    """Insert the award of this enrollment's cycle unless one exists; the new row's id, or
    None when another request wrote it first.

    Losing that race must not abort the caller's transaction: ON CONFLICT DO NOTHING on the
    (enrollment, cycle) unique key is one statement, on SQLite and PostgreSQL alike, where
    the ORM's insert needs a savepoint around it.
    """
    sql = Sql()
    values = ",".join(
        sql.p(value)
        for value in (
            enrollment_id,
            cycle,
            awarded_at,
            expires_at,
            earned_on,
            expires_on,
            created_at,
        )
    )
    text = (
        'INSERT INTO "award" ("enrollment_id","cycle","awarded_at","expires_at","earned_on",'
        '"expires_on","created_at")'
        f' VALUES ({values}) ON CONFLICT ("enrollment_id","cycle") DO NOTHING RETURNING "id"'
    )
    # the dict form: it fetches rows on PostgreSQL, where execute_query drops an INSERT's
    rows = await get_connection("default").execute_query_dict(text, sql.params)
    return int(rows[0]["id"]) if rows else None


async def lock_users(user_ids: list[int]) -> set[int]:
    """Lock these users' rows until the transaction ends (PostgreSQL FOR UPDATE, in id order,
    so two writers never wait on each other crosswise); the ids that exist.

    SQLite has no row locks (its writers hold the database's write lock) and reads the rows.
    Tortoise drops FOR UPDATE from its values queries, and its model form costs several
    times the statement on the path of every progress report.
    """
    if not user_ids:
        return set()
    sql = Sql()
    ids = sql.ps(sorted(set(user_ids)))
    lock = "" if sql.dialect == "sqlite" else " FOR UPDATE"
    text = f'SELECT "id" FROM "user" WHERE "id" IN ({ids}) ORDER BY "id" ASC{lock}'
    _, rows = await get_connection("default").execute_query(text, sql.params)
    return {int(row[0]) for row in rows}


async def claimable_deliveries(
    plugin_targets: Sequence[str], now: datetime, limit: int
) -> list[int]:
    """Ids of due, unleased deliveries with no earlier pending event for the same
    destination and learner (the order guarantee), oldest event first. On PostgreSQL the
    rows are locked FOR UPDATE and rows another dispatcher is claiming are skipped."""
    q = Sql()
    mine = f"d.target IN ({q.ps(plugin_targets)})" if plugin_targets else "1=0"
    text = (
        "SELECT d.id FROM event_delivery d"
        f" WHERE d.state = 'PENDING' AND d.next_attempt_at <= {q.p(now)}"
        f" AND (d.locked_until IS NULL OR d.locked_until <= {q.p(now)})"
        # a disabled endpoint's deliveries wait (re-enabling it sends them)
        " AND (EXISTS (SELECT 1 FROM webhook w WHERE w.id = d.webhook_id AND w.enabled)"
        f" OR {mine})"
        " AND NOT EXISTS (SELECT 1 FROM event_delivery e WHERE e.target = d.target"
        " AND e.ordering_key = d.ordering_key AND e.state = 'PENDING'"
        " AND e.event_id < d.event_id)"
        f" ORDER BY d.event_id, d.id LIMIT {int(limit)}"
    )
    if q.dialect != "sqlite":
        text += " FOR UPDATE OF d SKIP LOCKED"
    return [int(row["id"]) for row in await fetch(text, q)]
