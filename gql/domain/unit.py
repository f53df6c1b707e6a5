"""One use case, one transaction: audit rows and outbox events inside it; and the per-request
buffer of denied reads, written as one batch when the request is over."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any, Protocol
from uuid import uuid4

from gql import clock
from gql.events import CertificationRef, CourseRef, EventData, Person
from gql.plugins import PluginHost, get_plugin_host
from gql.store import outbox
from gql.store.db import note_commit, retrying, write_transaction
from gql.store.records import CertificationRecord, CourseRecord
from gql.store.writes import audit_row, insert_audit_event, insert_audit_events
from gql.vocabulary import encode_id

log = logging.getLogger(__name__)


class Someone(Protocol):
    """Who acts (gql.domain.access.Actor): the unit takes their name for the events."""

    @property
    def user_id(self) -> int | None: ...
    @property
    def name(self) -> str: ...
    @property
    def email(self) -> str: ...


@dataclass(frozen=True, slots=True)
class _Draft:
    """An event before its names are known: ids to resolve, and the rest of its fields."""

    kind: type[EventData]
    learner_id: int
    certification_id: int | None
    course_id: int | None
    people: dict[str, int | None]  # field -> user pk (assigned_by, reviewer)
    fields: dict[str, Any]


@dataclass
class Unit:
    """What a use case collects while its transaction is open."""

    actor_id: int | None
    now: datetime
    plugins: PluginHost | None = None
    # The organisation's time zone (Settings.zone): the calendar days of the awards written.
    time_zone: tzinfo = UTC
    drafts: list[_Draft] = field(default_factory=list)
    # Names already in hand, so writing the events reads only what is missing.
    people: dict[int, Person] = field(default_factory=dict)
    courses: dict[int, CourseRef] = field(default_factory=dict)
    certifications: dict[int, CertificationRef] = field(default_factory=dict)

    def emit(
        self,
        kind: type[EventData],
        *,
        learner_id: int,
        certification: int | CertificationRecord | None = None,
        course: int | CourseRecord | None = None,
        enrollment_id: int | None = None,
        evidence_id: int | None = None,
        people: dict[str, int | None] | None = None,
        **fields: Any,
    ) -> None:
        """Queue an event; it is written to the outbox when the use case's body is done,
        inside its transaction. Records passed in spare a read of their names."""
        if isinstance(certification, CertificationRecord):
            self.certifications[certification.id] = CertificationRef(
                id=encode_id("Certification", certification.id), name=certification.name
            )
            certification = certification.id
        if isinstance(course, CourseRecord):
            self.courses[course.id] = CourseRef(id=encode_id("Course", course.id), name=course.name)
            course = course.id
        if enrollment_id is not None:
            fields["enrollment_id"] = encode_id("Enrollment", enrollment_id)
        if evidence_id is not None:
            fields["evidence_id"] = encode_id("Evidence", evidence_id)
        self.drafts.append(
            _Draft(kind, learner_id, certification, course, dict(people or {}), fields)
        )

    def know(self, actor: Someone) -> None:
        if actor.user_id is not None:
            self.people[actor.user_id] = Person(
                id=encode_id("User", actor.user_id), name=actor.name, email=actor.email
            )

    async def write_events(self) -> int:
        """Write the queued events to the outbox (one statement, plus one read per kind of
        name not yet in hand); returns how many."""
        drafts, self.drafts = self.drafts, []
        if not drafts:
            return 0
        await self._resolve_names(drafts)
        rows = []
        for draft in drafts:
            values: dict[str, Any] = dict(draft.fields)
            values["learner"] = self.people[draft.learner_id]
            if draft.certification_id is not None:
                values["certification"] = self.certifications[draft.certification_id]
            if draft.course_id is not None:
                values["course"] = self.courses[draft.course_id]
            for name, pk in draft.people.items():
                values[name] = None if pk is None else self.people[pk]
            data = draft.kind.model_validate(values)
            rows.append(
                outbox.OutboxRow(
                    event_id=uuid4(),
                    type=draft.kind.TYPE,
                    occurred_at=self.now,
                    actor_id=self.actor_id,
                    ordering_key=f"learner:{draft.learner_id}",
                    data=data.model_dump(mode="json", by_alias=True),
                )
            )
        await outbox.insert_events(rows)
        # Live feeds of every process and instance are woken on commit (PostgreSQL).
        await outbox.notify_live()
        return len(rows)

    async def _resolve_names(self, drafts: list[_Draft]) -> None:
        users = {d.learner_id for d in drafts} | {
            pk for d in drafts for pk in d.people.values() if pk is not None
        }
        missing_users = users - self.people.keys()
        for pk, name, email in await outbox.user_names(missing_users):
            self.people[pk] = Person(id=encode_id("User", pk), name=name, email=email)
        missing_courses = {d.course_id for d in drafts if d.course_id is not None}
        for pk, name in await outbox.course_names(missing_courses - self.courses.keys()):
            self.courses[pk] = CourseRef(id=encode_id("Course", pk), name=name)
        missing_certs = {d.certification_id for d in drafts if d.certification_id is not None}
        for pk, name in await outbox.certification_names(
            missing_certs - self.certifications.keys()
        ):
            self.certifications[pk] = CertificationRef(id=encode_id("Certification", pk), name=name)

    async def audit(
        self,
        action: str,
        object_type: str,
        object_id: object | None,
        *,
        before: dict[str, Any] | None = None,
        after: dict[str, Any] | None = None,
        detail: str | None = None,
    ) -> None:
        await insert_audit_event(
            self.now,
            self.actor_id,
            action,
            object_type,
            None if object_id is None else str(object_id),
            before,
            after,
            detail,
        )


@asynccontextmanager
async def unit_of_work(
    actor: Someone | int | None, plugins: PluginHost | None = None, *, time_zone: tzinfo = UTC
) -> AsyncIterator[Unit]:
    """Open a write transaction; the events the body emits are written to the outbox in it,
    and once it commits the local dispatcher is woken (it delivers them; nothing waits).
    `time_zone`: the organisation's, for the use cases that may write an award."""
    host = plugins or get_plugin_host()
    if actor is None or isinstance(actor, int):
        unit = Unit(actor_id=actor, now=clock.now(), plugins=host, time_zone=time_zone)
    else:
        unit = Unit(actor_id=actor.user_id, now=clock.now(), plugins=host, time_zone=time_zone)
        unit.know(actor)
    async with write_transaction():
        yield unit
        written = await unit.write_events()
    note_commit()
    if written:
        host.events_written()


