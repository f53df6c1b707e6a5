"""External proof: submitting it, reviewing it, and the reads (one's own, the review queue).
The file is received and checked before the transaction opens and moved into storage right
before its row is written, so a refused submission leaves neither (domain.md "Evidence")."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, timedelta
from enum import StrEnum
from typing import Any

from gql import clock
from gql.domain.access import (
    Actor,
    learner_scope,
    may_review,
    may_see_learner,
    note_hidden,
    open_to_learner,
    review_scope,
)
from gql.domain.enrollments import enrol_and_start, enrollment_of, new_enrollment
from gql.domain.errors import InvalidInput, NotAllowed, NotFound
from gql.domain.evaluation import evaluate_enrollments, lock_learners
from gql.domain.pages import DEFAULT_MAX_PAGE_SIZE, OrmKey, Page, orm_page
from gql.domain.status import (
    EnrollmentStatus,
    EnrollmentView,
    course_links,
    derive_view,
    load_context,
)
from gql.domain.unit import audit_refusal, unit_of_work
from gql.domain.uploads import received_upload
from gql.events import EvidenceReviewed, EvidenceSubmitted
from gql.files import BlobStore, ByteSource, Purpose, StagedUpload
from gql.plugins import PluginHost, PolicyUnavailable, get_plugin_host
from gql.policy import VerdictStatus
from gql.store import reads
from gql.store.db import retrying
from gql.store.models import Evidence
from gql.store.records import (
    EVIDENCE_COLUMNS,
    CertificationRecord,
    EnrollmentRecord,
    EvidenceRecord,
    record_of,
)
from gql.vocabulary import CertificationKind, EnrollmentOrigin, EvidenceStatus

MAX_NOTE_CHARS = 2000
MAX_COMMENT_CHARS = 2000
# Statuses in which new proof is taken (COMPLETED too, while its recertification window is open).
SUBMITTABLE = frozenset(
    {
        EnrollmentStatus.ENROLLED,
        EnrollmentStatus.STARTED,
        EnrollmentStatus.REJECTED,
        EnrollmentStatus.EXPIRED,
    }
)


class ReviewDecision(StrEnum):
    APPROVE = "APPROVE"
    REJECT = "REJECT"


# -- reads --------------------------------------------------------------------------------


async def list_review_queue(
    actor: Actor,
    *,
    certification_id: int | None = None,
    learner_id: int | None = None,
    first: int | None = 20,
    after: str | None = None,
    max_page_size: int = DEFAULT_MAX_PAGE_SIZE,
) -> Page[EvidenceRecord]:
    """PENDING evidence the actor may review, oldest first; only that of one certification
    and/or one learner when given."""
    scope = review_scope(actor)
    queryset = Evidence.filter(status=EvidenceStatus.PENDING)
    queryset = queryset.filter(scope) if scope is not None else queryset.filter(id=-1)
    if certification_id is not None:
        queryset = queryset.filter(enrollment__certification_id=certification_id)
    if learner_id is not None:
        queryset = queryset.filter(enrollment__learner_id=learner_id)
    return await orm_page(
        queryset,
        [OrmKey("submitted_at", type="datetime"), OrmKey("id")],
        record=EvidenceRecord,
        columns=EVIDENCE_COLUMNS,
        kind="review-queue",
        first=first,
        after=after,
        max_page_size=max_page_size,
    )


async def evidence_by_ids(actor: Actor, ids: list[int]) -> dict[int, EvidenceRecord]:
    if not ids:
        return {}
    rows = await reads.evidence_where(learner_scope(actor, "enrollment__learner_id"), id__in=ids)
    return {row.id: row for row in rows}


async def get_evidence(actor: Actor, evidence_id: int) -> EvidenceRecord | None:
    found = (await evidence_by_ids(actor, [evidence_id])).get(evidence_id)
    if found is None and await Evidence.filter(id=evidence_id).exists():
        await note_hidden(actor, "evidence", "Evidence", evidence_id)
    return found


# -- submitting ---------------------------------------------------------------------------


def _clean_text(value: str | None, name: str, limit: int) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if len(value) > limit:
        raise InvalidInput(f"{name} must be at most {limit} characters", field=[name])
    return value or None


async def _view(
    learner_id: int,
    cert: CertificationRecord,
    enrollment: EnrollmentRecord | None,
    plugins: PluginHost | None = None,
) -> EnrollmentView:
    """The enrollment as the rules see it now; for a learner not yet enrolled, as it would be."""
    now = clock.now()
    if enrollment is not None:
        context = await load_context([enrollment], plugins)
        return context.view(enrollment, now)
    links = (await course_links([cert.id])).get(cert.id, [])
    progress = {
        row.course_id: row
        for row in await reads.course_progress([learner_id], [link.course_id for link in links])
    }
    draft = new_enrollment(learner_id, cert, EnrollmentOrigin.SELF, now, None, None)
    return derive_view(draft, cert, links, progress, [], [], now, plugins or get_plugin_host())


def _check_status(view: EnrollmentView) -> None:
    waiting = view.verdict is not None and view.verdict.status == VerdictStatus.PENDING_APPROVAL
    if view.status == EnrollmentStatus.PENDING_APPROVAL or waiting:
        raise NotAllowed("your proof is waiting for review: wait for the decision")
    reopened = view.status == EnrollmentStatus.COMPLETED and view.window_open
    if view.status not in SUBMITTABLE and not reopened:
        raise NotAllowed(
            f"this certification is {view.status.value}: new proof is taken only once its "
            "recertification window opens"
            if view.status == EnrollmentStatus.COMPLETED
            else f"no proof is taken while the enrollment is {view.status.value}"
        )


def _check_completed_on(
    cert: CertificationRecord, view: EnrollmentView, completed_on: date | None
) -> None:
    dated_by_learner = cert.policy_config.get("completionDate") == "learner"
    if completed_on is None:
        if dated_by_learner:
            raise InvalidInput(
                "completedOn is required: this certification is dated by the day you earned it",
                field=["completedOn"],
            )
        return
    # A calendar date has no zone: refuse only what is in the future everywhere (UTC+14).
    if completed_on > (clock.now().astimezone(UTC) + timedelta(hours=14)).date():
        raise InvalidInput("completedOn must not be in the future", field=["completedOn"])
    started = view.cycle_started_at
    if started is not None and completed_on < started.astimezone(UTC).date():
        raise InvalidInput(
            f"completedOn must not be before this cycle began ({started.date().isoformat()})",
            field=["completedOn"],
        )


def _check_policy(cert: CertificationRecord, view: EnrollmentView, plugins: PluginHost) -> None:
    try:
        reason = plugins.check_submission(cert.policy_name, view.facts, cert.policy_config)
    except PolicyUnavailable as exc:
        raise NotAllowed(f"proof cannot be taken now: {exc}") from None
    if reason is not None:
        raise NotAllowed(reason)


async def _submission_target(
    learner_id: int, certification_id: int, completed_on: date | None, plugins: PluginHost
) -> tuple[CertificationRecord, EnrollmentRecord | None]:
    """The certification and the learner's enrollment (None: to be created), or why not."""
    cert, enrollment = await enrollment_of(learner_id, certification_id)
    if cert is None or not open_to_learner(cert.state, enrollment is not None):
        raise NotFound("no such certification", field=["certificationId"])
    if cert.kind != CertificationKind.EXTERNAL:
        raise NotAllowed(
            "proof is submitted for EXTERNAL certifications only; this one is earned by "
            "completing its courses",
            field=["certificationId"],
        )
    view = await _view(learner_id, cert, enrollment, plugins)
    _check_status(view)
    _check_completed_on(cert, view, completed_on)
    _check_policy(cert, view, plugins)
    return cert, enrollment


