"""The `viewerCan` flags of certifications, enrollments and evidence, and a certification's
evidence requirements: each flag a resolver over what the page already holds or a DataLoader,
decided by the predicates of gql.domain.access that the mutations refuse with."""

from __future__ import annotations

import strawberry

from gql.api.context import Info
from gql.api.fields import described
from gql.domain import access, evidence
from gql.domain.records import CertificationRecord, EnrollmentRecord, EvidenceRecord
from gql.domain.status import EnrollmentView


@strawberry.type(
    description=(
        "What the viewer may do with this certification now: each flag is true exactly when "
        "the mutation it names would be taken (given valid input), false when it would be "
        "refused."
    )
)
class CertificationCapabilities:
    record: strawberry.Private[CertificationRecord]

    @described(
        "startCertification for oneself: a PUBLISHED certification, or one the viewer is "
        "enrolled in (an ended enrollment reopens in a PUBLISHED one only)."
    )
    async def start(self, info: Info) -> bool:
        own = await info.context.loaders.viewer_any_enrollments.load(self.record.id)
        return access.may_start(info.context.viewer, self.record.state, own)

    @described(
        "submitEvidence for oneself now: an EXTERNAL certification whose rules take new proof "
        "(not while proof waits for review, not once COMPLETED until the recertification "
        "window opens, not while the policy refuses, e.g. mandatory courses first)."
    )
    async def submit_evidence(self, info: Info) -> bool:
        viewer, cert = info.context.viewer, self.record
        # cheap refusals first: most certifications of a catalog take no proof
        if viewer.user_id is None or not access.takes_evidence(cert):
            return False
        loaders = info.context.loaders
        own = await loaders.viewer_any_enrollments.load(cert.id)
        if own is not None:
            view = await loaders.view_of(own)
        elif not access.may_enrol(cert.state, None):
            return False
        else:
            view = await _draft_view(info, viewer.user_id, cert)
        return access.may_submit_evidence(
            viewer, viewer.user_id, cert, own, view, info.context.plugins
        )

    @described("updateCertification and setCertificationCourses (admins, any state).")
    def edit(self, info: Info) -> bool:
        return access.may_manage_certifications(info.context.viewer)

    @described(
        "publishCertification: admins, a DRAFT certification (an INTERNAL one with courses)."
    )
    async def publish(self, info: Info) -> bool:
        viewer = info.context.viewer
        if not viewer.is_admin:
            return False
        links = await info.context.loaders.course_links.load(self.record.id)
        return access.may_publish(viewer, self.record, bool(links))

    @described("retireCertification: admins, a PUBLISHED certification.")
    def retire(self, info: Info) -> bool:
        return access.may_retire(info.context.viewer, self.record)

    @described(
        "assignCertification: admins, a PUBLISHED certification (each learner named may "
        "still be refused: unknown, deactivated)."
    )
    def assign(self, info: Info) -> bool:
        return access.may_assign(info.context.viewer, self.record)

    @described("unassignCertification (admins).")
    def unassign(self, info: Info) -> bool:
        return access.may_manage_certifications(info.context.viewer)

    @described("uploadCertificationBadge (admins, any state).")
    def upload_badge(self, info: Info) -> bool:
        return access.may_manage_certifications(info.context.viewer)

    @described("certificationReport: managers (their team) and admins.")
    def view_report(self, info: Info) -> bool:
        return access.may_view_reports(info.context.viewer)


async def _draft_view(info: Info, learner_id: int, cert: CertificationRecord) -> EnrollmentView:
    """The viewer's enrollment as it would be, were they enrolled now: the certification's
    courses and the viewer's progress on them come through the request's loaders."""
    loaders = info.context.loaders
    links = await loaders.course_links.load(cert.id)
    found = await loaders.viewer_progress.load_many([link.course_id for link in links])
    progress = {row.course_id: row for row in found if row is not None}
    return evidence.draft_view(learner_id, cert, links, progress, info.context.plugins)


