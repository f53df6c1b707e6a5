"""Submitting and reviewing external proof: who, when, once, and what it leaves behind."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gql import clock
from gql.domain import certifications, enrollments
from gql.domain.access import Actor
from gql.domain.errors import (
    ErrorCode,
    FileTooLarge,
    InvalidInput,
    NotAllowed,
    NotFound,
    UnsupportedFileType,
)
from gql.domain.evidence import ReviewDecision, list_review_queue, review_evidence, submit_evidence
from gql.domain.pages import PageRequest
from gql.domain.status import EnrollmentStatus, describe_enrollments
from gql.store import reads
from gql.store.models import (
    AuditEvent,
    Award,
    Certification,
    CertificationType,
    Enrollment,
    Evidence,
    EvidenceStatus,
)
from gql.vocabulary import encode_id
from tests.conftest import EventLog, stored_files

from .conftest import World, blob_path, blob_store, collect_garbage
from .samples import HTML, BytesStream, GeneratedStream, pdf, png


async def submit(
    actor: Actor,
    cert: Certification,
    content: bytes | None = None,
    *,
    filename: str = "proof.pdf",
    completed_on: date | None = None,
    note: str | None = None,
) -> Evidence:
    return await submit_evidence(
        actor,
        cert.id,
        BytesStream(pdf() if content is None else content),
        blobs=blob_store(),
        filename=filename,
        completed_on=completed_on,
        note=note,
        declared_type="application/pdf" if content is None else None,
    )


async def status_of(actor: Actor, cert: Certification) -> EnrollmentStatus:
    enrollment = await Enrollment.get(learner_id=actor.user_id, certification_id=cert.id)
    return (await describe_enrollments(await reads.enrollments(id=enrollment.id)))[
        enrollment.id
    ].status


# -- submitting ---------------------------------------------------------------------------


async def test_submitting_self_enrols_and_waits_for_review(
    world: World, events: EventLog, data_dir: Path
) -> None:
    cert = await world.external()
    content = pdf("my certificate")

    evidence = await submit(world.learner, cert, content, filename="../cert.pdf", note=" hi ")

    assert evidence.status == EvidenceStatus.PENDING
    assert (evidence.filename, evidence.content_type, evidence.note) == (
        "cert.pdf",
        "application/pdf",
        "hi",
    )
    assert evidence.sha256 == hashlib.sha256(content).hexdigest()
    assert evidence.size_bytes == len(content)
    assert blob_path(evidence.sha256).read_bytes() == content
    assert await status_of(world.learner, cert) == EnrollmentStatus.PENDING_APPROVAL
    enrollment = await Enrollment.get(learner_id=world.learner.user_id, certification_id=cert.id)
    assert enrollment.origin == "SELF" and enrollment.started_at is not None
    assert await events.types() == ["enrolled", "started", "evidence_submitted"]
    assert (await events.named("evidence_submitted"))[0].data.evidence_id == encode_id(
        "Evidence", evidence.id
    )
    assert await AuditEvent.filter(action="submitEvidence", object_id=str(evidence.id)).exists()
    assert stored_files(data_dir) == [f"blobs/{evidence.sha256[:2]}/{evidence.sha256}"]


async def test_only_external_certifications_take_proof(world: World) -> None:
    internal = await world.internal(world.course)
    with pytest.raises(NotAllowed):
        await submit(world.learner, internal)
    assert not await Enrollment.exists()


async def test_unpublished_or_unknown_certifications_read_as_missing(world: World) -> None:
    draft = await world.external(publish=False)
    for certification_id in (draft.id, 999_999):
        with pytest.raises(NotFound):
            await submit_evidence(
                world.learner,
                certification_id,
                BytesStream(pdf()),
                blobs=blob_store(),
                filename="p.pdf",
            )
    assert not await Enrollment.exists()


async def test_a_retired_certification_takes_proof_only_from_the_enrolled(world: World) -> None:
    cert = await world.external()
    await submit(world.learner, cert)
    await certifications.retire_certification(world.admin, cert.id)

    with pytest.raises(NotFound):  # not enrolled: it reads as missing
        await submit(world.other_learner, cert)
    with pytest.raises(NotAllowed):  # enrolled: the usual rules (proof is waiting)
        await submit(world.learner, cert)
    assert await Enrollment.all().count() == 1


async def test_no_second_submission_while_one_waits(world: World) -> None:
    cert = await world.external()
    await submit(world.learner, cert)
    with pytest.raises(NotAllowed) as raised:
        await submit(world.learner, cert, png(), filename="other.png")
    assert "waiting for review" in raised.value.message
    assert await Evidence.all().count() == 1


async def test_rejection_lets_the_learner_submit_again(world: World, events: EventLog) -> None:
    cert = await world.external()
    first = await submit(world.learner, cert)

    rejected = await review_evidence(world.manager, first.id, ReviewDecision.REJECT, "blurry")

    assert rejected.status == EvidenceStatus.REJECTED
    assert (rejected.reviewed_by_id, rejected.review_comment) == (world.manager.user_id, "blurry")
    assert rejected.reviewed_at is not None
    assert await status_of(world.learner, cert) == EnrollmentStatus.REJECTED
    assert (await events.named("evidence_reviewed"))[0].data.decision == "REJECT"

    second = await submit(world.learner, cert, png(), filename="sharp.png")

    assert second.id != first.id and second.content_type == "image/png"
    assert await status_of(world.learner, cert) == EnrollmentStatus.PENDING_APPROVAL


async def test_approval_completes_and_awards_exactly_once(world: World, events: EventLog) -> None:
    cert = await world.external()
    evidence = await submit(world.learner, cert)

    approved = await review_evidence(world.admin, evidence.id, ReviewDecision.APPROVE)

    assert approved.status == EvidenceStatus.APPROVED
    assert await status_of(world.learner, cert) == EnrollmentStatus.COMPLETED
    assert await Award.all().count() == 1
    assert len(await events.named("certification_completed")) == 1
    with pytest.raises(NotAllowed) as raised:
        await review_evidence(world.admin, evidence.id, ReviewDecision.REJECT)
    assert "already reviewed" in raised.value.message
    with pytest.raises(NotAllowed):  # completed: nothing more to submit
        await submit(world.learner, cert)
    assert await Award.all().count() == 1
    assert len(await events.named("certification_completed")) == 1
    audit = await AuditEvent.get(action="reviewEvidence", object_id=str(evidence.id))
    assert (audit.actor_id, audit.before, audit.after) == (
        world.admin.user_id,
        {"status": "PENDING"},
        {"status": "APPROVED", "comment": None},
    )


async def test_racing_reviews_decide_once(world: World, events: EventLog) -> None:
    cert = await world.external()
    evidence = await submit(world.learner, cert)

    results = await asyncio.gather(
        review_evidence(world.manager, evidence.id, ReviewDecision.APPROVE),
        review_evidence(world.admin, evidence.id, ReviewDecision.APPROVE),
        return_exceptions=True,
    )

    assert sorted(type(r).__name__ for r in results) == ["EvidenceRecord", "NotAllowed"]
    assert await Award.all().count() == 1
    assert len(await events.named("evidence_reviewed")) == 1
    assert len(await events.named("certification_completed")) == 1


async def test_without_approval_a_submission_completes_at_once(
    world: World, events: EventLog
) -> None:
    cert = await world.external(policy_config={"requiresApproval": False})

    await submit(world.learner, cert)

    assert await status_of(world.learner, cert) == EnrollmentStatus.COMPLETED
    assert len(await events.named("certification_completed")) == 1


async def test_mandatory_courses_first_when_the_policy_says_so(world: World) -> None:
    cert = await world.external(
        policy_config={"requireMandatoryCourses": True}, courses=[world.course]
    )
    with pytest.raises(NotAllowed) as raised:
        await submit(world.learner, cert)
    assert "mandatory course" in raised.value.message
    assert not await Enrollment.exists()  # refused before anything was written

    await enrollments.record_course_progress(
        world.learner, course_id=world.course.id, completed=True
    )
    evidence = await submit(world.learner, cert)
    assert evidence.status == EvidenceStatus.PENDING


async def test_learner_dated_certifications_need_a_plausible_completed_on(
    world: World, frozen_now: datetime
) -> None:
    cert = await world.external(policy_config={"completionDate": "learner"})
    today = frozen_now.date()

    for completed_on, expected in ((None, "required"), (today + timedelta(days=1), "future")):
        with pytest.raises(InvalidInput) as raised:
            await submit(world.learner, cert, completed_on=completed_on)
        assert raised.value.field == ("completedOn",)
        assert expected in raised.value.message
    assert not await Evidence.exists()

    evidence = await submit(world.learner, cert, completed_on=date(2025, 11, 3))
    await review_evidence(world.manager, evidence.id, ReviewDecision.APPROVE)
    award = await Award.get()
    assert award.awarded_at.date() == date(2025, 11, 3)


async def test_recertification_takes_proof_once_the_window_opens(
    world: World, frozen_now: datetime
) -> None:
    cert = await world.external(
        type=CertificationType.RECURRING,
        validity_months=12,
        policy_config={"completionDate": "learner"},
    )
    first = await submit(world.learner, cert, completed_on=frozen_now.date())
    await review_evidence(world.manager, first.id, ReviewDecision.APPROVE)
    award = await Award.get()
    assert award.expires_at is not None

    with pytest.raises(NotAllowed):  # completed, window not open yet
        await submit(world.learner, cert, completed_on=frozen_now.date())

    window_opens = award.expires_at - timedelta(days=cert.recertification_window_days)
    clock.freeze(window_opens + timedelta(days=1))
    with pytest.raises(InvalidInput) as raised:  # a date from before this cycle began
        await submit(world.learner, cert, completed_on=window_opens.date() - timedelta(days=1))
    assert "before this cycle" in raised.value.message

    second = await submit(world.learner, cert, completed_on=clock.now().date())
    assert second.status == EvidenceStatus.PENDING
    await review_evidence(world.manager, second.id, ReviewDecision.APPROVE)
    assert [a.cycle for a in await Award.all().order_by("cycle")] == [1, 2]


async def test_expired_certifications_take_new_proof(world: World, frozen_now: datetime) -> None:
    cert = await world.external(type=CertificationType.RECURRING, validity_months=6)
    first = await submit(world.learner, cert)
    await review_evidence(world.manager, first.id, ReviewDecision.APPROVE)

    clock.advance(timedelta(days=400))
    assert await status_of(world.learner, cert) == EnrollmentStatus.EXPIRED
    again = await submit(world.learner, cert)
    assert again.status == EvidenceStatus.PENDING


async def test_proof_of_a_lapsed_completion_is_no_renewal(
    world: World, frozen_now: datetime
) -> None:
    """Proof stating a completion from before a cycle began counts for the first cycle only:
    the award it earns has already lapsed, and the next cycle needs new proof."""
    cert = await world.external(
        type=CertificationType.RECURRING,
        validity_months=24,
        policy_config={"completionDate": "learner"},
    )
    earned = (frozen_now - timedelta(days=800)).date()
    proof = await submit(world.learner, cert, completed_on=earned)
    await review_evidence(world.manager, proof.id, ReviewDecision.APPROVE)

    enrollment = await Enrollment.get(learner_id=world.learner.user_id, certification_id=cert.id)
    [view] = (await describe_enrollments(await reads.enrollments(id=enrollment.id))).values()
    assert (view.status, view.cycle) == (EnrollmentStatus.EXPIRED, 2)
    assert [a.cycle for a in view.awards] == [1]
    assert view.explanation.endswith("; cycle 2: no proof submitted yet"), view.explanation

    renewal = await submit(world.learner, cert, completed_on=frozen_now.date())
    await review_evidence(world.manager, renewal.id, ReviewDecision.APPROVE)
    assert await status_of(world.learner, cert) == EnrollmentStatus.COMPLETED


async def test_refused_files_leave_no_enrollment_evidence_or_file(
    world: World, upload_limit: int, data_dir: Path
) -> None:
    cert = await world.external()
    with pytest.raises(UnsupportedFileType):
        await submit(world.learner, cert, HTML, filename="proof.pdf")
    with pytest.raises(FileTooLarge):
        await submit_evidence(
            world.learner,
            cert.id,
            GeneratedStream(upload_limit * 3, head=pdf()),
            blobs=blob_store(),
            filename="big.pdf",
        )
    assert not await Enrollment.exists()
    assert not await Evidence.exists()
    assert stored_files(data_dir) == []


async def test_a_crash_between_blob_and_row_leaves_only_an_orphan_gc_removes(
    world: World, monkeypatch: pytest.MonkeyPatch, data_dir: Path
) -> None:
    cert = await world.external()

    async def crash(**_: Any) -> Evidence:
        raise RuntimeError("power cut")

    monkeypatch.setattr(Evidence, "create", crash)
    with pytest.raises(RuntimeError):
        await submit(world.learner, cert)
    monkeypatch.undo()

    digest = hashlib.sha256(pdf()).hexdigest()
    assert stored_files(data_dir) == [f"blobs/{digest[:2]}/{digest}"]  # the orphan, no temp
    assert not await Evidence.exists()
    assert not await Enrollment.exists()  # the self-enrolment rolled back with it

    report = await collect_garbage(grace_seconds=0)

    assert (report.blobs_removed, report.blobs_kept) == (1, 0)
    assert stored_files(data_dir) == []


async def test_note_length_is_limited(world: World) -> None:
    cert = await world.external()
    with pytest.raises(InvalidInput) as raised:
        await submit(world.learner, cert, note="x" * 2001)
    assert raised.value.field == ("note",)


async def test_only_users_submit(world: World) -> None:
    cert = await world.external()
    with pytest.raises(InvalidInput):
        await submit(Actor.system(), cert)


# -- who reviews --------------------------------------------------------------------------


async def test_nobody_reviews_their_own_evidence(world: World) -> None:
    cert = await world.external()
    own = [await submit(world.admin, cert), await submit(world.manager, cert)]
    for actor, evidence in zip((world.admin, world.manager), own, strict=True):
        with pytest.raises(NotAllowed) as raised:
            await review_evidence(actor, evidence.id, ReviewDecision.APPROVE)
        assert raised.value.code == ErrorCode.NOT_ALLOWED
    assert await Evidence.filter(status=EvidenceStatus.PENDING).count() == 2
    assert await AuditEvent.filter(action="denied:reviewEvidence").count() == 2


async def test_learners_cannot_review_their_own_either(world: World) -> None:
    cert = await world.external()
    evidence = await submit(world.learner, cert)
    with pytest.raises(NotAllowed):
        await review_evidence(world.learner, evidence.id, ReviewDecision.APPROVE)


async def test_evidence_out_of_reach_reads_as_missing(world: World) -> None:
    cert = await world.external()
    evidence = await submit(world.learner, cert)

    for outsider in (world.other_manager, world.other_learner):
        with pytest.raises(NotFound) as raised:
            await review_evidence(outsider, evidence.id, ReviewDecision.APPROVE)
        assert raised.value.field == ("evidenceId",)
    with pytest.raises(NotFound):
        await review_evidence(world.admin, 999_999, ReviewDecision.APPROVE)

    assert (await Evidence.get(id=evidence.id)).status == EvidenceStatus.PENDING
    denied = await AuditEvent.filter(action="denied:reviewEvidence").values_list(
        "actor_id", flat=True
    )
    assert sorted(denied) == sorted([world.other_manager.user_id, world.other_learner.user_id])


async def test_the_review_queue_follows_the_same_rules(world: World) -> None:
    cert = await world.external()
    mine = await submit(world.learner, cert)
    theirs = await submit(world.other_learner, cert)

    async def queue(actor: Actor) -> list[int]:
        return [e.id for e in (await list_review_queue(actor, paging=PageRequest(first=10))).items]

    assert await queue(world.manager) == [mine.id]
    assert await queue(world.other_manager) == [theirs.id]
    assert await queue(world.admin) == [mine.id, theirs.id]
    assert await queue(world.learner) == []
    await review_evidence(world.manager, mine.id, ReviewDecision.APPROVE)
    assert await queue(world.manager) == []


async def test_review_comments_are_limited(world: World) -> None:
    cert = await world.external()
    evidence = await submit(world.learner, cert)
    with pytest.raises(InvalidInput) as raised:
        await review_evidence(world.manager, evidence.id, ReviewDecision.REJECT, "x" * 2001)
    assert raised.value.field == ("comment",)
    assert (await Evidence.get(id=evidence.id)).status == EvidenceStatus.PENDING