async def submit_evidence(
    actor: Actor,
    certification_id: int,
    upload: ByteSource,
    *,
    blobs: BlobStore,
    filename: str | None,
    completed_on: date | None = None,
    note: str | None = None,
    declared_type: str | None = None,
    plugins: PluginHost | None = None,
) -> EvidenceRecord:
    """Submit proof for the actor's own enrollment in an EXTERNAL certification.

    `declared_type` is the content type the client sent with the file (checked against the
    bytes, never trusted). Refusals: NOT_FOUND, NOT_ALLOWED, INVALID_INPUT, FILE_TOO_LARGE,
    UNSUPPORTED_FILE_TYPE, UPLOAD_REFUSED; each leaves no file, row or enrollment behind.
    """
    if actor.user_id is None:
        raise InvalidInput("only a user can submit evidence")
    learner_id = actor.user_id
    note = _clean_text(note, "note", MAX_NOTE_CHARS)
    # Refuse before reading a byte of the file when the rules already say no.
    host = plugins or get_plugin_host()
    await _submission_target(learner_id, certification_id, completed_on, host)
    async with received_upload(
        blobs,
        upload,
        Purpose.EVIDENCE,
        filename=filename,
        declared_type=declared_type,
        uploader_id=learner_id,
        plugins=host,
    ) as staged:
        return await retrying(
            lambda: _record_submission(
                actor, learner_id, certification_id, staged, completed_on, note, host
            )
        )


