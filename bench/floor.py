"""The floor: a hand-written Starlette app answering the benchmark's operations with raw SQL.

    BENCH_FLOOR_DB=sqlite://./var/bench/bench-0.1.sqlite3 \
        uvicorn --factory bench.floor:create_app --port 8001

It takes the same POST /graphql bodies as certgraph (chosen by `operationName`: Q0, Q1, Q2,
Q3, M1 as JSON; M2 as a GraphQL multipart request) and returns the same JSON, sending the SQL a
hand-written service would through the raw driver (aiosqlite, one connection per process as
Tortoise's; an asyncpg pool of 1-5, one connection taken per request), with the three built-in
policies' rules written out. Its writes store what certgraph's store (explanations as message
JSON, awards with their calendar days in CERTGRAPH_TIME_ZONE, startedAt past ENROLLED) and put
the same events in the outbox, in their transaction (Outbox); it runs no dispatcher. No
GraphQL, no ORM, no plugin host: its figures are the floor certgraph's are divided by.
"""

from __future__ import annotations

import asyncio
import base64
import calendar
import hashlib
import json
import os
import tempfile
import uuid
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import filetype
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

LAST_USED_GRANULARITY = timedelta(minutes=1)
PAGE_SIZE_DEFAULT = 20
STATUS_ORDER = ("ENROLLED", "STARTED", "PENDING_APPROVAL", "REJECTED", "COMPLETED", "EXPIRED")


# --- the driver -------------------------------------------------------------------------------


class Db(ABC):
    """The few calls the floor needs, on SQLite (aiosqlite) or PostgreSQL (asyncpg).

    A request's statements go through `connection()`, taken once around the request's work
    (as a hand-written service does, and as certgraph lends one per request): its `fetch`
    and `transaction()`. SQL is written with $n placeholders; SQLite reads them as ?n.
    `count` tallies the statements sent, for the report.
    """

    dialect: str
    count: int = 0

    @abstractmethod
    def connection(self) -> Any: ...

    @abstractmethod
    def time_in(self, value: Any) -> datetime | None: ...

    @abstractmethod
    def time_out(self, value: datetime) -> Any: ...

    @abstractmethod
    def day_in(self, value: Any) -> date | None: ...

    @abstractmethod
    def day_out(self, value: date | None) -> Any: ...

    @abstractmethod
    async def close(self) -> None: ...


class SqliteDb(Db):
    dialect = "sqlite"

    def __init__(self, path: str) -> None:
        self.path = path
        self.conn: Any = None
        # One connection per process, as Tortoise has: a transaction holds it for its length.
        self.lock = asyncio.Lock()

    async def open(self) -> None:
        import aiosqlite

        self.conn = await aiosqlite.connect(self.path, isolation_level=None)
        for pragma in ("journal_mode=WAL", "busy_timeout=5000", "synchronous=NORMAL"):
            await self.conn.execute(f"PRAGMA {pragma}")

    @staticmethod
    def _sql(sql: str) -> str:
        return sql.replace("$", "?")

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[SqliteDb]:
        # the process's one connection: each statement (or transaction) takes it in turn
        yield self

    async def fetch(self, sql: str, *args: Any) -> Sequence[Sequence[Any]]:
        async with self.lock:
            self.count += 1
            rows: Sequence[Sequence[Any]] = await self.conn.execute_fetchall(self._sql(sql), args)
            return rows

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[SqliteTx]:
        async with self.lock:
            # BEGIN IMMEDIATE, as gql.store.db.write_transaction: the write lock comes first.
            await self.conn.execute("BEGIN IMMEDIATE")
            tx = SqliteTx(self)
            try:
                yield tx
            except BaseException:
                await self.conn.execute("ROLLBACK")
                raise
            await self.conn.execute("COMMIT")

    def time_in(self, value: Any) -> datetime | None:
        return None if value is None else datetime.fromisoformat(value)

    def time_out(self, value: datetime) -> Any:
        return str(value.astimezone(UTC))

    def day_in(self, value: Any) -> date | None:
        return None if value is None else date.fromisoformat(value)

    def day_out(self, value: date | None) -> Any:
        return None if value is None else value.isoformat()

    async def close(self) -> None:
        await self.conn.close()


class SqliteTx:
    def __init__(self, db: SqliteDb) -> None:
        self.db = db

    async def fetch(self, sql: str, *args: Any) -> Sequence[Sequence[Any]]:
        self.db.count += 1
        rows: Sequence[Sequence[Any]] = await self.db.conn.execute_fetchall(
            SqliteDb._sql(sql), args
        )
        return rows

    async def insert(self, sql: str, *args: Any) -> int:
        self.db.count += 1
        cursor = await self.db.conn.execute(SqliteDb._sql(sql), args)
        rowid: int = cursor.lastrowid
        await cursor.close()
        return rowid

    async def execute(self, sql: str, *args: Any) -> None:
        self.db.count += 1
        await self.db.conn.execute(SqliteDb._sql(sql), args)

    async def control(self, sql: str) -> None:
        await self.db.conn.execute(sql)


class PostgresDb(Db):
    dialect = "postgres"

    def __init__(self, url: str) -> None:
        self.url = url
        self.pool: Any = None

    async def open(self) -> None:
        import asyncpg

        # Tortoise's asyncpg pool defaults: minsize 1, maxsize 5.
        self.pool = await asyncpg.create_pool(self.url, min_size=1, max_size=5)

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[PostgresConn]:
        # one pooled connection for the request's work: the pool's reset round trip (on
        # release) is paid once, not once per statement
        async with self.pool.acquire() as conn:
            yield PostgresConn(self, conn)

    def time_in(self, value: Any) -> datetime | None:
        return value  # type: ignore[no-any-return]

    def time_out(self, value: datetime) -> Any:
        return value

    def day_in(self, value: Any) -> date | None:
        return value  # type: ignore[no-any-return]

    def day_out(self, value: date | None) -> Any:
        return value

    async def close(self) -> None:
        await self.pool.close()


class PostgresStatements:
    """Statements on one connection, counted."""

    def __init__(self, db: PostgresDb, conn: Any) -> None:
        self.db = db
        self.conn = conn

    async def fetch(self, sql: str, *args: Any) -> Sequence[Sequence[Any]]:
        self.db.count += 1
        rows: Sequence[Sequence[Any]] = await self.conn.fetch(sql, *args)
        return rows


class PostgresConn(PostgresStatements):
    """A request's connection: its statements, and its transactions."""

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[PostgresTx]:
        async with self.conn.transaction():
            yield PostgresTx(self.db, self.conn)


class PostgresTx(PostgresStatements):
    """A transaction of a request's connection: its statements and writes."""

    async def insert(self, sql: str, *args: Any) -> int:
        self.db.count += 1
        value: int = await self.conn.fetchval(sql + " RETURNING id", *args)
        return value

    async def execute(self, sql: str, *args: Any) -> None:
        self.db.count += 1
        await self.conn.execute(sql, *args)

    async def control(self, sql: str) -> None:
        await self.conn.execute(sql)


def open_db(url: str) -> SqliteDb | PostgresDb:
    if url.startswith("sqlite://"):
        return SqliteDb(url[len("sqlite://") :].split("?", 1)[0])
    if url.startswith(("postgres://", "postgresql://")):
        return PostgresDb("postgresql://" + url.split("://", 1)[1])
    raise ValueError("BENCH_FLOOR_DB must be sqlite://PATH or postgres://...")


# --- small pure helpers: the rules, written out ------------------------------------------------


def global_id(type_name: str, pk: int) -> str:
    return base64.b64encode(f"{type_name}:{pk}".encode()).decode("ascii")


