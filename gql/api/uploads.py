"""The file mutations (submitEvidence, reviewEvidence, uploadCertificationBadge,
importCourseProgress): multipart parts handed to their use case as streams, the client's
name and type as untrusted metadata (gql.files sniffs the bytes)."""

from __future__ import annotations

from datetime import date

import strawberry
from starlette.datastructures import UploadFile
from strawberry.file_uploads import Upload

from gql.api.context import Info
from gql.api.enums import ReviewDecision
from gql.api.fields import described_mutation
from gql.api.ids import course_pk_of_import, pk_or_unknown
from gql.api.mutations import (
    CertificationPayload,
    EvidencePayload,
    ImportPayload,
    ImportRowError,
    run_use_case,
)
from gql.api.types import Certification, Evidence
from gql.domain import badges, evidence, imports
from gql.domain.access import Actor
from gql.domain.errors import InvalidInput, t
from gql.domain.records import CertificationRecord, EvidenceRecord


def _received_file(file: object) -> UploadFile:
    """The uploaded file; a variable sent as JSON instead of a file part is refused."""
    if not isinstance(file, UploadFile):
        raise InvalidInput(
            t(
                "file must be sent as a file part of a multipart request "
                "(GraphQL multipart request spec)"
            ),
            field=["file"],
        )
    return file


async def _evidence_payload(info: Info, row: EvidenceRecord) -> EvidencePayload:
    # the use case let the viewer act on it, so they may see its enrollment when asked for
    return EvidencePayload(evidence=Evidence.of(row))


def _import_payload(result: imports.ImportResult) -> ImportPayload:
    return ImportPayload(
        imported=result.imported,
        row_errors=[ImportRowError(line=e.line, message=e.message) for e in result.row_errors],
        row_error_count=result.error_count,
    )


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
    ) -> EvidencePayload | None:
        async def submit(viewer: Actor) -> EvidenceRecord:
            upload = _received_file(file)
            return await evidence.submit_evidence(
                viewer,
                pk_or_unknown(certification_id, "Certification"),
                upload,
                blobs=info.context.blobs,
                filename=upload.filename,
                completed_on=completed_on,
                note=note,
                declared_type=upload.content_type,
                plugins=info.context.plugins,
                time_zone=info.context.settings.zone,
            )

        return await run_use_case(
            info, EvidencePayload, submit, lambda row: _evidence_payload(info, row)
        )

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
    ) -> EvidencePayload | None:
        return await run_use_case(
            info,
            EvidencePayload,
            lambda viewer: evidence.review_evidence(
                viewer,
                pk_or_unknown(evidence_id, "Evidence"),
                decision,
                comment,
                plugins=info.context.plugins,
                time_zone=info.context.settings.zone,
            ),
            lambda row: _evidence_payload(info, row),
        )

    @described_mutation("Set or replace a certification's badge image (PNG or JPEG). Admins.")
    async def upload_certification_badge(
        self, info: Info, certification_id: strawberry.ID, file: Upload
    ) -> CertificationPayload | None:
        async def upload_badge(viewer: Actor) -> CertificationRecord:
            upload = _received_file(file)
            return await badges.upload_certification_badge(
                viewer,
                pk_or_unknown(certification_id, "Certification"),
                upload,
                blobs=info.context.blobs,
                filename=upload.filename,
                declared_type=upload.content_type,
                plugins=info.context.plugins,
            )

        return await run_use_case(
            info,
            CertificationPayload,
            upload_badge,
            lambda row: CertificationPayload(certification=Certification.of(row)),
        )

    @described_mutation(
        "CSV with header learner_email,course_id,percent,completed_at (course_id is the "
        "Course's ID). All rows or none, unless dryRun. Admins."
    )
    async def import_course_progress(
        self, info: Info, file: Upload, dry_run: bool = False
    ) -> ImportPayload | None:
        async def import_rows(viewer: Actor) -> imports.ImportResult:
            upload = _received_file(file)
            return await imports.import_course_progress(
                viewer,
                upload,
                blobs=info.context.blobs,
                dry_run=dry_run,
                filename=upload.filename,
                declared_type=upload.content_type,
                course_id_of=course_pk_of_import,
                plugins=info.context.plugins,
                time_zone=info.context.settings.zone,
            )

        return await run_use_case(info, ImportPayload, import_rows, _import_payload)


__all__ = ["FileMutations"]