async def audit_refusal(
    actor_id: int | None, action: str, object_type: str, object_id: object | None, reason: str
) -> None:
    """Record a refused action in its own transaction (the refused change has none)."""
    unit = Unit(actor_id=actor_id, now=clock.now())
    async with write_transaction():
        await unit.audit(f"denied:{action}", object_type, object_id, detail=reason)


# -- denied reads ---------------------------------------------------------------------------


@dataclass
class DeniedReads:
    """Reads of objects hidden from their reader, collected during one request."""

    rows: list[tuple[datetime, int | None, str, str, str | None, str]] = field(default_factory=list)


_denied: ContextVar[DeniedReads | None] = ContextVar("certgraph_denied_reads", default=None)


@contextmanager
def collecting_denied_reads(buffer: DeniedReads | None = None) -> Iterator[DeniedReads]:
    """Collect the denied reads of the code run inside (a request) into `buffer` instead of
    writing each at once; write them with flush_denied_reads once the answer is sent."""
    buffer = DeniedReads() if buffer is None else buffer
    token = _denied.set(buffer)
    try:
        yield buffer
    finally:
        _denied.reset(token)


async def note_denied_read(
    actor_id: int | None, action: str, object_type: str, object_id: object | None, reason: str
) -> None:
    """Audit a read of an object the reader may not see (it reads as not found): into the
    request's buffer when one is collecting, else at once."""
    key = None if object_id is None else str(object_id)
    buffer = _denied.get()
    if buffer is None:
        await audit_refusal(actor_id, action, object_type, object_id, reason)
        return
    buffer.rows.append((clock.now(), actor_id, f"denied:{action}", object_type, key, reason))


async def flush_denied_reads(buffer: DeniedReads) -> int:
    """Write the collected denied reads as one batch (nothing when there are none);
    returns how many. A failure is logged, never raised: the answer was already decided."""
    rows, buffer.rows = buffer.rows, []
    if not rows:
        return 0
    events = [
        audit_row(at, actor_id, action, object_type, object_id, None, None, detail)
        for at, actor_id, action, object_type, object_id, detail in rows
    ]
    try:
        await retrying(lambda: insert_audit_events(events))
    except Exception:  # the reader's answer must not depend on the log
        log.exception("could not write %d denied-read audit rows", len(rows))
        return 0
    return len(rows)