def decode_global_id(value: str, type_name: str) -> int:
    try:
        kind, _, pk = base64.b64decode(value).decode().partition(":")
        if kind == type_name and pk.isdigit():
            return int(pk)
    except ValueError:
        pass
    return 0


def iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat()


def encode_cursor(kind: str, values: list[Any]) -> str:
    encoded = [{"t": v.isoformat()} if isinstance(v, datetime) else v for v in values]
    raw = json.dumps([kind, encoded], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def add_months_to_date(day: date, months: int) -> date:
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return day.replace(
        year=year, month=month, day=min(day.day, calendar.monthrange(year, month)[1])
    )


def add_months(at: datetime, months: int, zone: tzinfo = UTC) -> datetime:
    """`at` plus calendar months on the organisation's calendar (`zone`), in UTC."""
    local = at.astimezone(zone)
    day = add_months_to_date(local.date(), months)
    moved = datetime.combine(day, local.timetz().replace(tzinfo=None), tzinfo=zone)
    return moved.astimezone(UTC)


def organisation_zone() -> tzinfo:
    """CERTGRAPH_TIME_ZONE, as certgraph reads it: the calendar awards are dated on."""
    name = os.environ.get("CERTGRAPH_TIME_ZONE", "UTC")
    return UTC if name == "UTC" else ZoneInfo(name)


ZONE = organisation_zone()


@dataclass(slots=True)
class Cert:
    id: int
    name: str
    kind: str
    type: str
    validity_months: int | None
    window_days: int
    policy_name: str
    policy_config: dict[str, Any]


@dataclass(slots=True)
class Link:
    course_id: int
    course_name: str
    mandatory: bool
    position: int


@dataclass(slots=True)
class Progress:
    id: int
    percent: int
    status: str
    started_at: datetime | None
    completed_at: datetime | None
    attempt_started_at: datetime | None
    updated_at: datetime


@dataclass(slots=True)
class Award:
    cycle: int
    awarded_at: datetime
    expires_at: datetime | None
    # the calendar days beside the instants (docs/api.md, "Dates"); bench.generate, which
    # dates nothing by days, leaves them out
    earned_on: date | None = None
    expires_on: date | None = None


@dataclass(slots=True)
class Evidence:
    status: str
    submitted_at: datetime
    reviewed_at: datetime | None
    completed_on: date | None


@dataclass(slots=True)
class Enrollment:
    id: int
    learner_id: int
    cert: Cert
    started_at: datetime | None
    due_at: datetime | None
    stored_status: str
    stored_progress: float
    stored_explanation: str
    awards: list[Award] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)
    # what a write compares its evaluation with (an evaluation that changes nothing writes
    # nothing) and dates startedAt from; the reads leave them unset
    stored: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class CourseState:
    link: Link
    status: str
    percent: int
    completed: bool
    completed_at: datetime | None  # the latest completion, whatever the cycle
    counted_at: datetime | None  # the completion that counts for this cycle


@dataclass(slots=True)
class Verdict:
    complete: bool
    status: str  # NOT_STARTED IN_PROGRESS PENDING_APPROVAL REJECTED COMPLETE
    progress: float
    completed_at: datetime | None
    explanation: str  # a message as stored (message())


def message(msgid: str, **params: int) -> str:
    """A translatable explanation as certgraph stores it (gql.i18n.dump): the msgid (the
    English text with {name} placeholders) and its params, as JSON, rendered when read."""
    return json.dumps({"id": msgid, "params": params}, ensure_ascii=False)


def window_opens(cert: Cert, award: Award) -> datetime | None:
    # the award's own expiry decides, whatever the certification's type is today
    if award.expires_at is None:
        return None
    return award.expires_at - timedelta(days=cert.window_days)


def renews(previous: Award | None, awarded_at: datetime) -> bool:
    return (
        previous is not None and previous.expires_at is not None
        and awarded_at < previous.expires_at
    )  # fmt: skip


def award_expiry(cert: Cert, awarded_at: datetime, previous: Award | None) -> datetime | None:
    """A recurring award runs `validity_months` (on the organisation's calendar) from its
    award, or from the previous award's expiry when it was earned again before that."""
    if cert.type != "RECURRING" or not cert.validity_months:
        return None
    base = previous.expires_at if previous and renews(previous, awarded_at) else awarded_at
    assert base is not None
    return add_months(base, cert.validity_months, ZONE)


def award_expiry_date(
    cert: Cert, earned_on: date, awarded_at: datetime, previous: Award | None
) -> date | None:
    """The calendar day it expires on: the same rule on days (a renewal before expiry runs
    from the previous award's expiresOn)."""
    if cert.type != "RECURRING" or not cert.validity_months:
        return None
    if previous and renews(previous, awarded_at) and previous.expires_on is not None:
        return add_months_to_date(previous.expires_on, cert.validity_months)
    return add_months_to_date(earned_on, cert.validity_months)


def started_at_for(enrollment: Enrollment, progress: list[Progress], now: datetime) -> datetime:
    """startedAt for an enrollment past ENROLLED that was never started: its earliest
    activity (progress on its courses, proof, an award), not before it was enrolled nor
    after now."""
    activity = [at for row in progress for at in (row.started_at, row.completed_at) if at]
    activity += [e.submitted_at for e in enrollment.evidence]
    activity += [a.awarded_at for a in enrollment.awards]
    earliest = min(activity, default=now)
    enrolled_at: datetime = enrollment.stored["enrolled_at"]
    return max(enrolled_at, min(earliest, now))


def cycle_of(cert: Cert, awards: list[Award], now: datetime) -> tuple[int, datetime | None]:
    if not awards:
        return 1, None
    latest = awards[-1]
    opens = window_opens(cert, latest)
    if opens is not None and now >= opens:
        return latest.cycle + 1, opens
    if latest.cycle <= 1:
        return latest.cycle, None
    previous = next((a for a in awards if a.cycle == latest.cycle - 1), None)
    return latest.cycle, window_opens(cert, previous) if previous else None


def counts(start: datetime | None, at: datetime | None) -> bool:
    return at is not None and (start is None or at >= start)


def course_state(link: Link, row: Progress | None, start: datetime | None) -> CourseState:
    if row is None:
        return CourseState(link, "NOT_STARTED", 0, False, None, None)
    if counts(start, row.completed_at):
        return CourseState(link, "COMPLETED", 100, True, row.completed_at, row.completed_at)
    attempt = row.attempt_started_at or row.started_at or row.updated_at
    if counts(start, attempt) and row.status != "COMPLETED":
        status = "IN_PROGRESS" if row.percent > 0 else "NOT_STARTED"
        return CourseState(link, status, row.percent, False, row.completed_at, None)
    return CourseState(link, "NOT_STARTED", 0, False, row.completed_at, None)


def verdict_of(cert: Cert, courses: list[CourseState], evidence: list[Evidence]) -> Verdict:
    """The three built-in policies (mandatory-subset, all-required, external-evidence)."""
    if cert.policy_name == "external-evidence":
        config = cert.policy_config
        approval = config.get("requiresApproval", True)
        if not evidence:
            return Verdict(False, "NOT_STARTED", 0.0, None, message("no proof submitted yet"))
        accepted = [
            e
            for e in evidence
            if e.status == "APPROVED" or (not approval and e.status != "REJECTED")
        ]
        if accepted:
            first = accepted[0]
            if config.get("completionDate") == "learner" and first.completed_on is not None:
                done_at = datetime.combine(first.completed_on, time.min, tzinfo=UTC)
            elif approval and first.reviewed_at is not None:
                done_at = first.reviewed_at
            else:
                done_at = first.submitted_at
            said = message("proof approved" if approval else "proof submitted")
            return Verdict(True, "COMPLETE", 1.0, done_at, said)
        if evidence[-1].status == "PENDING":
            said = message("proof submitted, waiting for review")
            return Verdict(False, "PENDING_APPROVAL", 0.5, None, said)
        said = message("proof rejected; submit new proof")
        return Verdict(False, "REJECTED", 0.0, None, said)
    if cert.policy_name == "all-required":
        required, noun = courses, "courses"
    else:
        required = [c for c in courses if c.link.mandatory]
        noun = "mandatory courses"
        if not required:
            required, noun = courses, "courses"
    if not required:
        said = message("this certification has no courses yet")
        return Verdict(False, "NOT_STARTED", 0.0, None, said)
    done = [c for c in required if c.completed]
    summary = message(
        f"{{done}} of {{required}} {noun} done", done=len(done), required=len(required)
    )
    if len(done) == len(required):
        completed_at = max(c.counted_at for c in done if c.counted_at is not None)
        return Verdict(True, "COMPLETE", 1.0, completed_at, summary)
    started = any(c.completed or c.percent > 0 for c in required)
    status = "IN_PROGRESS" if started else "NOT_STARTED"
    return Verdict(False, status, len(done) / len(required), None, summary)


