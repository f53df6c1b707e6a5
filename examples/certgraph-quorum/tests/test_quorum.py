"""The quorum policy, tested on its own facts: no database, no certgraph server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from certgraph_quorum import Quorum, QuorumConfig, certgraph_completion_policies
from pydantic import ValidationError

from gql import CourseFacts, PolicyFacts, VerdictStatus

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def course(course_id: int, *, done_days_ago: int | None = None, percent: int = 0) -> CourseFacts:
    completed_at = None if done_days_ago is None else NOW - timedelta(days=done_days_ago)
    return CourseFacts(
        course_id=course_id,
        position=course_id,
        mandatory=False,
        percent=100 if completed_at else percent,
        completed=completed_at is not None,
        completed_at=completed_at,
        last_activity_at=completed_at,
    )


def facts(*courses: CourseFacts) -> PolicyFacts:
    return PolicyFacts(
        certification_id=1,
        kind="INTERNAL",
        now=NOW,
        cycle=1,
        cycle_started_at=None,
        courses=courses,
    )


def test_complete_once_the_quorum_is_reached() -> None:
    verdict = Quorum().evaluate(
        facts(course(1, done_days_ago=9), course(2), course(3, done_days_ago=2)),
        QuorumConfig(min_courses=2),
    )
    assert verdict.status is VerdictStatus.COMPLETE
    assert verdict.progress == 1.0
    # the second completion reached the quorum
    assert verdict.completed_at == NOW - timedelta(days=2)


def test_a_later_completion_does_not_move_the_completion_date() -> None:
    config = QuorumConfig(min_courses=2)
    two = facts(course(1, done_days_ago=9), course(2, done_days_ago=5), course(3))
    three = facts(
        course(1, done_days_ago=9), course(2, done_days_ago=5), course(3, done_days_ago=0)
    )
    assert Quorum().evaluate(two, config).completed_at == NOW - timedelta(days=5)
    assert Quorum().evaluate(three, config).completed_at == NOW - timedelta(days=5)


def test_in_progress_below_the_quorum_lists_what_remains() -> None:
    verdict = Quorum().evaluate(
        facts(course(1, done_days_ago=1), course(2), course(3)), QuorumConfig(min_courses=3)
    )
    assert verdict.status is VerdictStatus.IN_PROGRESS
    assert verdict.progress == pytest.approx(1 / 3)
    assert verdict.remaining == (2, 3)
    assert verdict.completed_at is None


def test_not_started_until_anything_happens() -> None:
    config = QuorumConfig(min_courses=1)
    assert (
        Quorum().evaluate(facts(course(1), course(2)), config).status is VerdictStatus.NOT_STARTED
    )
    started = Quorum().evaluate(facts(course(1, percent=10), course(2)), config)
    assert started.status is VerdictStatus.IN_PROGRESS
    assert started.progress == 0.0


def test_config_uses_camel_case_and_refuses_nonsense() -> None:
    assert QuorumConfig.model_validate({"minCourses": 2}).min_courses == 2
    with pytest.raises(ValidationError):
        QuorumConfig.model_validate({"minCourses": 0})
    with pytest.raises(ValidationError):
        QuorumConfig.model_validate({})
    with pytest.raises(ValidationError):
        QuorumConfig.model_validate({"minCourses": 1, "typo": True})


def test_the_hook_offers_the_policy() -> None:
    [policy] = certgraph_completion_policies()
    assert isinstance(policy, Quorum)
    assert policy.name == "quorum"