async def _record_submission(
    actor: Actor,
    learner_id: int,
    certification_id: int,
    staged: StagedUpload,
    completed_on: date | None,
    note: str | None,
    plugins: PluginHost,
) -> EvidenceRecord:
    async with unit_of_work(actor, plugins) as unit:
        await lock_learners([learner_id])
        cert, enrollment = await _submission_target(
            learner_id, certification_id, completed_on, plugins
        )
        enrollment = await enrol_and_start(learner_id, cert, enrollment, unit)
        stored = await staged.keep()
        evidence = await Evidence.create(
            enrollment_id=enrollment.id,
            sha256=stored.sha256,
            filename=stored.filename,
            content_type=stored.content_type,
            size_bytes=stored.size_bytes,
            status=EvidenceStatus.PENDING,
            submitted_at=unit.now,
            completed_on=completed_on,
            note=note,
        )
        await unit.audit("submitEvidence", "Evidence", evidence.id, after=_snapshot(evidence))
        unit.emit(
            EvidenceSubmitted,
            learner_id=learner_id,
            certification=cert,
            enrollment_id=enrollment.id,
            evidence_id=evidence.id,
            due_at=enrollment.due_at,
            completed_on=completed_on,
        )
        await evaluate_enrollments([enrollment], unit)
        return record_of(EvidenceRecord, evidence)


def _snapshot(evidence: Evidence) -> dict[str, Any]:
    return {
        "enrollmentId": evidence.enrollment_id,
        "status": str(evidence.status),
        "sha256": evidence.sha256,
        "contentType": evidence.content_type,
        "sizeBytes": evidence.size_bytes,
        "completedOn": evidence.completed_on.isoformat() if evidence.completed_on else None,
    }


# -- reviewing ----------------------------------------------------------------------------


async def _check_reviewer(actor: Actor, evidence_id: int) -> None:
    """Refuse (and audit) a reviewer who may not review this evidence, before any write."""
    found = await reads.evidence_with_learner(evidence_id)
    if found is None:
        raise NotFound("no such evidence", field=["evidenceId"])
    evidence, learner = found
    if not may_see_learner(actor, learner):
        await note_hidden(actor, "reviewEvidence", "Evidence", evidence_id)
        raise NotFound("no such evidence", field=["evidenceId"])
    if not may_review(actor, learner):
        await audit_refusal(
            actor.user_id, "reviewEvidence", "Evidence", evidence_id, "own evidence"
        )
        raise NotAllowed("nobody reviews their own evidence", field=["evidenceId"])
    if evidence.status != EvidenceStatus.PENDING:
        raise NotAllowed(
            f"this evidence was already reviewed ({evidence.status.value})",
            field=["evidenceId"],
        )


async def review_evidence(
    actor: Actor,
    evidence_id: int,
    decision: ReviewDecision,
    comment: str | None = None,
    *,
    plugins: PluginHost | None = None,
) -> EvidenceRecord:
    """Approve or reject PENDING evidence, once; approval re-evaluates (and may award).

    A manager reviews their direct reports' evidence, an admin anyone's, nobody their own
    (NOT_ALLOWED). Evidence the actor may not see is NOT_FOUND. A second review, also one
    racing the first, is NOT_ALLOWED.
    """
    decision = ReviewDecision(decision)
    comment = _clean_text(comment, "comment", MAX_COMMENT_CHARS)
    await _check_reviewer(actor, evidence_id)
    new_status = (
        EvidenceStatus.APPROVED if decision == ReviewDecision.APPROVE else EvidenceStatus.REJECTED
    )

    async def run() -> EvidenceRecord:
        async with unit_of_work(actor, plugins) as unit:
            found = await reads.evidence_with_learner(evidence_id)
            if found is None:
                raise NotFound("no such evidence", field=["evidenceId"])
            evidence, learner = found
            if not may_review(actor, learner):
                raise NotFound("no such evidence", field=["evidenceId"])
            await lock_learners([learner.id])
            # compare-and-set: of two racing reviews exactly one changes the row
            changed = await Evidence.filter(id=evidence_id, status=EvidenceStatus.PENDING).update(
                status=new_status,
                reviewed_by_id=actor.user_id,
                reviewed_at=unit.now,
                review_comment=comment,
            )
            if not changed:
                raise NotAllowed("this evidence was already reviewed", field=["evidenceId"])
            reviewed = replace(
                evidence,
                status=new_status,
                reviewed_by_id=actor.user_id,
                reviewed_at=unit.now,
                review_comment=comment,
            )
            await unit.audit(
                "reviewEvidence",
                "Evidence",
                evidence_id,
                before={"status": EvidenceStatus.PENDING.value},
                after={"status": new_status.value, "comment": comment},
            )
            enrollments = await reads.enrollments(id=evidence.enrollment_id)
            unit.emit(
                EvidenceReviewed,
                learner_id=learner.id,
                certification=enrollments[0].certification,
                enrollment_id=evidence.enrollment_id,
                evidence_id=evidence_id,
                due_at=enrollments[0].due_at,
                decision=decision.value,
                comment=comment,
                people={"reviewer": actor.user_id},
            )
            await evaluate_enrollments(enrollments, unit)
            return reviewed

    return await retrying(run)