def stored_status(verdict: Verdict, enrollment: Enrollment, courses: list[CourseState]) -> str:
    if verdict.status in ("COMPLETE", "PENDING_APPROVAL", "REJECTED"):
        return verdict.status
    active = any(c.percent > 0 or c.completed for c in courses)
    if verdict.status == "IN_PROGRESS" or active or enrollment.started_at is not None:
        return "STARTED"
    return "ENROLLED"


@dataclass(slots=True)
class View:
    status: str
    progress_percent: int
    cycle: int
    overdue: bool
    completed_at: datetime | None
    expires_at: datetime | None
    courses: list[CourseState]
    verdict: Verdict


def view_of(
    enrollment: Enrollment, links: list[Link], progress: dict[int, Progress], now: datetime
) -> View:
    cert = enrollment.cert
    cycle, start = cycle_of(cert, enrollment.awards, now)
    courses = [course_state(link, progress.get(link.course_id), start) for link in links]
    evidence = [e for e in enrollment.evidence if counts(start, e.submitted_at)]
    verdict = verdict_of(cert, courses, evidence)
    latest = enrollment.awards[-1] if enrollment.awards else None
    if latest is not None and (latest.expires_at is None or now < latest.expires_at):
        status = "COMPLETED"
    elif latest is not None:
        status = "EXPIRED"
    else:
        state = stored_status(verdict, enrollment, courses)
        status = "STARTED" if state == "COMPLETE" else state
    in_force = status == "COMPLETED" and latest is not None
    return View(
        status=status,
        progress_percent=max(0, min(100, round(verdict.progress * 100))),
        cycle=cycle,
        overdue=enrollment.due_at is not None and now > enrollment.due_at and not in_force,
        completed_at=latest.awarded_at if in_force and latest else None,
        expires_at=latest.expires_at if in_force and latest else None,
        courses=courses,
        verdict=verdict,
    )


# --- reading what a batch of enrollments needs ------------------------------------------------


def marks(start: int, count: int) -> str:
    return ", ".join(f"${i}" for i in range(start, start + count))


CERT_COLUMNS = (
    "c.id, c.name, c.kind, c.type, c.validity_months, c.recertification_window_days,"
    " c.policy_name, c.policy_config"
)

# An enrollment's columns a write re-evaluating it compares with (and dates startedAt from).
STORED_COLUMNS = (
    "e.enrolled_at, e.started_at, e.verdict_status, e.verdict_progress, e.verdict_explanation,"
    " e.evaluated_cycle, e.last_awarded_at, e.last_expires_at, e.last_award_cycle,"
    " e.window_opens_at"
)
_STORED_TIMES = ("enrolled_at", "started_at", "last_awarded_at", "last_expires_at",
                 "window_opens_at")  # fmt: skip


def stored_of(db: Db, row: Sequence[Any], offset: int) -> dict[str, Any]:
    names = [c.strip().removeprefix("e.") for c in STORED_COLUMNS.split(",")]
    return {
        name: db.time_in(value) if name in _STORED_TIMES else value
        for name, value in zip(names, row[offset : offset + len(names)], strict=True)
    }


def cert_of(db: Db, row: Sequence[Any], offset: int = 0) -> Cert:
    config = row[offset + 7]
    return Cert(
        id=row[offset],
        name=row[offset + 1],
        kind=row[offset + 2],
        type=row[offset + 3],
        validity_months=row[offset + 4],
        window_days=row[offset + 5],
        policy_name=row[offset + 6],
        policy_config=json.loads(config) if isinstance(config, str) else dict(config),
    )


async def load_links(reader: Any, cert_ids: list[int]) -> dict[int, list[Link]]:
    links: dict[int, list[Link]] = {}
    if not cert_ids:
        return links
    rows = await reader.fetch(
        "SELECT cc.certification_id, cc.course_id, co.name, cc.mandatory, cc.position"
        " FROM certification_course cc LEFT OUTER JOIN course co ON co.id = cc.course_id"
        f" WHERE cc.certification_id IN ({marks(1, len(cert_ids))})"
        " ORDER BY cc.certification_id, cc.position, cc.id",
        *cert_ids,
    )
    for row in rows:
        links.setdefault(row[0], []).append(Link(row[1], row[2], bool(row[3]), row[4]))
    return links


async def load_progress(
    db: Db, reader: Any, learner_id: int, course_ids: list[int]
) -> dict[int, Progress]:
    if not course_ids:
        return {}
    rows = await reader.fetch(
        "SELECT course_id, id, percent, status, started_at, completed_at, attempt_started_at,"
        " updated_at FROM course_progress"
        f" WHERE learner_id IN ($1) AND course_id IN ({marks(2, len(course_ids))})",
        learner_id,
        *course_ids,
    )
    t = db.time_in
    return {
        row[0]: Progress(
            row[1],
            row[2],
            row[3],
            t(row[4]),
            t(row[5]),
            t(row[6]),
            t(row[7]),  # type: ignore[arg-type]
        )
        for row in rows
    }


async def load_awards_and_evidence(db: Db, reader: Any, enrollments: list[Enrollment]) -> None:
    by_id = {e.id: e for e in enrollments}
    ids = list(by_id)
    t, d = db.time_in, db.day_in
    for row in await reader.fetch(
        "SELECT enrollment_id, cycle, awarded_at, expires_at, earned_on, expires_on FROM award"
        f" WHERE enrollment_id IN ({marks(1, len(ids))}) ORDER BY cycle",
        *ids,
    ):
        awarded_at, expires_at = t(row[2]), t(row[3])
        assert awarded_at is not None
        earned_on, expires_on = d(row[4]), d(row[5])
        if earned_on is None:  # an award written before the days were kept: its UTC days
            earned_on = awarded_at.astimezone(UTC).date()
            expires_on = None if expires_at is None else expires_at.astimezone(UTC).date()
        by_id[row[0]].awards.append(Award(row[1], awarded_at, expires_at, earned_on, expires_on))
    for row in await reader.fetch(
        "SELECT enrollment_id, status, submitted_at, reviewed_at, completed_on FROM evidence"
        f" WHERE enrollment_id IN ({marks(1, len(ids))}) ORDER BY submitted_at, id",
        *ids,
    ):
        by_id[row[0]].evidence.append(Evidence(row[1], t(row[2]), t(row[3]), d(row[4])))  # type: ignore[arg-type]


def course_json(state: CourseState) -> dict[str, Any]:
    return {
        "course": {"id": global_id("Course", state.link.course_id), "name": state.link.course_name},
        "status": state.status,
        "percent": state.percent,
        "completedAt": iso(state.completed_at),
    }


# --- the outbox: a write's events, in its transaction ------------------------------------------


