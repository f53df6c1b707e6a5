"""Enrollment status derivation, the built-in course policies, awards and the completion event."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta
from typing import Any

import pytest

from gql import Event, clock, hookimpl
from gql.domain import certifications, enrollments, unit
from gql.domain.certifications import CourseLink
from gql.domain.dispatcher import DispatchConfig, Dispatcher
from gql.domain.errors import InvalidInput
from gql.domain.status import EnrollmentStatus
from gql.events import CertificationCompleted, EventData
from gql.store.models import (
    AuditEvent,
    Award,
    CertificationKind,
    CertificationType,
    CourseProgress,
    EvidenceStatus,
)
from tests.conftest import EventLog

from .factories import Factory

EXTERNAL = CertificationKind.EXTERNAL
RECURRING = CertificationType.RECURRING


async def test_enrolled_then_started_by_progress_then_completed(
    make: Factory, frozen_now: datetime
) -> None:
    a, b = await make.course(), await make.course()
    cert = await make.certification(a, b)
    learner = await make.learner()
    enrollment = await make.assign(cert, learner)

    view = await make.view(enrollment)
    assert (view.status, view.progress_percent, view.cycle) == (EnrollmentStatus.ENROLLED, 0, 1)
    assert view.completed_at is None and view.awards == []

    await make.progress(learner, a, 10)  # any progress starts it, without startCertification
    view = await make.view(enrollment)
    assert (view.status, view.progress_percent) == (EnrollmentStatus.STARTED, 0)

    await make.complete(learner, a)
    assert (await make.view(enrollment)).progress_percent == 50
    clock.advance(timedelta(hours=1))
    await make.complete(learner, b)

    view = await make.view(enrollment)
    assert (view.status, view.progress_percent) == (EnrollmentStatus.COMPLETED, 100)
    assert view.completed_at == frozen_now + timedelta(hours=1)
    assert view.expires_at is None  # PERPETUAL
    assert view.pending_courses == []


async def test_pending_approval_and_rejected_come_from_the_evidence(
    make: Factory, frozen_now: datetime
) -> None:
    cert = await make.certification(kind=EXTERNAL)
    learner = await make.learner()
    enrollment = await make.assign(cert, learner)
    assert (await make.view(enrollment)).status == EnrollmentStatus.ENROLLED

    await make.evidence(enrollment, EvidenceStatus.PENDING, reevaluate=False)
    assert (await make.view(enrollment)).status == EnrollmentStatus.PENDING_APPROVAL

    clock.advance(timedelta(hours=1))
    await make.evidence(
        enrollment, EvidenceStatus.REJECTED, reviewed_at=clock.now(), reevaluate=False
    )
    # the latest submission decides: rejected
    view = await make.view(enrollment)
    assert view.status == EnrollmentStatus.REJECTED
    assert view.explanation

    clock.advance(timedelta(hours=1))
    await make.evidence(enrollment, EvidenceStatus.PENDING, reevaluate=False)
    assert (await make.view(enrollment)).status == EnrollmentStatus.PENDING_APPROVAL
    assert len((await make.view(enrollment)).evidence) == 3


async def test_an_approval_awards_at_the_review_time(make: Factory, frozen_now: datetime) -> None:
    cert = await make.certification(kind=EXTERNAL)
    learner = await make.learner()
    enrollment = await make.assign(cert, learner)
    reviewed = frozen_now - timedelta(hours=2)

    await make.evidence(
        enrollment,
        EvidenceStatus.APPROVED,
        submitted_at=frozen_now - timedelta(days=1),
        reviewed_at=reviewed,
    )

    view = await make.view(enrollment)
    assert view.status == EnrollmentStatus.COMPLETED
    assert view.completed_at == reviewed
    assert [(a.cycle, a.awarded_at) for a in await Award.filter(enrollment_id=enrollment.id)] == [
        (1, reviewed)
    ]


async def test_an_award_in_force_outranks_a_later_rejection(
    make: Factory, frozen_now: datetime
) -> None:
    cert = await make.certification(kind=EXTERNAL)
    learner = await make.learner()
    enrollment = await make.assign(cert, learner)
    await make.evidence(enrollment, EvidenceStatus.APPROVED, reviewed_at=frozen_now)

    clock.advance(timedelta(days=1))
    await make.evidence(enrollment, EvidenceStatus.REJECTED, reviewed_at=clock.now())

    assert (await make.view(enrollment)).status == EnrollmentStatus.COMPLETED


async def test_mandatory_subset_example_from_the_rules(make: Factory, frozen_now: datetime) -> None:
    m1, o1, m2, o2 = [await make.course(n) for n in ("M1", "O1", "M2", "O2")]
    cert = await make.certification((m1, True), (o1, False), (m2, True), (o2, False))
    learner = await make.learner()
    enrollment = await make.assign(cert, learner)

    await make.complete(learner, o1)
    await make.complete(learner, o2)
    view = await make.view(enrollment)
    assert (view.status, view.progress_percent) == (EnrollmentStatus.STARTED, 0)

    await make.complete(learner, m1)
    view = await make.view(enrollment)
    assert (view.status, view.progress_percent) == (EnrollmentStatus.STARTED, 50)

    clock.advance(timedelta(minutes=10))
    await make.complete(learner, m2)
    view = await make.view(enrollment)
    assert (view.status, view.progress_percent) == (EnrollmentStatus.COMPLETED, 100)
    assert view.completed_at == frozen_now + timedelta(minutes=10)


async def test_mandatory_subset_without_flags_requires_every_course(make: Factory) -> None:
    a, b, c = await make.course(), await make.course(), await make.course()
    cert = await make.certification((a, False), (b, False), (c, False))
    learner = await make.learner()
    enrollment = await make.assign(cert, learner)

    await make.complete(learner, a)
    await make.complete(learner, b)
    view = await make.view(enrollment)
    assert (view.status, view.progress_percent) == (EnrollmentStatus.STARTED, 67)

    await make.complete(learner, c)
    assert (await make.view(enrollment)).status == EnrollmentStatus.COMPLETED


async def test_all_required_ignores_the_flags(make: Factory) -> None:
    mandatory, optional = await make.course(), await make.course()
    cert = await make.certification((mandatory, True), (optional, False), policy="all-required")
    learner = await make.learner()
    enrollment = await make.assign(cert, learner)

    await make.complete(learner, mandatory)
    view = await make.view(enrollment)
    assert (view.status, view.progress_percent) == (EnrollmentStatus.STARTED, 50)

    await make.complete(learner, optional)
    assert (await make.view(enrollment)).status == EnrollmentStatus.COMPLETED


async def test_award_date_is_the_completion_that_satisfied_the_rule(
    make: Factory, frozen_now: datetime
) -> None:
    m1, m2, optional = await make.course(), await make.course(), await make.course()
    cert = await make.certification((m1, True), (m2, True), (optional, False))
    learner = await make.learner()
    enrollment = await make.assign(cert, learner)

    await make.complete(learner, m1, at=frozen_now - timedelta(days=30))
    await make.complete(learner, optional, at=frozen_now - timedelta(days=2))
    await make.complete(learner, m2, at=frozen_now - timedelta(days=20))

    awards = await Award.filter(enrollment_id=enrollment.id)
    assert [(a.cycle, a.awarded_at, a.expires_at) for a in awards] == [
        (1, frozen_now - timedelta(days=20), None)
    ]


async def test_recurring_award_expires_validity_months_after_the_award(
    make: Factory, frozen_now: datetime
) -> None:
    course = await make.course()
    cert = await make.certification(course, type=RECURRING, validity_months=12)
    learner = await make.learner()
    enrollment = await make.assign(cert, learner)
    completed = datetime(2026, 1, 15, 8, 30, tzinfo=frozen_now.tzinfo)

    await make.complete(learner, course, at=completed)

    view = await make.view(enrollment)
    assert view.status == EnrollmentStatus.COMPLETED
    assert (view.completed_at, view.expires_at) == (
        completed,
        datetime(2027, 1, 15, 8, 30, tzinfo=frozen_now.tzinfo),
    )


async def test_one_award_per_enrollment_and_cycle(
    make: Factory, frozen_now: datetime, events: EventLog
) -> None:
    shared, extra = await make.course(), await make.course()
    first = await make.certification(shared)
    second = await make.certification(extra, shared)
    learner = await make.learner()
    e1 = await make.assign(first, learner)
    e2 = await make.assign(second, learner)
    await make.complete(learner, extra)

    await make.complete(learner, shared)
    clock.advance(timedelta(hours=1))
    await make.complete(learner, shared)  # the same completion recorded again, later
    await make.progress(learner, shared, 100)

    for enrollment in (e1, e2):
        awards = await Award.filter(enrollment_id=enrollment.id)
        assert [(a.cycle, a.awarded_at) for a in awards] == [(1, frozen_now)]
    completed_events = await events.named("certification_completed")
    assert len(completed_events) == 2
    for event in completed_events:
        json.loads(event.body_json())  # what a webhook receives is JSON
    assert len(await AuditEvent.filter(action="award")) == 2


async def test_the_completion_event_is_emitted_once_after_commit(
    make: Factory, plugin_host: object, frozen_now: datetime
) -> None:
    course = await make.course()
    cert = await make.certification(course)
    learner = await make.learner()
    enrollment = await make.assign(cert, learner)
    seen: list[tuple[str, int]] = []

    class AwardCounter:
        """Reads the database from the hook: the award must already be committed."""

        @hookimpl
        async def certgraph_event(self, event: Event) -> None:
            if event.type == "certification_completed":
                seen.append((event.type, await Award.filter(enrollment_id=enrollment.id).count()))

    plugin_host.register(AwardCounter(), "award-counter")  # type: ignore[attr-defined]
    dispatcher = Dispatcher(plugin_host, DispatchConfig(sweep_interval_seconds=0))  # type: ignore[arg-type]

    await make.complete(learner, course)
    await make.complete(learner, course)
    assert seen == []  # nothing is delivered by the request itself
    await dispatcher.run_until_idle()
    await dispatcher.stop()

    assert seen == [("certification_completed", 1)]


async def test_a_failing_use_case_emits_nothing_and_writes_nothing(
    make: Factory, frozen_now: datetime, events: EventLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    course = await make.course()
    cert = await make.certification(course)
    learner = await make.learner()
    enrollment = await make.assign(cert, learner)
    audit_before = await AuditEvent.all().count()
    await events.clear()
    original_emit = unit.Unit.emit

    def emit_then_fail(self: unit.Unit, kind: type[EventData], **payload: Any) -> None:
        original_emit(self, kind, **payload)
        if kind is CertificationCompleted:
            raise RuntimeError("the use case fails after deciding the award")

    monkeypatch.setattr(unit.Unit, "emit", emit_then_fail)

    with pytest.raises(RuntimeError):
        await make.complete(learner, course)

    assert await events.all() == []
    assert await Award.all().count() == 0
    assert await CourseProgress.all().count() == 0
    assert await AuditEvent.all().count() == audit_before

    monkeypatch.setattr(unit.Unit, "emit", original_emit)
    await make.complete(learner, course)
    assert (await events.types()).count("certification_completed") == 1
    assert (await make.view(enrollment)).status == EnrollmentStatus.COMPLETED


async def test_invalid_input_emits_nothing(make: Factory, events: EventLog) -> None:
    course = await make.course()
    learner = await make.learner()
    cert = await make.certification(course)
    await make.assign(cert, learner)
    await events.clear()

    with pytest.raises(InvalidInput):
        await enrollments.record_course_progress(learner, course_id=course.id, percent=101)

    assert await events.all() == []


async def test_racing_completions_award_once(
    make: Factory, frozen_now: datetime, events: EventLog
) -> None:
    a, b = await make.course(), await make.course()
    cert = await make.certification(a, b)
    learner = await make.learner()
    enrollment = await make.assign(cert, learner)
    await make.complete(learner, a)
    await events.clear()

    results = await asyncio.gather(*(make.complete(learner, b) for _ in range(8)))

    assert all(r.enrollments and r.enrollments[0].id == enrollment.id for r in results)
    assert await Award.filter(enrollment_id=enrollment.id).count() == 1
    assert len(await events.named("certification_completed")) == 1
    assert len(await events.named("progress_recorded")) == 8


async def test_changing_the_rules_re_evaluates_and_can_award(
    make: Factory, frozen_now: datetime, events: EventLog
) -> None:
    done, todo = await make.course(), await make.course()
    cert = await make.certification(done, todo)
    learner = await make.learner()
    enrollment = await make.assign(cert, learner)
    await make.complete(learner, done)
    assert (await make.view(enrollment)).status == EnrollmentStatus.STARTED

    clock.advance(timedelta(days=1))
    await certifications.set_certification_courses(
        await make.admin(),
        cert.id,
        [CourseLink(done.id, mandatory=True), CourseLink(todo.id, mandatory=False)],
    )

    view = await make.view(enrollment)
    assert view.status == EnrollmentStatus.COMPLETED
    assert view.completed_at == frozen_now  # the completion that now satisfies the rule
    assert len(await events.named("certification_completed")) == 1
    assert await Award.filter(enrollment_id=enrollment.id).count() == 1
