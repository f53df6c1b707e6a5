"""External proof: submitting it, reviewing it, and the reads (one's own, the review queue).
The file is received and checked before the transaction opens and moved into storage right
before its row is written, so a refused submission leaves neither (domain.md "Evidence")."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, timedelta, tzinfo
from enum import StrEnum
from typing import Any

from gql import clock
from gql.domain.access import (
    Actor,
    completion_date_required,
    evidence_refusal,
    learner_scope,
    may_review,
    may_review_evidence,
    may_see_learner,
    note_hidden,
    open_to_learner,
    review_scope,
    submission_refusal,
    takes_evidence,
)
from gql.domain.enrollments import enrol_and_start, enrollment_of, new_enrollment
from gql.domain.errors import InvalidInput, NotAllowed, NotFound, t
from gql.domain.evaluation import evaluate_enrollments, lock_learners
from gql.domain.pages import FIRST_PAGE, OrmKey, Page, PageRequest, orm_page
from gql.domain.status import (
    EnrollmentView,
    course_links,
    derive_view,
    load_context,
)
from gql.domain.unit import audit_refusal, unit_of_work
from gql.domain.uploads import received_upload
from gql.events import EvidenceReviewed, EvidenceSubmitted
from gql.files import BlobStore, ByteSource, Purpose, StagedUpload
from gql.files.intake import ACCEPTED_TYPES
from gql.plugins import PluginHost, get_plugin_host
from gql.store import reads
from gql.store.db import retrying
from gql.store.models import Evidence
from gql.store.records import (
    EVIDENCE_COLUMNS,
    CertificationRecord,
    CourseLinkRecord,
    EnrollmentRecord,
    EvidenceRecord,
    ProgressRecord,
    record_of,
)
from gql.vocabulary import EnrollmentOrigin, EvidenceStatus

MAX_NOTE_CHARS = 2000
MAX_COMMENT_CHARS = 2000


class ReviewDecision(StrEnum):
    APPROVE = "APPROVE"
    REJECT = "REJECT"


# -- reads --------------------------------------------------------------------------------


async def list_review_queue(
    actor: Actor,
    *,
    certification_id: int | None = None,
    learner_id: int | None = None,
    paging: PageRequest = FIRST_PAGE,
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
        paging=paging,
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
        raise InvalidInput(
            t("{name} must be at most {limit} characters", name=name, limit=limit), field=[name]
        )
    return value or None


def draft_view(
    learner_id: int,
    cert: CertificationRecord,
    links: list[CourseLinkRecord],
    progress: dict[int, ProgressRecord],
    plugins: PluginHost,
) -> EnrollmentView:
    """A learner's enrollment as it would be, were they enrolled now (`progress` by course)."""
    now = clock.now()
    draft = new_enrollment(learner_id, cert, EnrollmentOrigin.SELF, now, None, None)
    return derive_view(draft, cert, links, progress, [], [], now, plugins)


async def _view(
    learner_id: int,
    cert: CertificationRecord,
    enrollment: EnrollmentRecord | None,
    plugins: PluginHost | None = None,
) -> EnrollmentView:
    """The enrollment as the rules see it now; for a learner not yet enrolled, as it would be."""
    if enrollment is not None:
        context = await load_context([enrollment], plugins)
        return context.view(enrollment, clock.now())
    links = (await course_links([cert.id])).get(cert.id, [])
    progress = {
        row.course_id: row
        for row in await reads.course_progress([learner_id], [link.course_id for link in links])
    }
    return draft_view(learner_id, cert, links, progress, plugins or get_plugin_host())


@dataclass(frozen=True, slots=True)
class EvidenceRequirements:
    """What submitEvidence checks of a submission, for a form to say up front."""

    completion_date_required: bool
    max_bytes: int
    accepted_content_types: tuple[str, ...]
    max_note_chars: int


def evidence_requirements(cert: CertificationRecord, max_bytes: int) -> EvidenceRequirements | None:
    """The requirements of a certification's proof (None: it takes none); `max_bytes` is the
    blob store's limit, which the upload is refused beyond."""
    if not takes_evidence(cert):
        return None
    return EvidenceRequirements(
        completion_date_required=completion_date_required(cert),
        max_bytes=max_bytes,
        accepted_content_types=ACCEPTED_TYPES[Purpose.EVIDENCE],
        max_note_chars=MAX_NOTE_CHARS,
    )