@dataclass(slots=True)
class Outbox:
    """The events one write emits, written as gql.domain.unit writes them: a row each in
    outbox_event (a fresh UUID, the type, the transaction's "now", the actor, the ordering key
    `learner:<pk>`, the data as gql/events.py shapes it: global IDs, people with name and
    e-mail, certifications and courses with their names), all in one INSERT just before the
    commit. The names come from rows the write has read anyway (the token's user, the
    enrollment's certification, the course links)."""

    actor: Viewer
    now: datetime
    events: list[tuple[str, int, dict[str, Any]]] = field(default_factory=list)

    def learner(self) -> dict[str, Any]:
        # the workload's writers are the learners themselves
        viewer = self.actor
        return {"id": global_id("User", viewer.id), "name": viewer.name, "email": viewer.email}

    def about(self, e: Enrollment) -> dict[str, Any]:
        """The fields every enrollment event starts with."""
        return {
            "learner": self.learner(),
            "enrollmentId": global_id("Enrollment", e.id),
            "certification": {"id": global_id("Certification", e.cert.id), "name": e.cert.name},
            "dueAt": iso(e.due_at),
        }

    def emit(self, kind: str, data: dict[str, Any]) -> None:
        self.events.append((kind, self.actor.id, data))

    async def write(self, db: Db, tx: Any) -> None:
        if not self.events:
            return
        rows: list[str] = []
        args: list[Any] = []
        for kind, learner_id, data in self.events:
            rows.append(f"({marks(len(args) + 1, 6)})")
            body = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
            args += [str(uuid.uuid4()), kind, db.time_out(self.now), self.actor.id,
                     f"learner:{learner_id}", body]  # fmt: skip
        await tx.execute(
            "INSERT INTO outbox_event (event_id, type, occurred_at, actor_id, ordering_key, data)"
            " VALUES " + ", ".join(rows),
            *args,
        )


# --- the operations ---------------------------------------------------------------------------


@dataclass(slots=True)
class Viewer:
    id: int
    role: str
    name: str  # for the events a write puts in the outbox
    email: str


