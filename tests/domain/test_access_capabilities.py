"""The predicates behind the viewerCan flags (gql/domain/access.py), each as a table over the
roles and states, and the evidence requirements a form reads; tests/api/test_capabilities.py
checks that each flag agrees with its mutation's refusals."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime

import pytest

from gql.domain import access, certifications, enrollments, evidence
from gql.domain.access import Actor
from gql.domain.errors import NotAllowed
from gql.domain.records import CertificationRecord
from gql.files.intake import ACCEPTED_TYPES, Purpose
from gql.plugins import get_plugin_host
from gql.store.models import (
    CertificationKind,
    CertificationState,
    EvidenceStatus,
    Role,
)

from .factories import Factory

ADMIN = Actor(user_id=1, role=Role.ADMIN)
MANAGER = Actor(user_id=2, role=Role.MANAGER)
LEARNER = Actor(user_id=3, role=Role.LEARNER, manager_id=2)
OTHER_MANAGER = Actor(user_id=5, role=Role.MANAGER)
SYSTEM = Actor.system()

DRAFT, PUBLISHED, RETIRED = (
    CertificationState.DRAFT,
    CertificationState.PUBLISHED,
    CertificationState.RETIRED,
)
ENDED_AT = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Learner:
    id: int
    manager_id: int | None


@dataclass(frozen=True)
class Own:
    ended_at: datetime | None = None


REPORT = Learner(id=3, manager_id=2)  # LEARNER, who reports to MANAGER


def cert_record(
    state: CertificationState = PUBLISHED,
    kind: CertificationKind = CertificationKind.EXTERNAL,
    **config: object,
) -> CertificationRecord:
    return CertificationRecord(
        id=7,
        name="Cloud Architect",
        overview="",
        kind=kind,
        type="PERPETUAL",  # type: ignore[arg-type]
        issuer="Example Board",
        validity_months=None,
        recertification_window_days=30,
        days_to_complete=None,
        state=state,
        published_at=None,
        policy_name="external-evidence",
        policy_config=dict(config),
        badge_name=None,
        badge_sha256=None,
        badge_content_type=None,
    )


# -- starting -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "own", "may"),
    [
        (PUBLISHED, None, True),
        (PUBLISHED, Own(), True),
        (PUBLISHED, Own(ENDED_AT), True),  # reopened as a self-enrolment
        (RETIRED, None, False),
        (RETIRED, Own(), True),  # one's enrollment goes on
        (RETIRED, Own(ENDED_AT), False),  # an ended one is not reopened
        (DRAFT, None, False),
    ],
)
def test_who_may_start(state: CertificationState, own: Own | None, may: bool) -> None:
    assert access.may_enrol(state, own) is may
    for actor in (ADMIN, MANAGER, LEARNER):  # a start is for oneself, whatever the role
        assert access.may_start(actor, state, own) is may
    assert access.may_start(SYSTEM, state, own) is False  # the operator has no enrollments
    refusal = access.enrol_refusal(cert_record(state), own)
    assert (refusal is None) is may
    if refusal is not None:
        assert isinstance(refusal, NotAllowed) and refusal.field == ("certificationId",)


@pytest.mark.parametrize(
    ("actor", "learner_id", "may"),
    [
        (LEARNER, 3, True),  # one's own
        (MANAGER, 3, False),  # a report records their own
        (MANAGER, 2, True),
        (OTHER_MANAGER, 3, False),
        (ADMIN, 3, True),
        (ADMIN, 1, True),
    ],
)
def test_who_may_record_progress(actor: Actor, learner_id: int, may: bool) -> None:
    assert access.may_record_progress(actor, learner_id) is may


# -- reviewing and downloading ------------------------------------------------------------


@pytest.mark.parametrize(
    ("actor", "learner", "status", "reviews", "downloads"),
    [
        (MANAGER, REPORT, EvidenceStatus.PENDING, True, True),
        (MANAGER, REPORT, EvidenceStatus.APPROVED, False, True),  # reviewed once
        (MANAGER, REPORT, EvidenceStatus.REJECTED, False, True),
        (OTHER_MANAGER, REPORT, EvidenceStatus.PENDING, False, False),
        (ADMIN, REPORT, EvidenceStatus.PENDING, True, True),
        (ADMIN, Learner(id=1, manager_id=None), EvidenceStatus.PENDING, False, True),  # own
        (LEARNER, REPORT, EvidenceStatus.PENDING, False, True),  # own: never reviewed by oneself
        (MANAGER, Learner(id=2, manager_id=None), EvidenceStatus.PENDING, False, True),
    ],
)
def test_who_may_review_and_download(
    actor: Actor, learner: Learner, status: EvidenceStatus, reviews: bool, downloads: bool
) -> None:
    assert access.may_review_evidence(actor, learner, status) is reviews
    assert access.may_download_evidence(actor, learner) is downloads


# -- administering ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "kind", "has_courses", "publish", "retire", "assign"),
    [
        (DRAFT, CertificationKind.INTERNAL, True, True, False, False),
        (DRAFT, CertificationKind.INTERNAL, False, False, False, False),  # needs courses
        (DRAFT, CertificationKind.EXTERNAL, False, True, False, False),
        (PUBLISHED, CertificationKind.INTERNAL, True, False, True, True),
        (PUBLISHED, CertificationKind.EXTERNAL, False, False, True, True),
        (RETIRED, CertificationKind.INTERNAL, True, False, False, False),
    ],
)
def test_what_admins_may_do_in_each_state(
    state: CertificationState,
    kind: CertificationKind,
    has_courses: bool,
    publish: bool,
    retire: bool,
    assign: bool,
) -> None:
    cert = cert_record(state, kind)
    assert access.may_publish(ADMIN, cert, has_courses) is publish
    assert access.may_retire(ADMIN, cert) is retire
    assert access.may_assign(ADMIN, cert) is assign
    assert (access.publish_refusal(cert, has_courses) is None) is publish
    assert (access.retire_refusal(cert) is None) is retire
    assert (access.assign_refusal(cert) is None) is assign
    for actor in (MANAGER, LEARNER):  # the state never makes up for the role
        assert not access.may_publish(actor, cert, has_courses)
        assert not access.may_retire(actor, cert)
        assert not access.may_assign(actor, cert)


@pytest.mark.parametrize(
    ("actor", "manages", "reports"),
    [
        (ADMIN, True, True),
        (MANAGER, False, True),
        (OTHER_MANAGER, False, True),
        (LEARNER, False, False),
    ],
)
def test_who_manages_certifications_and_reads_reports(
    actor: Actor, manages: bool, reports: bool
) -> None:
    assert access.may_manage_certifications(actor) is manages
    assert access.may_view_reports(actor) is reports


# -- what proof needs ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "required"),
    [
        ({}, False),
        ({"completionDate": "approval"}, False),
        ({"completionDate": "learner"}, True),
        ({"requiresApproval": False, "completionDate": "learner"}, True),
    ],
)
def test_the_completion_date_rule_is_the_policy_configs(
    config: dict[str, object], required: bool
) -> None:
    cert = cert_record(**config)
    assert access.completion_date_required(cert) is required
    requirements = evidence.evidence_requirements(cert, 4096)
    assert requirements == evidence.EvidenceRequirements(
        completion_date_required=required,
        max_bytes=4096,
        accepted_content_types=ACCEPTED_TYPES[Purpose.EVIDENCE],
        max_note_chars=evidence.MAX_NOTE_CHARS,
    )


def test_a_certification_earned_by_courses_has_no_evidence_requirements() -> None:
    cert = cert_record(kind=CertificationKind.INTERNAL, completionDate="learner")
    assert not access.takes_evidence(cert)
    assert evidence.evidence_requirements(cert, 4096) is None


# -- when proof is taken (real enrollments, read as the rules read them) -------------------


async def test_proof_is_taken_in_the_states_domain_md_names(make: Factory) -> None:
    plugins = get_plugin_host()
    manager = await make.user(Role.MANAGER)
    learner = await make.learner(manager=manager)
    assert learner.user_id is not None
    cert = await make.certification(kind=CertificationKind.EXTERNAL)

    def refusal(view: object, own: object | None) -> str | None:
        found = access.submission_refusal(cert, own, view, plugins)  # type: ignore[arg-type]
        return None if found is None else found.message

    # not enrolled yet: the enrollment as it would be
    draft = evidence.draft_view(learner.user_id, cert, [], {}, plugins)
    assert refusal(draft, None) is None
    assert access.may_submit_evidence(learner, learner.user_id, cert, None, draft, plugins)
    # nobody submits for someone else, the manager included
    assert not access.may_submit_evidence(manager, learner.user_id, cert, None, draft, plugins)

    await enrollments.start_certification(learner, cert.id)
    enrollment = await make.enrollment_of(learner, cert)
    assert refusal(await make.view(enrollment), enrollment) is None  # STARTED

    await make.evidence(enrollment, EvidenceStatus.PENDING)
    view = await make.view(enrollment)
    assert refusal(view, enrollment) == "your proof is waiting for review: wait for the decision"
    assert not access.may_submit_evidence(learner, learner.user_id, cert, enrollment, view, plugins)

    rejected = await make.certification(kind=CertificationKind.EXTERNAL)
    await enrollments.start_certification(learner, rejected.id)
    rejected_enrollment = await make.enrollment_of(learner, rejected)
    await make.evidence(rejected_enrollment, EvidenceStatus.REJECTED)
    assert (await make.view(rejected_enrollment)).status == "REJECTED"
    assert (
        access.submission_refusal(
            rejected, rejected_enrollment, await make.view(rejected_enrollment), plugins
        )
        is None
    )

    done = await make.certification(kind=CertificationKind.EXTERNAL)
    await enrollments.start_certification(learner, done.id)
    done_enrollment = await make.enrollment_of(learner, done)
    await make.evidence(done_enrollment, EvidenceStatus.APPROVED, reviewed_at=ENDED_AT)
    done_view = await make.view(done_enrollment)
    assert done_view.status == "COMPLETED"
    found = access.submission_refusal(done, done_enrollment, done_view, plugins)
    assert found is not None and "COMPLETED" in found.message


async def test_no_proof_for_courses_nor_after_an_end_in_a_retired_certification(
    make: Factory,
) -> None:
    plugins = get_plugin_host()
    learner = await make.learner()
    assert learner.user_id is not None
    internal = await make.certification(await make.course())
    draft = evidence.draft_view(learner.user_id, internal, [], {}, plugins)
    found = access.submission_refusal(internal, None, draft, plugins)
    assert found is not None and found.field == ("certificationId",)

    cert = await make.certification(kind=CertificationKind.EXTERNAL)
    await enrollments.start_certification(learner, cert.id)
    await enrollments.unassign_certification(await make.admin(), cert.id, [learner.user_id])
    ended = await make.enrollment_of(learner, cert)
    view = await make.view(ended.id)
    # ended in a PUBLISHED certification: submitting reopens it
    assert access.submission_refusal(cert, view.enrollment, view, plugins) is None
    retired = await certifications.retire_certification(await make.admin(), cert.id)
    view = await make.view(ended.id)
    found = access.submission_refusal(retired, view.enrollment, view, plugins)
    assert found is not None and "was ended" in found.message
    # a RETIRED certification goes on for an enrollment that did not end
    assert (
        access.submission_refusal(retired, replace(view.enrollment, ended_at=None), view, plugins)
        is None
    )


async def test_the_policy_may_refuse_until_the_mandatory_courses_are_done(make: Factory) -> None:
    plugins = get_plugin_host()
    learner = await make.learner()
    course = await make.course()
    cert = await make.certification(
        course, kind=CertificationKind.EXTERNAL, policy_config={"requireMandatoryCourses": True}
    )
    await enrollments.start_certification(learner, cert.id)
    enrollment = await make.enrollment_of(learner, cert)
    found = access.submission_refusal(cert, enrollment, await make.view(enrollment), plugins)
    assert found is not None and "mandatory course" in found.message
    await make.complete(learner, course)
    assert access.submission_refusal(cert, enrollment, await make.view(enrollment), plugins) is None
