"""pendingCourses is the policy's `remaining`, in its order, each marked mandatory or not; the
explanation tells a completion's validity and an open next cycle, and since when an expired
certification has lapsed (issue 13)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import BaseModel

import plugins.all_required
import plugins.external_evidence
import plugins.mandatory_subset
from gql import CompletionPolicy, PolicyFacts, Verdict, VerdictStatus, clock, hookimpl, player_order
from gql.domain.status import EnrollmentStatus
from gql.plugins import PluginHost, set_plugin_host
from gql.policy import CourseFacts
from gql.store.models import CertificationKind, CertificationType

from .factories import Factory


class LastFirstConfig(BaseModel):
    pass


class LastFirst(CompletionPolicy):
    """A third party's policy: every course, last position first; it also names a course
    that is not in the certification and one course twice."""

    name = "last-first"
    description = "Every course, the last one first."
    config_model = LastFirstConfig

    def evaluate(self, facts: PolicyFacts, config: LastFirstConfig) -> Verdict:
        undone = sorted((c for c in facts.courses if not c.completed), key=lambda c: -c.position)
        ids = [c.course_id for c in undone]
        return Verdict(
            status=VerdictStatus.IN_PROGRESS,
            progress=0.0,
            remaining=(*ids, 999_999, *ids[:1]),
            explanation=f"{len(ids)} to go",
        )


class LastFirstPlugin:
    @hookimpl
    def certgraph_completion_policies(self) -> list[object]:
        return [LastFirst()]


@pytest.fixture
def with_last_first() -> PluginHost:
    host = PluginHost()
    for module in (plugins.mandatory_subset, plugins.all_required, plugins.external_evidence):
        assert host.register(module, module.__name__)
    assert host.register(LastFirstPlugin(), "last-first")
    host.collect_policies()
    set_plugin_host(host)
    return host


async def test_pending_courses_follow_the_policy_in_its_order(
    make: Factory, with_last_first: PluginHost
) -> None:
    a, b, c = await make.course("A"), await make.course("B"), await make.course("C")
    cert = await make.certification((a, True), (b, False), (c, True), policy="last-first")
    learner = await make.learner()
    enrollment = await make.assign(cert, learner)
    await make.complete(learner, c)

    view = await make.view(enrollment)

    # C is done; the policy asks for B then A; its unknown and repeated IDs are dropped
    assert [p.course.id for p in view.pending_courses] == [b.id, a.id]
    assert [p.mandatory for p in view.pending_courses] == [False, True]
    assert view.explanation == "2 to go"


async def test_an_external_certification_has_no_pending_courses_its_policy_does_not_ask(
    make: Factory,
) -> None:
    course = await make.course()
    cert = await make.certification(course, kind=CertificationKind.EXTERNAL)
    learner = await make.learner()
    enrollment = await make.assign(cert, learner)

    view = await make.view(enrollment)

    assert [c.course.id for c in view.courses] == [course.id]
    assert view.pending_courses == []


def test_player_order_is_started_by_recency_then_mandatory_then_position() -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)

    def course(
        i: int, *, mandatory: bool, percent: int = 0, minutes: int | None = None
    ) -> CourseFacts:
        return CourseFacts(
            course_id=i,
            position=i,
            mandatory=mandatory,
            percent=percent,
            completed=False,
            completed_at=None,
            last_activity_at=None if minutes is None else at + timedelta(minutes=minutes),
        )

    courses = [
        course(1, mandatory=True),
        course(2, mandatory=False),
        course(3, mandatory=True, percent=20, minutes=1),
        course(4, mandatory=True),
        course(5, mandatory=False, percent=10, minutes=2),
    ]
    assert player_order(courses) == (5, 3, 1, 4, 2)


async def test_a_completion_in_its_open_window_says_until_when_and_what_the_next_cycle_needs(
    make: Factory, frozen_now: datetime
) -> None:
    a, b = await make.course(), await make.course()
    cert = await make.certification(
        a,
        b,
        type=CertificationType.RECURRING,
        validity_months=12,
        recertification_window_days=30,
    )
    learner = await make.learner()
    enrollment = await make.assign(cert, learner)
    await make.complete(learner, a)
    await make.complete(learner, b)

    view = await make.view(enrollment)
    assert view.status == EnrollmentStatus.COMPLETED
    assert view.expires_at is not None
    until = view.expires_at.astimezone(UTC).date().isoformat()
    assert view.explanation == f"2 of 2 mandatory courses done; valid until {until}"

    clock.freeze(view.expires_at - timedelta(days=10))  # in the window, cycle 2
    view = await make.view(enrollment)
    assert (view.status, view.cycle, view.progress_percent) == (EnrollmentStatus.COMPLETED, 2, 0)
    assert view.explanation == (
        f"valid until {until}; recertification is open (cycle 2): 0 of 2 mandatory courses done"
    )
    assert [c.course.id for c in view.pending_courses] == [a.id, b.id]

    clock.freeze(view.expires_at + timedelta(days=3))
    view = await make.view(enrollment)
    assert view.status == EnrollmentStatus.EXPIRED
    assert view.explanation == f"expired on {until}; cycle 2: 0 of 2 mandatory courses done"