class Floor:
    def __init__(self, db: SqliteDb | PostgresDb) -> None:
        self.db = db

    async def authenticate(self, conn: Any, request: Request) -> Viewer | None:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None
        db = self.db
        rows = await conn.fetch(
            "SELECT t.id, t.last_used_at, t.expires_at, u.id, u.role, u.name, u.email,"
            " u.deactivated_at FROM api_token t"
            ' LEFT OUTER JOIN "user" u ON u.id = t.user_id'
            " WHERE t.token_hash = $1 AND t.revoked_at IS NULL LIMIT 1",
            hashlib.sha256(token.strip().encode()).hexdigest(),
        )
        if not rows:
            return None
        token_id, last_used, expires_at, user_id, role, name, email, deactivated = rows[0]
        now = datetime.now(UTC)
        expires = db.time_in(expires_at)
        if (expires is not None and expires <= now) or deactivated is not None:
            return None  # expired, or a deactivated account's: refused as a revoked token is
        last = db.time_in(last_used)
        if last is None or now - last > LAST_USED_GRANULARITY:
            await conn.fetch(
                "UPDATE api_token SET last_used_at = $1 WHERE id = $2", db.time_out(now), token_id
            )
        return Viewer(user_id, role, name, email)

    async def q0(self, conn: Any, viewer: Viewer, variables: dict[str, Any]) -> dict[str, Any]:
        return {"viewer": {"id": global_id("User", viewer.id)}}

    async def q1(self, conn: Any, viewer: Viewer, variables: dict[str, Any]) -> dict[str, Any]:
        """viewer.certifications(first: 20) by RELEVANCE, with courses and progress."""
        db = self.db
        now = datetime.now(UTC)
        size = int(variables.get("first") or PAGE_SIZE_DEFAULT)
        total = (
            await conn.fetch(
                "SELECT COUNT(*) FROM enrollment e JOIN certification c"
                " ON c.id = e.certification_id WHERE e.learner_id = $1 AND e.ended_at IS NULL",
                viewer.id,
            )
        )[0][0]
        # The page's rows carry what the answer needs of each enrollment and certification.
        page = await conn.fetch(
            RELEVANCE_PAGE_FULL + f" LIMIT {size + 1}", viewer.id, db.time_out(now)
        )
        has_next = len(page) > size
        page = page[:size]
        t = db.time_in
        enrollments = [
            Enrollment(row[0], row[8], cert_of(db, row, 14), t(row[9]), t(row[10]), row[11],
                       row[12], row[13])
            for row in page
        ]  # fmt: skip
        cert_ids = sorted({e.cert.id for e in enrollments})
        links = await load_links(conn, cert_ids)
        course_ids = sorted({link.course_id for group in links.values() for link in group})
        progress = await load_progress(db, conn, viewer.id, course_ids)
        if enrollments:
            await load_awards_and_evidence(db, conn, enrollments)
        edges = []
        for e in enrollments:
            view = view_of(e, links.get(e.cert.id, []), progress, now)
            edges.append(
                {
                    "node": {
                        "id": global_id("Enrollment", e.id),
                        "status": view.status,
                        "progressPercent": view.progress_percent,
                        "dueAt": iso(e.due_at),
                        "overdue": view.overdue,
                        "completedAt": iso(view.completed_at),
                        "expiresAt": iso(view.expires_at),
                        "certification": {
                            "id": global_id("Certification", e.cert.id),
                            "name": e.cert.name,
                            "kind": e.cert.kind,
                            "type": e.cert.type,
                        },
                        "courses": [course_json(c) for c in view.courses],
                    }
                }
            )
        end_cursor = None
        if page:
            last = page[-1]
            values = [
                db.time_in(v) if i in (2, 5) and v is not None else v
                for i, v in enumerate(last[1:8])
            ]
            end_cursor = encode_cursor("enrollments:RELEVANCE", values)
        return {
            "viewer": {
                "certifications": {
                    "totalCount": total,
                    "pageInfo": {"hasNextPage": has_next, "endCursor": end_cursor},
                    "edges": edges,
                }
            }
        }

    async def q2(self, conn: Any, viewer: Viewer, variables: dict[str, Any]) -> dict[str, Any]:
        """certificationReport for an admin: counts by derived status, overdue, expiring."""
        db = self.db
        if viewer.role != "ADMIN":
            raise PermissionError("reports are for admins in the floor")
        cert_id = decode_global_id(str(variables.get("id", "")), "Certification")
        rows = await conn.fetch("SELECT id, name FROM certification WHERE id IN ($1)", cert_id)
        if not rows:
            return {"certificationReport": None}
        now = datetime.now(UTC)
        at = db.time_out(now)
        counts_rows = await conn.fetch(STATUS_COUNTS, cert_id, at)
        by_status = {str(r[0]): int(r[1]) for r in counts_rows}
        overdue = (await conn.fetch(OVERDUE_COUNT, cert_id, at))[0][0]
        days = int(variables.get("days", 30))
        expiring = (
            await conn.fetch(EXPIRING_COUNT, cert_id, at, db.time_out(now + timedelta(days=days)))
        )[0][0]
        enrolled = sum(by_status.values())
        completed = by_status.get("COMPLETED", 0)
        return {
            "certificationReport": {
                "certification": {"id": global_id("Certification", rows[0][0]), "name": rows[0][1]},
                "enrolled": enrolled,
                "byStatus": [{"status": s, "count": by_status.get(s, 0)} for s in STATUS_ORDER],
                "overdue": overdue,
                "expiringWithin": expiring,
                "completionRate": (completed / enrolled) if enrolled else 0.0,
            }
        }

    async def q3(self, conn: Any, viewer: Viewer, variables: dict[str, Any]) -> dict[str, Any]:
        """enrollments(filter: {certificationId, status: [COMPLETED, EXPIRED]}, first: 50) for
        an admin: the count and one keyset page in enrollment id order, each row with its
        learner, its derived status and the previous award's expiry (for completedLate)
        computed in the statement; ended enrollments and deactivated learners left out."""
        db = self.db
        if viewer.role != "ADMIN":
            raise PermissionError("the floor's Q3 serves admins (who see everyone)")
        cert_id = decode_global_id(str(variables.get("cert", "")), "Certification")
        size = int(variables.get("first") or Q3_PAGE_SIZE)
        now = datetime.now(UTC)
        at = db.time_out(now)
        total = (await conn.fetch(SEARCH_COUNT, cert_id, at, *Q3_STATUSES))[0][0]
        rows = await conn.fetch(SEARCH_PAGE + f" LIMIT {size + 1}", cert_id, at, *Q3_STATUSES)
        shown = rows[:size]
        t = db.time_in
        edges = []
        for row in shown:
            pk, status, due_raw, awarded_raw, expires_raw, previous_raw = row[:6]
            due, awarded = t(due_raw), t(awarded_raw)
            in_force = status == "COMPLETED"
            late = None
            if in_force and awarded is not None:
                # completedLate: after dueAt for a first award; for a renewal after the later
                # of the previous award's expiry and dueAt (none: never late)
                deadlines = [d for d in (t(previous_raw), due) if d is not None]
                late = bool(deadlines) and awarded > max(deadlines)
            edges.append(
                {
                    "node": {
                        "id": global_id("Enrollment", pk),
                        "status": status,
                        "dueAt": iso(due),
                        "overdue": due is not None and now > due and not in_force,
                        "completedAt": iso(awarded) if in_force else None,
                        "expiresAt": iso(t(expires_raw)) if in_force else None,
                        "completedLate": late,
                        "learner": {
                            "id": global_id("User", row[6]),
                            "name": row[7],
                            "email": row[8],
                        },
                    }
                }
            )
        # the cursor certgraph gives a row of this list: its kind and the enrollment id
        end_cursor = encode_cursor("enrollment-search", [shown[-1][0]]) if shown else None
        return {
            "enrollments": {
                "totalCount": total,
                "pageInfo": {"hasNextPage": len(rows) > size, "endCursor": end_cursor},
                "edges": edges,
            }
        }

    async def m1(self, conn: Any, viewer: Viewer, variables: dict[str, Any]) -> dict[str, Any]:
        """recordCourseProgress(completed: true) by a learner: one transaction reads the
        enrollments counting the course and what their evaluation needs, then writes."""
        db = self.db
        course_id = decode_global_id(str(variables.get("course", "")), "Course")
        learner = viewer.id
        for_update = " FOR UPDATE" if db.dialect == "postgres" else ""
        async with conn.transaction() as tx:
            now = datetime.now(UTC)
            at = db.time_out(now)
            outbox = Outbox(viewer, now)
            # One learner's evaluations one at a time; on SQLite BEGIN IMMEDIATE already
            # serialises every writer. The viewer is the learner, so the row exists.
            if for_update:
                await tx.fetch(f'SELECT id FROM "user" WHERE id = $1{for_update}', learner)
            rows = await tx.fetch(
                "SELECT DISTINCT e.id, e.started_at, e.due_at, e.verdict_status,"
                " e.verdict_progress, e.verdict_explanation, e.certification_id,"
                f" {CERT_COLUMNS}, {STORED_COLUMNS} FROM enrollment e"
                " LEFT OUTER JOIN certification c ON c.id = e.certification_id"
                " LEFT OUTER JOIN certification_course cc ON cc.certification_id = c.id"
                " WHERE e.learner_id = $1 AND cc.course_id = $2 AND e.ended_at IS NULL"
                " ORDER BY e.id",
                learner,
                course_id,
            )
            # an enrollment found through the course's link proves the course exists (and
            # its links carry the course's name for the event); else the course is read
            course_name = None
            if not rows:
                found_course = await tx.fetch(
                    "SELECT name FROM course WHERE id = $1 LIMIT 1", course_id
                )
                if not found_course:
                    return _progress_error("NOT_FOUND", "no such course")
                course_name = found_course[0][0]
            cert_ids = sorted({r[6] for r in rows})
            certs: dict[int, Cert] = {}
            for r in rows:
                certs[r[6]] = cert_of(db, r, 7)
            enrollments = [
                Enrollment(r[0], learner, certs[r[6]], db.time_in(r[1]), db.time_in(r[2]),
                           r[3], r[4], r[5], stored=stored_of(db, r, 15))
                for r in rows
            ]  # fmt: skip
            links: dict[int, list[Link]] = {}
            progress: dict[int, Progress] = {}
            if enrollments:
                # the learner's row on the course comes with the evaluation's rows
                links = await load_links(tx, cert_ids)
                course_ids = sorted({link.course_id for g in links.values() for link in g})
                progress = await load_progress(db, tx, learner, course_ids)
                await load_awards_and_evidence(db, tx, enrollments)
                existing = progress.get(course_id)
            else:
                found = await tx.fetch(
                    "SELECT id, percent, status, started_at, completed_at, attempt_started_at,"
                    " updated_at FROM course_progress WHERE learner_id = $1 AND course_id = $2"
                    " LIMIT 2",
                    learner,
                    course_id,
                )
                existing = None
                if found:
                    r = found[0]
                    existing = Progress(
                        r[0], r[1], r[2], db.time_in(r[3]), db.time_in(r[4]), db.time_in(r[5]),
                        db.time_in(r[6]),  # type: ignore[arg-type]
                    )  # fmt: skip
            row = await self._complete(tx, existing, learner, course_id, now, at)
            progress[course_id] = row
            if course_name is None:
                course_name = next(
                    link.course_name
                    for group in links.values()
                    for link in group
                    if link.course_id == course_id
                )
            outbox.emit(
                "progress_recorded",
                {
                    "learner": outbox.learner(),
                    "course": {"id": global_id("Course", course_id), "name": course_name},
                    "percent": row.percent,
                    "completed": row.status == "COMPLETED",
                    "completedAt": iso(row.completed_at),
                },
            )
            views = [
                await self._evaluate(tx, e, links, progress, learner, now, outbox)
                for e in enrollments
            ]
            await outbox.write(db, tx)
        # certgraph's payload takes the course from the links it read (since 2e87c5b): no
        # statement after commit.
        return {
            "recordCourseProgress": {
                "progress": {
                    "status": row.status,
                    "percent": row.percent,
                    "completedAt": iso(row.completed_at),
                },
                "enrollments": [
                    {
                        "id": global_id("Enrollment", e.id),
                        "status": view.status,
                        "progressPercent": view.progress_percent,
                        "completedAt": iso(view.completed_at),
                        "expiresAt": iso(view.expires_at),
                    }
                    for e, view in views
                ],
                "errors": [],
            }
        }

    async def _evaluate(
        self, tx: Any, e: Enrollment, links: dict[int, list[Link]], progress: dict[int, Progress],
        learner: int, now: datetime, outbox: Outbox,
    ) -> tuple[Enrollment, View]:  # fmt: skip
        """evaluate_enrollments for one enrollment whose rows are loaded: award, store."""
        db = self.db
        view = view_of(e, links.get(e.cert.id, []), progress, now)
        verdict = view.verdict
        evaluated: tuple[Enrollment, View] = (e, view)
        if verdict.complete and not any(a.cycle == view.cycle for a in e.awards):
            evaluated = await self._award(
                tx, e, view, verdict, links, progress, learner, now, outbox
            )
            view = evaluated[1]
        latest = e.awards[-1] if e.awards else None
        columns: dict[str, Any] = {
            "verdict_status": stored_status(verdict, e, view.courses),
            "verdict_progress": verdict.progress,
            "verdict_explanation": verdict.explanation,
            "evaluated_cycle": view.cycle,
            "last_awarded_at": latest.awarded_at if latest else None,
            "last_expires_at": latest.expires_at if latest else None,
            "last_award_cycle": latest.cycle if latest else None,
            "window_opens_at": window_opens(e.cert, latest) if latest else None,
        }
        # past ENROLLED and never started: startedAt is its earliest activity
        if e.started_at is None and view.status != "ENROLLED":
            rows = [
                progress[k.course_id] for k in links.get(e.cert.id, []) if k.course_id in progress
            ]
            columns["started_at"] = started_at_for(e, rows, now)
        # an evaluation that changes nothing writes nothing (updated_at means a change)
        if all(e.stored[name] == value for name, value in columns.items()):
            return evaluated
        values = [_time_or_none(db, v) if isinstance(v, datetime) else v for v in columns.values()]
        assignments = ", ".join(f"{name} = ${i}" for i, name in enumerate(columns, start=1))
        await tx.execute(
            f"UPDATE enrollment SET {assignments}, updated_at = ${len(values) + 1}"
            f" WHERE id = ${len(values) + 2}",
            *values, db.time_out(now), e.id,
        )  # fmt: skip
        return evaluated

    async def _complete(
        self, tx: Any, existing: Progress | None, learner: int, course_id: int,
        now: datetime, at: Any,
    ) -> Progress:  # fmt: skip
        db = self.db
        if existing is None:
            new_id = await tx.insert(
                "INSERT INTO course_progress (learner_id, course_id, percent, status, started_at,"
                " completed_at, attempt_started_at, updated_at)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                learner, course_id, 100, "COMPLETED", at, at, at, at,
            )  # fmt: skip
            return Progress(new_id, 100, "COMPLETED", now, now, now, now)
        row = existing
        row.completed_at = max(row.completed_at, now) if row.completed_at else now
        row.percent, row.status = 100, "COMPLETED"
        if row.started_at is None:
            row.started_at = now
        row.updated_at = now
        await tx.execute(
            "UPDATE course_progress SET percent = $1, status = $2, started_at = $3,"
            " completed_at = $4, attempt_started_at = $5, updated_at = $6 WHERE id = $7",
            100, "COMPLETED", db.time_out(row.started_at), db.time_out(row.completed_at),
            _time_or_none(db, row.attempt_started_at), at, row.id,
        )  # fmt: skip
        return row

    async def _award(
        self, tx: Any, e: Enrollment, view: View, verdict: Verdict, links: dict[int, list[Link]],
        progress: dict[int, Progress], learner: int, now: datetime, outbox: Outbox,
    ) -> tuple[Enrollment, View]:  # fmt: skip
        db = self.db
        assert verdict.completed_at is not None
        previous = e.awards[-1] if e.awards else None
        completed_at = verdict.completed_at
        # the day a learner stated on their proof stays that day (the policy dated the
        # completion by its start in UTC): it begins in the organisation's time zone
        earned_on = next(
            (x.completed_on for x in e.evidence if x.completed_on is not None
             and datetime.combine(x.completed_on, time.min, tzinfo=UTC) == completed_at),
            None,
        )  # fmt: skip
        if earned_on is not None:
            completed_at = datetime.combine(earned_on, time.min, tzinfo=ZONE).astimezone(UTC)
        awarded_at = min(completed_at, now)  # never dated in the future
        if earned_on is None:
            earned_on = awarded_at.astimezone(ZONE).date()
        expires = award_expiry(e.cert, awarded_at, previous)
        expires_on = award_expiry_date(e.cert, earned_on, awarded_at, previous)
        # a lost race inserts nothing and leaves the
        # transaction usable, in one statement
        inserted = await tx.fetch(
            "INSERT INTO award (enrollment_id, cycle, awarded_at, expires_at, earned_on,"
            " expires_on, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)"
            " ON CONFLICT (enrollment_id, cycle) DO NOTHING RETURNING id",
            e.id, view.cycle, db.time_out(awarded_at), _time_or_none(db, expires),
            db.day_out(earned_on), db.day_out(expires_on), db.time_out(now),
        )  # fmt: skip
        if not inserted:
            return e, view
        after = {
            "cycle": view.cycle,
            "awardedAt": awarded_at.isoformat(),
            "expiresAt": expires.isoformat() if expires else None,
            "earnedOn": earned_on.isoformat(),
            "expiresOn": expires_on.isoformat() if expires_on else None,
        }
        await tx.insert(
            "INSERT INTO audit_event (at, actor_id, action, object_type, object_id, before,"
            " after, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            db.time_out(now), learner, "award", "Enrollment", str(e.id), None,
            json.dumps(after, separators=(",", ":")), None,
        )  # fmt: skip
        outbox.emit(
            "certification_completed",
            {
                **outbox.about(e),
                "cycle": view.cycle,
                "awardedAt": iso(awarded_at),
                "expiresAt": iso(expires),
                "earnedOn": earned_on.isoformat(),
                "expiresOn": expires_on.isoformat() if expires_on else None,
            },
        )
        e.awards.append(Award(view.cycle, awarded_at, expires, earned_on, expires_on))
        return e, view_of(e, links.get(e.cert.id, []), progress, now)

    # -- M2: submitEvidence ------------------------------------------------------------------

    async def m2(self, viewer: Viewer, variables: dict[str, Any]) -> dict[str, Any]:
        """submitEvidence by a learner for their started EXTERNAL enrollment: the file checked
        and stored, then one transaction reads what the rules need once, writes the evidence
        and audit rows and re-evaluates; the answer comes from what it read and wrote."""
        db = self.db
        learner = viewer.id
        cert_id = decode_global_id(str(variables.get("cert", "")), "Certification")
        source = variables.get("file")
        if not isinstance(source, UploadFile):
            raise FloorUnsupported("file must be a file part")
        if variables.get("completedOn") is not None or variables.get("note") is not None:
            raise FloorUnsupported("the floor's M2 takes neither completedOn nor note")
        content = await source.read()
        received = check_file(content, source.filename or "", source.content_type)
        if isinstance(received, dict):
            return received
        filename, content_type = received
        sha256 = hashlib.sha256(content).hexdigest()
        await asyncio.to_thread(store_blob, content, sha256)
        for_update = " FOR UPDATE" if db.dialect == "postgres" else ""
        # the request's connection for the write (the token was checked on one of its own,
        # given back while the form was read: upload())
        async with db.connection() as conn, conn.transaction() as tx:
            now = datetime.now(UTC)
            at = db.time_out(now)
            outbox = Outbox(viewer, now)
            await tx.fetch(f'SELECT id FROM "user" WHERE id = $1{for_update}', learner)
            target = await self._submission_target(tx, learner, cert_id, now)
            if isinstance(target, dict):
                return target
            enrollment, links, progress = target
            evidence_id = await tx.insert(
                "INSERT INTO evidence (sha256, filename, content_type, size_bytes, status,"
                " submitted_at, completed_on, note, reviewed_at, review_comment,"
                " enrollment_id, reviewed_by_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9,"
                " $10, $11, $12)",
                sha256, filename, content_type, len(content), "PENDING", at, None, None, None,
                None, enrollment.id, None,
            )  # fmt: skip
            after = {
                "enrollmentId": enrollment.id,
                "status": "PENDING",
                "sha256": sha256,
                "contentType": content_type,
                "sizeBytes": len(content),
                "completedOn": None,
            }
            await tx.insert(
                "INSERT INTO audit_event (at, actor_id, action, object_type, object_id, before,"
                " after, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                at, learner, "submitEvidence", "Evidence", str(evidence_id), None,
                json.dumps(after, separators=(",", ":")), None,
            )  # fmt: skip
            outbox.emit(
                "evidence_submitted",
                {
                    **outbox.about(enrollment),
                    "evidenceId": global_id("Evidence", evidence_id),
                    "completedOn": None,
                },
            )
            enrollment.evidence.append(Evidence("PENDING", now, None, None))
            _, view = await self._evaluate(tx, enrollment, links, progress, learner, now, outbox)
            await outbox.write(db, tx)
        return {
            "submitEvidence": {
                "evidence": {
                    "id": global_id("Evidence", evidence_id),
                    "status": "PENDING",
                    "filename": filename,
                    "contentType": content_type,
                    "sizeBytes": len(content),
                    "sha256": sha256,
                    "submittedAt": iso(now),
                    "completedOn": None,
                    "enrollment": {
                        "id": global_id("Enrollment", enrollment.id),
                        "status": view.status,
                        "progressPercent": view.progress_percent,
                    },
                },
                "errors": [],
            }
        }

    async def _submission_target(
        self, tx: Any, learner: int, cert_id: int, now: datetime
    ) -> tuple[Enrollment, dict[int, list[Link]], dict[int, Progress]] | dict[str, Any]:
        """The learner's enrollment the evidence is for with what its evaluation needs, or the
        payload refusing the submission."""
        db = self.db
        rows = await tx.fetch(
            f"SELECT {CERT_COLUMNS}, c.state, e.id, e.started_at, e.due_at, e.verdict_status,"
            f" e.verdict_progress, e.verdict_explanation, e.ended_at, {STORED_COLUMNS}"
            " FROM certification c"
            " LEFT OUTER JOIN enrollment e ON e.certification_id = c.id AND e.learner_id = $2"
            " WHERE c.id = $1",
            cert_id,
            learner,
        )
        if not rows or (rows[0][9] is None and rows[0][8] != "PUBLISHED"):
            return _evidence_error("NOT_FOUND", "no such certification")
        r = rows[0]
        if r[2] != "EXTERNAL":
            return _evidence_error(
                "NOT_ALLOWED",
                "proof is submitted for EXTERNAL certifications only; this one is earned by "
                "completing its courses",
            )
        if r[9] is None or r[15] is not None:
            raise FloorUnsupported("the floor's M2 serves learners enrolled (and not unassigned)")
        enrollment = Enrollment(
            r[9], learner, cert_of(db, r), db.time_in(r[10]), db.time_in(r[11]), r[12], r[13],
            r[14], stored=stored_of(db, r, 16),
        )  # fmt: skip
        if enrollment.started_at is None:
            raise FloorUnsupported("the floor's M2 serves started enrollments (no started event)")
        links = await load_links(tx, [cert_id])
        course_ids = [link.course_id for link in links.get(cert_id, [])]
        progress = await load_progress(db, tx, learner, course_ids)
        await load_awards_and_evidence(db, tx, [enrollment])
        view = view_of(enrollment, links.get(cert_id, []), progress, now)
        refusal = _submission_refusal(enrollment, view, now)
        if refusal is not None:
            return _evidence_error("NOT_ALLOWED", refusal)
        return enrollment, links, progress


