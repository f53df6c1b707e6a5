"""The file mutations: submitEvidence, reviewEvidence, uploadCertificationBadge and
importCourseProgress, each one call to its use case in gql.domain.

Files arrive as parts of a multipart request (the GraphQL multipart request spec). Strawberry
hands a resolver Starlette's `UploadFile`, whose bytes the domain reads in chunks (so the
resolvers taking one are async); the name and the content type the client sent go along as
metadata, never trusted (gql.files sniffs the bytes). As everywhere in the API, expected
failures are the payload's `errors` and access failures GraphQL errors.
"""

from __future__ import annotations

from datetime import date

import strawberry
from starlette.datastructures import UploadFile
from strawberry.file_uploads import Upload

from gql.api.context import Info
from gql.api.enums import ReviewDecision
from gql.api.errors import user_errors
from gql.api.fields import described_mutation
from gql.api.ids import pk_or_unknown
from gql.api.mutations import CertificationPayload, EvidencePayload, ImportPayload, ImportRowError
from gql.api.types import Certification, Enrollment, Evidence
from gql.domain import badges, evidence, imports
from gql.domain.errors import DomainError, InvalidInput
from gql.store import models


def _received_file(file: object) -> UploadFile:
    """The uploaded file; a variable sent as JSON instead of a file part is refused."""
    if not isinstance(file, UploadFile):
        raise InvalidInput(
            "file must be sent as a file part of a multipart request "
            "(GraphQL multipart request spec)",
            field=["file"],
        )
    return file


async def _evidence(info: Info, row: models.Evidence) -> Evidence:
    loaders = info.context.loaders
    enrollment_row = await loaders.enrollments.load(row.enrollment_id)
    if enrollment_row is None:  # the use case let the viewer act on it, so they may see it
        raise LookupError(f"enrollment {row.enrollment_id} of evidence {row.id} not visible")
    enrollment = Enrollment.of(await loaders.enrollment_views.load(enrollment_row))
    return Evidence.of(row, enrollment)


@strawberry.type
class FileMutations:
    @described_mutation(
        "Upload proof (PDF, PNG or JPEG) for the viewer's own enrollment in an EXTERNAL "
        "certification, enrolling them if needed. completedOn: the day they earned it."
    )
    async def submit_evidence(
        self,
        info: Info,
        certification_id: strawberry.ID,
        file: Upload,
        completed_on: date | None = None,
        note: str | None = None,
    ) -> EvidencePayload:
        ctx = info.context
        ctx.reset_loaders()
        try:
            upload = _received_file(file)
            row = await evidence.submit_evidence(
                ctx.viewer,
                pk_or_unknown(certification_id, "Certification"),
                upload,
                filename=upload.filename,
                completed_on=completed_on,
                note=note,
                declared_type=upload.content_type,
            )
        except DomainError as exc:
            return EvidencePayload(evidence=None, errors=user_errors(exc))
        return EvidencePayload(evidence=await _evidence(info, row), errors=[])

    @described_mutation(
        "Approve or reject PENDING evidence, once. Managers review their direct reports', "
        "admins anyone's; nobody their own."
    )
    async def review_evidence(
        self,
        info: Info,
        evidence_id: strawberry.ID,
        decision: ReviewDecision,
        comment: str | None = None,
    ) -> EvidencePayload:
        ctx = info.context
        ctx.reset_loaders()
        try:
            row = await evidence.review_evidence(
                ctx.viewer, pk_or_unknown(evidence_id, "Evidence"), decision, comment
            )
        except DomainError as exc:
            return EvidencePayload(evidence=None, errors=user_errors(exc))
        return EvidencePayload(evidence=await _evidence(info, row), errors=[])

    @described_mutation("Set or replace a certification's badge image (PNG or JPEG). Admins.")
    async def upload_certification_badge(
        self, info: Info, certification_id: strawberry.ID, file: Upload
    ) -> CertificationPayload:
        ctx = info.context
        ctx.reset_loaders()
        try:
            upload = _received_file(file)
            row = await badges.upload_certification_badge(
                ctx.viewer,
                pk_or_unknown(certification_id, "Certification"),
                upload,
                filename=upload.filename,
                declared_type=upload.content_type,
            )
        except DomainError as exc:
            return CertificationPayload(certification=None, errors=user_errors(exc))
        return CertificationPayload(certification=Certification.of(row), errors=[])

    @described_mutation(
        "CSV with header learner_email,course_id,percent,completed_at (course_id is the "
        "Course's ID). All rows or none, unless dryRun. Admins."
    )
    async def import_course_progress(
        self, info: Info, file: Upload, dry_run: bool = False
    ) -> ImportPayload:
        ctx = info.context
        ctx.reset_loaders()
        try:
            upload = _received_file(file)
            result = await imports.import_course_progress(
                ctx.viewer,
                upload,
                dry_run=dry_run,
                filename=upload.filename,
                declared_type=upload.content_type,
            )
        except DomainError as exc:
            return ImportPayload(
                imported=0, row_errors=[], row_error_count=0, errors=user_errors(exc)
            )
        return ImportPayload(
            imported=result.imported,
            row_errors=[ImportRowError(line=e.line, message=e.message) for e in result.row_errors],
            row_error_count=result.error_count,
            errors=[],
        )


__all__ = ["FileMutations"]
