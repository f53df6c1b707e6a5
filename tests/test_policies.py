"""The built-in completion policies: examples per policy, then properties (hypothesis).

Policies are pure, so these tests build facts by hand and need no database.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from gql import CompletionPolicy, CourseFacts, EvidenceFacts, PolicyFacts, Verdict, VerdictStatus
from plugins.all_required import AllRequired, AllRequiredConfig
from plugins.external_evidence import ExternalEvidence, ExternalEvidenceConfig
from plugins.mandatory_subset import MandatorySubset, MandatorySubsetConfig

NOW = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
MANDATORY_SUBSET = MandatorySubset()
ALL_REQUIRED = AllRequired()
EXTERNAL = ExternalEvidence()


def course(
    course_id: int,
    *,
    mandatory: bool = True,
    done_days_ago: int | None = None,
    percent: int = 0,
    position: int | None = None,
) -> CourseFacts:
    completed_at = None if done_days_ago is None else NOW - timedelta(days=done_days_ago)
    return CourseFacts(
        course_id=course_id,
        position=course_id if position is None else position,
        mandatory=mandatory,
        percent=100 if completed_at is not None else percent,
        completed=completed_at is not None,
        completed_at=completed_at,
        last_activity_at=completed_at,
    )


def facts(
    *courses: CourseFacts, evidence: tuple[EvidenceFacts, ...] = (), kind: str = "INTERNAL"
) -> PolicyFacts:
    return PolicyFacts(
        certification_id=1,
        kind=kind,
        now=NOW,
        cycle=1,
        cycle_started_at=None,
        courses=courses,
        evidence=evidence,
    )


def mandatory_subset(f: PolicyFacts) -> Verdict:
    return MANDATORY_SUBSET.evaluate(f, MandatorySubsetConfig())


def all_required(f: PolicyFacts) -> Verdict:
    return ALL_REQUIRED.evaluate(f, AllRequiredConfig())


# -- mandatory-subset ------------------------------------------------------------------------


def test_mandatory_subset_the_example_of_domain_md() -> None:
    """4 courses, 2 mandatory: complete once those 2 are done."""
    optional_undone = (course(3, mandatory=False), course(4, mandatory=False, percent=30))
    one_done = facts(course(1, done_days_ago=5), course(2, percent=50), *optional_undone)
    verdict = mandatory_subset(one_done)
    assert verdict.status is VerdictStatus.IN_PROGRESS
    assert verdict.progress == 0.5
    assert verdict.remaining == (2,)
    assert verdict.explanation == "1 of 2 mandatory courses done"

    both_done = facts(course(1, done_days_ago=5), course(2, done_days_ago=1), *optional_undone)
    verdict = mandatory_subset(both_done)
    assert verdict.status is VerdictStatus.COMPLETE
    assert verdict.progress == 1.0
    assert verdict.completed_at == NOW - timedelta(days=1)  # the completion that satisfied it
    assert verdict.remaining == ()


def test_mandatory_subset_requires_every_course_when_none_is_flagged() -> None:
    courses = (course(1, mandatory=False, done_days_ago=2), course(2, mandatory=False))
    verdict = mandatory_subset(facts(*courses))
    assert verdict.status is VerdictStatus.IN_PROGRESS
    assert verdict.progress == 0.5
    assert verdict.explanation == "1 of 2 courses done"


def test_mandatory_subset_ignores_optional_progress_for_its_status() -> None:
    verdict = mandatory_subset(facts(course(1), course(2, mandatory=False, done_days_ago=1)))
    assert verdict.status is VerdictStatus.NOT_STARTED
    assert verdict.progress == 0.0
    started = mandatory_subset(facts(course(1, percent=10), course(2, mandatory=False)))
    assert started.status is VerdictStatus.IN_PROGRESS


def test_a_certification_without_courses_is_not_started() -> None:
    for verdict in (mandatory_subset(facts()), all_required(facts())):
        assert verdict.status is VerdictStatus.NOT_STARTED
        assert verdict.explanation == "this certification has no courses yet"


def test_remaining_courses_follow_the_certification_order() -> None:
    courses = (course(10, position=3), course(11, position=1), course(12, position=2))
    assert mandatory_subset(facts(*courses)).remaining == (11, 12, 10)


# -- all-required ----------------------------------------------------------------------------


def test_all_required_ignores_the_mandatory_flags() -> None:
    courses = (course(1, done_days_ago=3), course(2, mandatory=False))
    assert mandatory_subset(facts(*courses)).status is VerdictStatus.COMPLETE
    verdict = all_required(facts(*courses))
    assert verdict.status is VerdictStatus.IN_PROGRESS
    assert verdict.remaining == (2,)

    done = all_required(
        facts(course(1, done_days_ago=3), course(2, mandatory=False, done_days_ago=7))
    )
    assert done.status is VerdictStatus.COMPLETE
    assert done.completed_at == NOW - timedelta(days=3)


@pytest.mark.parametrize("config_model", [MandatorySubsetConfig, AllRequiredConfig])
def test_the_course_policies_take_no_config(config_model: type[MandatorySubsetConfig]) -> None:
    config_model.model_validate({})
    with pytest.raises(ValidationError):
        config_model.model_validate({"minCourses": 2})


# -- properties of the course policies -------------------------------------------------------


@st.composite
def course_lists(draw: st.DrawFn, min_size: int = 0, max_size: int = 8) -> tuple[CourseFacts, ...]:
    """Courses in a plausible state: a completed one is at 100% with a completion time."""
    size = draw(st.integers(min_size, max_size))
    positions = draw(st.permutations(list(range(size))))
    result = []
    for index in range(size):
        completed = draw(st.booleans())
        result.append(
            course(
                index + 1,
                mandatory=draw(st.booleans()),
                done_days_ago=draw(st.integers(0, 400)) if completed else None,
                percent=0 if completed else draw(st.integers(0, 99)),
                position=positions[index],
            )
        )
    return tuple(result)


def required_by_mandatory_subset(courses: tuple[CourseFacts, ...]) -> tuple[CourseFacts, ...]:
    return tuple(c for c in courses if c.mandatory) or courses


COURSE_POLICIES = {
    "mandatory-subset": (mandatory_subset, required_by_mandatory_subset),
    "all-required": (all_required, lambda courses: courses),
}


@pytest.mark.parametrize("policy_name", sorted(COURSE_POLICIES))
@given(courses=course_lists())
def test_complete_exactly_when_every_required_course_is_done(
    policy_name: str, courses: tuple[CourseFacts, ...]
) -> None:
    evaluate, required_of = COURSE_POLICIES[policy_name]
    verdict = evaluate(facts(*courses))
    required = required_of(courses)
    rule_holds = bool(required) and all(c.completed for c in required)
    assert (verdict.status is VerdictStatus.COMPLETE) == rule_holds
    if rule_holds:
        assert verdict.completed_at == max(c.completed_at for c in required if c.completed_at)
        assert verdict.remaining == ()
    else:
        assert verdict.completed_at is None
        assert set(verdict.remaining) == {c.course_id for c in required if not c.completed}


@pytest.mark.parametrize("policy_name", sorted(COURSE_POLICIES))
@given(courses=course_lists(min_size=1), data=st.data())
def test_progress_stays_within_bounds_and_never_drops_when_a_course_is_completed(
    policy_name: str, courses: tuple[CourseFacts, ...], data: st.DataObject
) -> None:
    evaluate, required_of = COURSE_POLICIES[policy_name]
    before = evaluate(facts(*courses))
    assert 0.0 <= before.progress <= 1.0
    required = required_of(courses)
    assert before.progress == sum(c.completed for c in required) / len(required)

    undone = [i for i, c in enumerate(courses) if not c.completed]
    if not undone:
        return
    index = data.draw(st.sampled_from(undone))
    completed = dataclasses.replace(
        courses[index], completed=True, percent=100, completed_at=NOW, last_activity_at=NOW
    )
    after = evaluate(facts(*courses[:index], completed, *courses[index + 1 :]))
    assert 0.0 <= after.progress <= 1.0
    assert after.progress >= before.progress
    if before.status is VerdictStatus.COMPLETE:
        assert after.status is VerdictStatus.COMPLETE


@given(courses=course_lists(min_size=1), extra=course_lists(min_size=1, max_size=3))
def test_an_optional_course_never_changes_a_mandatory_subset_verdict(
    courses: tuple[CourseFacts, ...], extra: tuple[CourseFacts, ...]
) -> None:
    if not any(c.mandatory for c in courses):
        courses = (dataclasses.replace(courses[0], mandatory=True), *courses[1:])
    optional = tuple(
        dataclasses.replace(
            c, course_id=100 + c.course_id, position=100 + c.position, mandatory=False
        )
        for c in extra
    )
    assert mandatory_subset(facts(*courses, *optional)) == mandatory_subset(facts(*courses))


# -- external-evidence -----------------------------------------------------------------------


def evidence(
    evidence_id: int,
    status: str,
    *,
    submitted_days_ago: int,
    reviewed_days_ago: int | None = None,
    completed_on: date | None = None,
) -> EvidenceFacts:
    reviewed_at = None if reviewed_days_ago is None else NOW - timedelta(days=reviewed_days_ago)
    return EvidenceFacts(
        evidence_id=evidence_id,
        status=status,
        submitted_at=NOW - timedelta(days=submitted_days_ago),
        reviewed_at=reviewed_at,
        completed_on=completed_on,
    )


def external(
    *items: EvidenceFacts, courses: tuple[CourseFacts, ...] = (), **config: object
) -> Verdict:
    return EXTERNAL.evaluate(
        facts(*courses, evidence=items, kind="EXTERNAL"),
        ExternalEvidenceConfig.model_validate(config),
    )


def test_external_evidence_without_proof_is_not_started() -> None:
    verdict = external()
    assert verdict.status is VerdictStatus.NOT_STARTED
    assert verdict.progress == 0.0


def test_external_evidence_waits_for_approval_by_default() -> None:
    pending = external(evidence(1, "PENDING", submitted_days_ago=2))
    assert pending.status is VerdictStatus.PENDING_APPROVAL
    assert pending.completed_at is None

    approved = external(evidence(1, "APPROVED", submitted_days_ago=9, reviewed_days_ago=4))
    assert approved.status is VerdictStatus.COMPLETE
    assert approved.completed_at == NOW - timedelta(days=4)  # the approval time
    assert approved.explanation == "proof approved"


def test_external_evidence_rejected_then_submitted_again() -> None:
    rejected = evidence(1, "REJECTED", submitted_days_ago=9, reviewed_days_ago=8)
    assert external(rejected).status is VerdictStatus.REJECTED
    again = evidence(2, "PENDING", submitted_days_ago=1)
    assert external(rejected, again).status is VerdictStatus.PENDING_APPROVAL
    approved = dataclasses.replace(again, status="APPROVED", reviewed_at=NOW)
    verdict = external(rejected, approved)
    assert verdict.status is VerdictStatus.COMPLETE
    assert verdict.completed_at == NOW


def test_external_evidence_without_approval_completes_on_submission() -> None:
    verdict = external(evidence(1, "PENDING", submitted_days_ago=3), requiresApproval=False)
    assert verdict.status is VerdictStatus.COMPLETE
    assert verdict.completed_at == NOW - timedelta(days=3)
    assert verdict.explanation == "proof submitted"
    # a reviewer may still reject it: rejected proof never counts
    rejected = evidence(1, "REJECTED", submitted_days_ago=3, reviewed_days_ago=1)
    assert external(rejected, requiresApproval=False).status is VerdictStatus.REJECTED


def test_external_evidence_completion_date_can_be_the_learners() -> None:
    stated = date(2026, 1, 15)
    approved = evidence(
        1, "APPROVED", submitted_days_ago=9, reviewed_days_ago=4, completed_on=stated
    )
    by_learner = external(approved, completionDate="learner")
    assert by_learner.completed_at == datetime(2026, 1, 15, tzinfo=UTC)
    by_approval = external(approved, completionDate="approval")
    assert by_approval.completed_at == NOW - timedelta(days=4)
    # no stated date: the approval time, whatever the config says
    unstated = dataclasses.replace(approved, completed_on=None)
    assert external(unstated, completionDate="learner").completed_at == NOW - timedelta(days=4)


def test_external_evidence_config_is_camel_case_and_strict() -> None:
    config = ExternalEvidenceConfig.model_validate(
        {"requiresApproval": False, "completionDate": "learner", "requireMandatoryCourses": True}
    )
    assert (config.requires_approval, config.completion_date, config.require_mandatory_courses) == (
        False,
        "learner",
        True,
    )
    assert config.model_dump(by_alias=True) == {
        "requiresApproval": False,
        "completionDate": "learner",
        "requireMandatoryCourses": True,
    }
    for bad in ({"completionDate": "submission"}, {"requiresApproval": "maybe"}, {"typo": 1}):
        with pytest.raises(ValidationError):
            ExternalEvidenceConfig.model_validate(bad)


def test_check_submission_refuses_until_the_mandatory_courses_are_done() -> None:
    config = ExternalEvidenceConfig.model_validate({"requireMandatoryCourses": True})
    courses = (course(1), course(2, done_days_ago=3), course(3, mandatory=False))
    assert (
        EXTERNAL.check_submission(facts(*courses), config)
        == "complete the 1 remaining mandatory course(s) first"
    )
    done = (course(1, done_days_ago=1), course(2, done_days_ago=3), course(3, mandatory=False))
    assert EXTERNAL.check_submission(facts(*done), config) is None
    # none flagged: every course is mandatory
    unflagged = (course(1, mandatory=False), course(2, mandatory=False, done_days_ago=1))
    assert (
        EXTERNAL.check_submission(facts(*unflagged), config)
        == "complete the 1 remaining mandatory course(s) first"
    )
    # off by default
    assert EXTERNAL.check_submission(facts(*courses), ExternalEvidenceConfig()) is None


@pytest.mark.parametrize("policy", [MANDATORY_SUBSET, ALL_REQUIRED, EXTERNAL], ids=lambda p: p.name)
def test_every_builtin_follows_the_policy_protocol(policy: CompletionPolicy) -> None:
    assert isinstance(policy, CompletionPolicy)
    config = policy.config_model()
    assert isinstance(policy.evaluate(facts(course(1)), config), Verdict)
    # the course-counting policies inherit the protocol's check_submission: always accept
    assert policy.check_submission(facts(course(1)), config) is None


@st.composite
def evidence_histories(draw: st.DrawFn) -> tuple[EvidenceFacts, ...]:
    """Submissions oldest first; each reviewed one was reviewed after it was submitted."""
    statuses = draw(st.lists(st.sampled_from(["PENDING", "APPROVED", "REJECTED"]), max_size=5))
    items = []
    days_ago = 400
    for index, status in enumerate(statuses):
        days_ago -= draw(st.integers(1, 60))
        reviewed = None if status == "PENDING" else max(days_ago - draw(st.integers(0, 10)), 0)
        completed_on = draw(st.none() | st.dates(date(2024, 1, 1), date(2026, 3, 1)))
        items.append(
            evidence(
                index + 1,
                status,
                submitted_days_ago=max(days_ago, 0),
                reviewed_days_ago=reviewed,
                completed_on=completed_on,
            )
        )
    return tuple(items)


@given(
    history=evidence_histories(),
    requires_approval=st.booleans(),
    completion_date=st.sampled_from(["approval", "learner"]),
)
def test_external_evidence_complete_exactly_when_accepted_proof_exists(
    history: tuple[EvidenceFacts, ...], requires_approval: bool, completion_date: str
) -> None:
    verdict = external(*history, requiresApproval=requires_approval, completionDate=completion_date)
    assert 0.0 <= verdict.progress <= 1.0
    accepted = [
        e
        for e in history
        if e.status == "APPROVED" or (not requires_approval and e.status == "PENDING")
    ]
    assert (verdict.status is VerdictStatus.COMPLETE) == bool(accepted)
    if accepted:
        first = accepted[0]
        if completion_date == "learner" and first.completed_on is not None:
            expected = datetime.combine(first.completed_on, datetime.min.time(), tzinfo=UTC)
        elif requires_approval:
            expected = first.reviewed_at
        else:
            expected = first.submitted_at
        assert verdict.completed_at == expected
    elif not history:
        assert verdict.status is VerdictStatus.NOT_STARTED
    elif history[-1].status == "PENDING":
        assert verdict.status is VerdictStatus.PENDING_APPROVAL
    else:
        assert verdict.status is VerdictStatus.REJECTED


@given(courses=course_lists(), require=st.booleans())
def test_check_submission_refuses_exactly_when_required_courses_are_missing(
    courses: tuple[CourseFacts, ...], require: bool
) -> None:
    config = ExternalEvidenceConfig(require_mandatory_courses=require)
    refusal = EXTERNAL.check_submission(facts(*courses), config)
    missing = [c for c in required_by_mandatory_subset(courses) if not c.completed]
    assert (refusal is not None) == (require and bool(missing))