# --- M2's file: checked and stored in a few lines of stdlib and `filetype` ----------------------

DATA_DIR = Path(os.environ.get("BENCH_FLOOR_DATA_DIR", "./var/bench/run/data/floor"))
MAX_UPLOAD_BYTES = 10 * 1024 * 1024
EVIDENCE_TYPES = {"application/pdf": ".pdf", "image/png": ".png", "image/jpeg": ".jpg"}
SUBMITTABLE = ("ENROLLED", "STARTED", "REJECTED", "EXPIRED")


def check_file(content: bytes, name: str, declared: str | None) -> tuple[str, str] | dict[str, Any]:
    """(filename, type) of an acceptable evidence file, or the payload refusing it. The
    workload sends only good PDFs: a refusal here is a plain one, not certgraph's wording."""
    if len(content) > MAX_UPLOAD_BYTES:
        return _evidence_error("FILE_TOO_LARGE", "the file is too large")
    kind = filetype.guess(content[:8192])
    sniffed = None if kind is None else str(kind.mime)
    extension = os.path.splitext(name)[1].lower()
    claimed = (declared or "").split(";", 1)[0].strip().lower()
    if (
        sniffed not in EVIDENCE_TYPES
        or extension not in ("", EVIDENCE_TYPES[sniffed], ".jpeg")
        or claimed not in ("", "application/octet-stream", sniffed)
    ):
        raise FloorUnsupported("the floor takes well-named PDF, PNG or JPEG files only")
    filename = os.path.basename(name.replace("\\", "/")).strip() or "evidence" + extension
    return filename, sniffed