def _check_completed_on(
    cert: CertificationRecord, view: EnrollmentView, completed_on: date | None
) -> None:
    if completed_on is None:
        if completion_date_required(cert):
            raise InvalidInput(
                t("completedOn is required: this certification is dated by the day you earned it"),
                field=["completedOn"],
            )
        return
    # A calendar date has no zone: refuse only what is in the future everywhere (UTC+14).
    if completed_on > (clock.now().astimezone(UTC) + timedelta(hours=14)).date():
        raise InvalidInput(t("completedOn must not be in the future"), field=["completedOn"])
    started = view.cycle_started_at
    if started is not None and completed_on < started.astimezone(UTC).date():
        raise InvalidInput(
            t(
                "completedOn must not be before this cycle began ({started})",
                started=started.date().isoformat(),
            ),
            field=["completedOn"],
        )


async def _submission_target(
    learner_id: int, certification_id: int, completed_on: date | None, plugins: PluginHost
) -> tuple[CertificationRecord, EnrollmentRecord | None]:
    """The certification and the learner's enrollment (None: to be created), or why not."""
    cert, enrollment = await enrollment_of(learner_id, certification_id)
    if cert is None or not open_to_learner(cert.state, enrollment is not None):
        raise NotFound(t("no such certification"), field=["certificationId"])
    refused = evidence_refusal(cert)  # before the enrollment's facts are read
    if refused is not None:
        raise refused
    view = await _view(learner_id, cert, enrollment, plugins)
    refused = submission_refusal(cert, enrollment, view, plugins)
    if refused is not None:
        raise refused
    _check_completed_on(cert, view, completed_on)
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
    time_zone: tzinfo = UTC,
) -> EvidenceRecord:
    """Submit proof for the actor's own enrollment in an EXTERNAL certification.

    `declared_type` is the content type the client sent with the file (checked against the
    bytes, never trusted). Refusals: NOT_FOUND, NOT_ALLOWED, INVALID_INPUT, FILE_TOO_LARGE,
    UNSUPPORTED_FILE_TYPE, UPLOAD_REFUSED; each leaves no file, row or enrollment behind.
    """
    if actor.user_id is None:
        raise InvalidInput(t("only a user can submit evidence"))
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
                actor, learner_id, certification_id, staged, completed_on, note, host, time_zone
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
    time_zone: tzinfo,
) -> EvidenceRecord:
    async with unit_of_work(actor, plugins, time_zone=time_zone) as unit:
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
        raise NotFound(t("no such evidence"), field=["evidenceId"])
    evidence, learner = found
    if not may_see_learner(actor, learner):
        await note_hidden(actor, "reviewEvidence", "Evidence", evidence_id)
        raise NotFound(t("no such evidence"), field=["evidenceId"])
    if not may_review(actor, learner):
        await audit_refusal(
            actor.user_id, "reviewEvidence", "Evidence", evidence_id, "own evidence"
        )
        raise NotAllowed(t("nobody reviews their own evidence"), field=["evidenceId"])
    if not may_review_evidence(actor, learner, evidence.status):
        raise NotAllowed(
            t("this evidence was already reviewed ({value})", value=evidence.status.value),
            field=["evidenceId"],
        )


async def review_evidence(
    actor: Actor,
    evidence_id: int,
    decision: ReviewDecision,
    comment: str | None = None,
    *,
    plugins: PluginHost | None = None,
    time_zone: tzinfo = UTC,
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
        async with unit_of_work(actor, plugins, time_zone=time_zone) as unit:
            found = await reads.evidence_with_learner(evidence_id)
            if found is None:
                raise NotFound(t("no such evidence"), field=["evidenceId"])
            evidence, learner = found
            if not may_review(actor, learner):
                raise NotFound(t("no such evidence"), field=["evidenceId"])
            await lock_learners([learner.id])
            # compare-and-set: of two racing reviews exactly one changes the row
            changed = await Evidence.filter(id=evidence_id, status=EvidenceStatus.PENDING).update(
                status=new_status,
                reviewed_by_id=actor.user_id,
                reviewed_at=unit.now,
                review_comment=comment,
            )
            if not changed:
                raise NotAllowed(t("this evidence was already reviewed"), field=["evidenceId"])
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