@strawberry.type(
    description=(
        "What the viewer may do with this enrollment now: each flag is true exactly when the "
        "mutation it names would be taken for it (given valid input)."
    )
)
class EnrollmentCapabilities:
    view: strawberry.Private[EnrollmentView]

    @property
    def _row(self) -> EnrollmentRecord:
        return self.view.enrollment

    @described(
        "startCertification: the viewer's own enrollment (an ended one reopens in a PUBLISHED "
        "certification only)."
    )
    def start(self, info: Info) -> bool:
        viewer = info.context.viewer
        if self._row.learner_id != viewer.user_id:
            return False
        return access.may_start(viewer, self.view.certification.state, self._row)

    @described(
        "recordCourseProgress on this enrollment's courses: one's own, anyone's for admins; "
        "false when the certification has no courses."
    )
    def record_progress(self, info: Info) -> bool:
        allowed = access.may_record_progress(info.context.viewer, self._row.learner_id)
        return allowed and bool(self.view.links)

    @described(
        "submitEvidence for it: the viewer's own enrollment in an EXTERNAL certification whose "
        "rules take new proof now (as Certification.viewerCan.submitEvidence)."
    )
    def submit_evidence(self, info: Info) -> bool:
        return access.may_submit_evidence(
            info.context.viewer,
            self._row.learner_id,
            self.view.certification,
            self._row,
            self.view,
            info.context.plugins,
        )

    @described(
        "unassignCertification for its learner (admins; ending an ended one changes nothing)."
    )
    def unassign(self, info: Info) -> bool:
        return access.may_manage_certifications(info.context.viewer)


@strawberry.type(
    description=(
        "What the viewer may do with this evidence now: each flag is true exactly when the "
        "mutation or download it names would be taken."
    )
)
class EvidenceCapabilities:
    row: strawberry.Private[EvidenceRecord]
    learner_id: strawberry.Private[int]

    @described(
        "reviewEvidence: PENDING evidence of a manager's direct report, or anyone's for an "
        "admin; never one's own."
    )
    async def review(self, info: Info) -> bool:
        learner = await info.context.loaders.users.load(self.learner_id)
        return learner is not None and access.may_review_evidence(
            info.context.viewer, learner, self.row.status
        )

    @described("Downloading the file through downloadUrl: whoever sees the evidence.")
    async def download(self, info: Info) -> bool:
        learner = await info.context.loaders.users.load(self.learner_id)
        return learner is not None and access.may_download_evidence(info.context.viewer, learner)


@strawberry.type(
    description=(
        "What submitEvidence checks of a submission, so a form can say it up front "
        "(docs/api.md, Capabilities)."
    )
)
class EvidenceRequirements:
    completion_date_required: bool = strawberry.field(
        description=(
            'completedOn must be given (the policy config\'s completionDate is "learner": the '
            "award is dated that day). It may never be in the future, nor before the "
            "recertification cycle began."
        )
    )
    max_bytes: int = strawberry.field(
        description="The largest file taken, in bytes (FILE_TOO_LARGE beyond)."
    )
    accepted_content_types: list[str] = strawberry.field(
        description=(
            "The types taken, decided by the file's bytes (UNSUPPORTED_FILE_TYPE otherwise)."
        )
    )
    max_note_length: int = strawberry.field(
        description="The longest note taken, in characters, once trimmed (INVALID_INPUT beyond)."
    )

    @classmethod
    def of(cls, cert: CertificationRecord, info: Info) -> EvidenceRequirements | None:
        # the blob store's limit is the one intake refuses beyond (CERTGRAPH_MAX_UPLOAD_BYTES)
        found = evidence.evidence_requirements(cert, info.context.blobs.max_bytes)
        if found is None:
            return None
        return cls(
            completion_date_required=found.completion_date_required,
            max_bytes=found.max_bytes,
            accepted_content_types=list(found.accepted_content_types),
            max_note_length=found.max_note_chars,
        )