def store_blob(content: bytes, sha256: str) -> None:
    """blobs/<2 hex>/<sha256>, durable before the row refers to it: temp file, fsync, rename."""
    shard = DATA_DIR / "blobs" / sha256[:2]
    shard.mkdir(parents=True, exist_ok=True)
    # a name of its own: concurrent uploads of the same file must not share a temp file
    with tempfile.NamedTemporaryFile(dir=shard, suffix=".part", delete=False) as out:
        out.write(content)
        out.flush()
        os.fsync(out.fileno())
    os.replace(out.name, shard / sha256)
    directory = os.open(shard, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


class FloorUnsupported(Exception):
    """A request outside what the floor implements (answered 400, never silently wrong)."""


def _evidence_error(code: str, message: str) -> dict[str, Any]:
    return {"submitEvidence": {"evidence": None, "errors": [{"code": code, "message": message}]}}


def _submission_refusal(enrollment: Enrollment, view: View, now: datetime) -> str | None:
    """Whether the enrollment takes proof now (domain.md "Evidence") and the
    external-evidence policy's own conditions."""
    if view.status == "PENDING_APPROVAL" or view.verdict.status == "PENDING_APPROVAL":
        return "your proof is waiting for review: wait for the decision"
    latest = enrollment.awards[-1] if enrollment.awards else None
    opens = window_opens(enrollment.cert, latest) if latest else None
    reopened = view.status == "COMPLETED" and opens is not None and now >= opens
    if view.status not in SUBMITTABLE and not reopened:
        if view.status == "COMPLETED":
            return (
                f"this certification is {view.status}: new proof is taken only once its "
                "recertification window opens"
            )
        return f"no proof is taken while the enrollment is {view.status}"
    config = enrollment.cert.policy_config
    if config.get("completionDate") == "learner":
        raise FloorUnsupported("the floor's M2 sends no completedOn")
    if config.get("requireMandatoryCourses"):
        mandatory = [c for c in view.courses if c.link.mandatory] or view.courses
        missing = [c for c in mandatory if not c.completed]
        if missing:
            return f"complete the {len(missing)} remaining mandatory course(s) first"
    return None


def _time_or_none(db: Db, value: datetime | None) -> Any:
    return None if value is None else db.time_out(value)


def _progress_error(code: str, message: str) -> dict[str, Any]:
    return {
        "recordCourseProgress": {
            "progress": None,
            "enrollments": [],
            "errors": [{"code": code, "message": message}],
        }
    }


_COMPLETED = (
    "e.last_awarded_at IS NOT NULL AND (e.last_expires_at IS NULL OR e.last_expires_at > $2)"
)

RELEVANCE_PAGE = (
    "SELECT e.id AS id,"
    f" CASE WHEN {_COMPLETED} THEN 4"
    " WHEN e.last_awarded_at IS NOT NULL THEN 0"
    " WHEN e.verdict_status = 'REJECTED' THEN 0"
    " WHEN e.due_at IS NOT NULL AND e.due_at < $2 THEN 0"
    " WHEN e.verdict_status IN ('STARTED', 'COMPLETE') THEN 1"
    " WHEN e.verdict_status = 'PENDING_APPROVAL' THEN 3"
    " ELSE 2 END AS k_bucket,"
    " CASE WHEN e.due_at IS NULL THEN 1 ELSE 0 END AS k_due_null,"
    " e.due_at AS k_due,"
    " CASE WHEN e.origin = 'ASSIGNED' THEN 0 ELSE 1 END AS k_origin,"
    " CASE WHEN c.published_at IS NULL THEN 1 ELSE 0 END AS k_pub_null,"
    " c.published_at AS k_pub,"
    " e.id AS k_id"
    " FROM enrollment e JOIN certification c ON c.id = e.certification_id"
    " WHERE e.learner_id = $1 AND e.ended_at IS NULL"
    " ORDER BY k_bucket ASC, k_due_null ASC, k_due ASC, k_origin ASC, k_pub_null ASC,"
    " k_pub DESC, k_id ASC"
)

# RELEVANCE_PAGE with the columns Q1's answer needs (8: enrollment, 14: certification).
RELEVANCE_PAGE_FULL = RELEVANCE_PAGE.replace(
    " FROM enrollment e JOIN",
    ", e.learner_id, e.started_at, e.due_at, e.verdict_status, e.verdict_progress,"
    f" e.verdict_explanation, {CERT_COLUMNS} FROM enrollment e JOIN",
)

# The report leaves out deactivated people, as certgraph's does.
_ACTIVE_LEARNER = (
    'NOT EXISTS (SELECT 1 FROM "user" du WHERE du.id = e.learner_id'
    " AND du.deactivated_at IS NOT NULL)"
)

STATUS_COUNTS = (
    "SELECT CASE"
    f" WHEN {_COMPLETED} THEN 'COMPLETED'"
    " WHEN e.last_awarded_at IS NOT NULL THEN 'EXPIRED'"
    " WHEN e.verdict_status = 'COMPLETE' THEN 'STARTED'"
    " ELSE e.verdict_status END AS status, COUNT(*) AS n"
    " FROM enrollment e WHERE e.certification_id = $1 AND 1=1"
    f" AND e.ended_at IS NULL AND {_ACTIVE_LEARNER} GROUP BY 1"
)

OVERDUE_COUNT = (
    "SELECT COUNT(*) AS n FROM enrollment e WHERE e.certification_id = $1 AND 1=1"
    f" AND e.ended_at IS NULL AND {_ACTIVE_LEARNER}"
    " AND e.due_at IS NOT NULL AND e.due_at < $2"
    f" AND NOT ({_COMPLETED})"
)

EXPIRING_COUNT = (
    "SELECT COUNT(*) AS n FROM enrollment e WHERE e.certification_id = $1 AND 1=1"
    f" AND e.ended_at IS NULL AND {_ACTIVE_LEARNER}"
    " AND e.last_awarded_at IS NOT NULL AND e.last_expires_at IS NOT NULL"
    " AND e.last_expires_at > $2 AND e.last_expires_at <= $3"
)


# Q3: the derived status as the report counts it; the statuses the workload's filter names.
STATUS_OF = (
    "CASE"
    f" WHEN {_COMPLETED} THEN 'COMPLETED'"
    " WHEN e.last_awarded_at IS NOT NULL THEN 'EXPIRED'"
    " WHEN e.verdict_status = 'COMPLETE' THEN 'STARTED'"
    " ELSE e.verdict_status END"
)
Q3_STATUSES = ("COMPLETED", "EXPIRED")
Q3_PAGE_SIZE = 50
# $1 the certification, $2 now, $3 and $4 the statuses; admins see everyone, ended
# enrollments and deactivated learners are left out (the filter's defaults).
SEARCH_WHERE = (
    ' FROM enrollment e JOIN "user" u ON u.id = e.learner_id'
    f" WHERE e.certification_id = $1 AND {STATUS_OF} IN ($3, $4)"
    " AND e.ended_at IS NULL AND u.deactivated_at IS NULL"
)
SEARCH_COUNT = "SELECT COUNT(*)" + SEARCH_WHERE
SEARCH_PAGE = (
    f"SELECT e.id, {STATUS_OF}, e.due_at, e.last_awarded_at, e.last_expires_at,"
    " (SELECT a.expires_at FROM award a WHERE a.enrollment_id = e.id"
    " AND a.cycle < e.last_award_cycle ORDER BY a.cycle DESC LIMIT 1),"
    " u.id, u.name, u.email" + SEARCH_WHERE + " ORDER BY e.id"
)


# --- HTTP ---------------------------------------------------------------------------------------


def create_app() -> Starlette:
    url = os.environ.get("BENCH_FLOOR_DB") or os.environ.get("CERTGRAPH_DATABASE_URL", "")
    db = open_db(url)
    floor = Floor(db)
    operations = {"Q0": floor.q0, "Q1": floor.q1, "Q2": floor.q2, "Q3": floor.q3, "M1": floor.m1}

    async def graphql(request: Request) -> Response:
        if request.headers.get("content-type", "").startswith("multipart/form-data"):
            return await upload(request)
        body = json.loads(await request.body())
        operation = operations.get(body.get("operationName") or "")
        if operation is None:
            message = "the floor serves Q0, Q1, Q2, Q3 and M1 as JSON, M2 as multipart"
            return _json({"errors": [{"message": message}]}, 400)
        before = db.count
        # one connection for the request's work, given back before the answer is sent
        async with db.connection() as conn:
            viewer = await floor.authenticate(conn, request)
            if viewer is None:
                return _json({"data": None, "errors": [{"message": "unauthenticated"}]}, 401)
            data = await operation(conn, viewer, body.get("variables") or {})
        response = _json({"data": data}, 200)
        # Statements this request sent (exact with one request in flight per process).
        response.headers["x-floor-sql"] = str(db.count - before)
        return response

    async def upload(request: Request) -> Response:
        """M2 as certgraph takes it: the token checked before the form is parsed (so an
        unauthenticated upload is never read), the form parsed by Starlette (python-multipart),
        the file variables filled in from `map`, and the parsed form closed once the answer
        has been sent. No connection is held while the body arrives: the token's check takes
        one, the write another (as certgraph gives its request's connection back meanwhile)."""
        before = db.count
        async with db.connection() as conn:
            viewer = await floor.authenticate(conn, request)
        if viewer is None:
            return _json({"data": None, "errors": [{"message": "unauthenticated"}]}, 401)
        form = await request.form()
        try:
            operations = json.loads(str(form["operations"]))
            variables = operations.get("variables") or {}
            for key, paths in json.loads(str(form["map"])).items():
                for path in paths:
                    scope, _, name = str(path).partition(".")
                    if scope != "variables" or "." in name:
                        raise FloorUnsupported("map paths must be variables.<name>")
                    variables[name] = form[key]
            if operations.get("operationName") != "M2":
                raise FloorUnsupported("the floor takes uploads for M2 only")
            data = await floor.m2(viewer, variables)
        except (FloorUnsupported, KeyError, ValueError) as exc:
            await form.close()
            return _json({"errors": [{"message": f"floor: {exc}"}]}, 400)
        response = _json({"data": data}, 200)
        response.headers["x-floor-sql"] = str(db.count - before)
        response.background = BackgroundTask(form.close)
        return response

    async def healthz(request: Request) -> Response:
        return _json({"status": "ok"}, 200)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await db.open()
        try:
            yield
        finally:
            await db.close()

    return Starlette(
        routes=[
            Route("/graphql", graphql, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ],
        lifespan=lifespan,
    )


def _json(payload: dict[str, Any], status: int) -> Response:
    return Response(
        json.dumps(payload, ensure_ascii=False, separators=(",", ":")),
        status_code=status,
        media_type="application/json",
    )
