"""The object types of the schema, built from the rows the domain hands over: leaf fields are
attributes filled when an object is built; relations go through the request's DataLoaders,
and the few computed fields (signed URLs, a report's expiring count) are resolvers."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry.scalars import JSON

from gql import i18n
from gql.api.capabilities import (
    CertificationCapabilities,
    EnrollmentCapabilities,
    EvidenceCapabilities,
    EvidenceRequirements,
)
from gql.api.connections import Connection, asks_for_nodes, connection_field
from gql.api.context import Info
from gql.api.enums import (
    CertificationKind,
    CertificationSort,
    CertificationState,
    CertificationType,
    EnrollmentStatus,
    EvidenceStatus,
    ProgressStatus,
    Role,
)
from gql.api.fields import described
from gql.api.ids import encode_id
from gql.api.loaders import EnrollmentList
from gql.domain import certifications, enrollment_search, pages
from gql.domain.pages import FIRST_PAGE, Page, PageRequest
from gql.domain.records import (
    CertificationRecord,
    CourseRecord,
    EnrollmentRecord,
    EvidenceRecord,
    ProgressRecord,
    UserRecord,
)
from gql.domain.status import CourseProgressView, EnrollmentView, progress_counts
from gql.domain.teams import ReportList
from gql.plugins import InstalledPolicy
from gql.signing import FileUrls
from gql.signing import SignedUrl as SignedUrlValue

if TYPE_CHECKING:
    from gql.api.tokens import ApiToken


@strawberry.interface(description="An object with a global ID (Relay).")
class Node:
    id: strawberry.ID


@strawberry.type
class User(Node):
    name: str
    email: str
    role: Role
    active: bool = strawberry.field(
        description="false once deactivated (deactivateUser): their credentials are refused."
    )
    deactivated_at: datetime | None = strawberry.field(
        description="When they were deactivated; null while active."
    )
    pk: strawberry.Private[int]
    manager_pk: strawberry.Private[int | None]

    @classmethod
    def of(cls, row: UserRecord) -> User:
        return cls(
            id=strawberry.ID(encode_id("User", row.id)),
            name=row.name,
            email=row.email,
            role=Role(row.role),
            active=row.deactivated_at is None,
            deactivated_at=row.deactivated_at,
            pk=row.id,
            manager_pk=row.manager_id,
        )

    @described(
        "The HR system's key (createUser, updateUser), null when none; unique among users. "
        "Not secret: whoever sees the user sees it."
    )
    async def external_id(self, info: Info) -> str | None:
        return await info.context.loaders.external_ids.load(("User", self.pk))

    @strawberry.field
    async def manager(self, info: Info) -> User | None:
        if self.manager_pk is None:
            return None
        row = await info.context.loaders.users.load(self.manager_pk)
        return None if row is None else User.of(row)

    @connection_field(
        "This user's certification enrollments. The viewer's own, a manager's direct "
        "report's, or anyone's for an admin."
    )
    async def certifications(
        self,
        info: Info,
        sort: CertificationSort = pages.CertificationSort.RELEVANCE,
        pending: bool = False,
        kind: CertificationKind | None = None,
        paging: PageRequest = FIRST_PAGE,
        status: Annotated[
            list[EnrollmentStatus] | None,
            strawberry.argument(description="Only these statuses (any of them); not empty."),
        ] = None,
        overdue: Annotated[
            bool | None,
            strawberry.argument(description="true: only overdue ones; false: only the others."),
        ] = None,
    ) -> Connection[Enrollment]:
        loaders = info.context.loaders
        page = await loaders.learner_enrollments.load(
            EnrollmentList(
                self.pk,
                sort,
                pending,
                kind,
                paging,
                status=None if status is None else tuple(status),
                overdue=overdue,
            )
        )
        return await enrollment_connection(page, info)

    @connection_field(
        "This user's direct reports, by name: those the viewer may see (all for an admin, "
        "a manager's own). Deactivated people only when asked: active true (default) leaves "
        "them out, false lists only them, null both."
    )
    async def reports(
        self,
        info: Info,
        active: bool | None = True,
        paging: PageRequest = FIRST_PAGE,
    ) -> Connection[User]:
        page = await info.context.loaders.reports.load(ReportList(self.pk, active, paging))
        return Connection.of(page, [User.of(row) for row in page.items])

    @connection_field(
        "This user's API tokens, newest first, never their secrets: the viewer's own, or "
        "anyone's for an admin (empty for anyone else). Revoked ones only with includeRevoked."
    )
    async def api_tokens(
        self,
        info: Info,
        include_revoked: bool = False,
        paging: PageRequest = FIRST_PAGE,
    ) -> Connection[Annotated[ApiToken, strawberry.lazy("gql.api.tokens")]]:
        from gql.api.tokens import api_token_connection  # it imports this module

        return await api_token_connection(
            info, self.pk, include_revoked=include_revoked, paging=paging
        )


def file_urls(info: Info) -> FileUrls:
    """Absolute signed file URLs on CERTGRAPH_PUBLIC_URL, else on the request's own origin."""
    context = info.context
    return FileUrls.for_request(context.signer, context.settings.public_url, context.request)


@strawberry.type(
    description=(
        "A signed URL of a file on this server (absolute): it needs no token and works until "
        "expiresAt, then answers 403."
    )
)
class SignedUrl:
    url: str
    expires_at: datetime = strawberry.field(description="When the signature expires.")

    @classmethod
    def of(cls, value: SignedUrlValue) -> SignedUrl:
        return cls(url=value.url, expires_at=value.expires_at)


@strawberry.type
class Badge:
    name: str
    certification_row: strawberry.Private[CertificationRecord]

    @described(
        "The signed, absolute URL of the badge image, null when there is none. It stays the "
        "same for a day or more, so browsers can cache the image. Also as `image`, with its "
        "expiry."
    )
    async def image_url(self, info: Info) -> str | None:
        image = await self._image(info)
        return None if image is None else image.url

    @described(
        "The badge image (shown inline, embeddable from other origins), null when there is "
        "none; the URL stays the same for a day or more, so browsers can cache the image."
    )
    async def image(self, info: Info) -> SignedUrl | None:
        image = await self._image(info)
        return None if image is None else SignedUrl.of(image)

    async def _image(self, info: Info) -> SignedUrlValue | None:
        row = self.certification_row
        return await file_urls(info).badge(row.id, row.badge_sha256)


@strawberry.type
class PolicyRef:
    name: str
    config: JSON


@strawberry.type
class Certification(Node):
    name: str
    overview: str
    kind: CertificationKind
    type_: CertificationType = strawberry.field(name="type")
    issuer: str
    validity_months: int | None
    recertification_window_days: int
    days_to_complete: int | None
    state: CertificationState
    published_at: datetime | None
    badge: Badge | None
    policy: PolicyRef
    pk: strawberry.Private[int]
    record: strawberry.Private[CertificationRecord]

    @classmethod
    def of(cls, row: CertificationRecord) -> Certification:
        badge = None
        if row.badge_name or row.badge_sha256:
            badge = Badge(name=row.badge_name or row.name, certification_row=row)
        return cls(
            id=strawberry.ID(encode_id("Certification", row.id)),
            name=row.name,
            overview=row.overview,
            kind=CertificationKind(row.kind),
            type_=CertificationType(row.type),
            issuer=row.issuer,
            validity_months=row.validity_months,
            recertification_window_days=row.recertification_window_days,
            days_to_complete=row.days_to_complete,
            state=CertificationState(row.state),
            published_at=row.published_at,
            badge=badge,
            policy=PolicyRef(name=row.policy_name, config=JSON(row.policy_config)),
            pk=row.id,
            record=row,
        )

    @strawberry.field
    async def courses(self, info: Info) -> list[CertificationCourse]:
        links = await info.context.loaders.course_links.load(self.pk)
        return [
            CertificationCourse(
                course=Course.of(link.course), mandatory=link.mandatory, position=link.position
            )
            for link in links
        ]

    @described(
        "The key another system knows it by (createCertification, updateCertification), "
        "null when none; unique among certifications."
    )
    async def external_id(self, info: Info) -> str | None:
        return await info.context.loaders.external_ids.load(("Certification", self.pk))

    @described("The viewer's own enrollment, null when the viewer is not enrolled.")
    async def viewer_enrollment(self, info: Info) -> Enrollment | None:
        loaders = info.context.loaders
        row = await loaders.viewer_enrollments.load(self.pk)
        if row is None:
            return None
        return Enrollment.of(await loaders.view_of(row))

    @described("What the viewer may do with this certification now (docs/api.md, Capabilities).")
    def viewer_can(self) -> CertificationCapabilities:
        return CertificationCapabilities(record=self.record)

    @described(
        "What submitEvidence checks of proof for it, for a form to say up front; null for a "
        "certification that takes no proof (INTERNAL)."
    )
    def evidence_requirements(self, info: Info) -> EvidenceRequirements | None:
        return EvidenceRequirements.of(self.record, info)


@strawberry.type
class CertificationCourse:
    course: Course
    mandatory: bool
    position: int


@strawberry.type
class Course(Node):
    name: str
    description: str
    duration_minutes: int | None
    published_at: datetime | None
    retired_at: datetime | None = strawberry.field(
        description="When it was retired (retireCourse): no new certifications take it. Null: not."
    )
    pk: strawberry.Private[int]
    record: strawberry.Private[CourseRecord]

    @classmethod
    def of(cls, row: CourseRecord) -> Course:
        return cls(
            id=strawberry.ID(encode_id("Course", row.id)),
            name=row.name,
            description=row.description,
            duration_minutes=row.duration_minutes,
            published_at=row.published_at,
            retired_at=row.retired_at,
            pk=row.id,
            record=row,
        )

    @described(
        "The key another system knows it by (createCourse, updateCourse), null when none; "
        "unique among courses."
    )
    async def external_id(self, info: Info) -> str | None:
        return await info.context.loaders.external_ids.load(("Course", self.pk))

    @described("The viewer's own progress on this course, null before any.")
    async def viewer_progress(self, info: Info) -> CourseProgress | None:
        row = await info.context.loaders.viewer_progress.load(self.pk)
        return None if row is None else CourseProgress.of_row(row, self)


def _course_of(root: CourseProgress) -> Course:
    course = root.course_objects.get(root.course_row.id)
    if course is None:
        course = root.course_objects[root.course_row.id] = Course.of(root.course_row)
    return course


@strawberry.type
class CourseProgress:
    """Leaf fields are filled when built; the course is built when asked for."""

    course: Course = strawberry.field(resolver=_course_of)
    status: ProgressStatus
    percent: int
    started_at: datetime | None
    completed_at: datetime | None = strawberry.field(description="The latest completion.")
    updated_at: datetime | None
    mandatory: bool | None = strawberry.field(
        description=(
            "Whether the certification marks this course mandatory; null outside a "
            "certification's lists (a course's viewerProgress, a progress report)."
        ),
        default=None,
    )
    course_row: strawberry.Private[CourseRecord]
    # The Course objects built so far, by course id: one per course, shared by the lists of
    # an enrollment (courses, pendingCourses) or given by the course asking (viewerProgress).
    course_objects: strawberry.Private[dict[int, Course]]

    @classmethod
    def of_row(cls, row: ProgressRecord, course: Course) -> CourseProgress:
        return cls(
            status=ProgressStatus(row.status),
            percent=row.percent,
            started_at=row.started_at,
            completed_at=row.completed_at,
            updated_at=row.updated_at,
            course_row=course.record,
            course_objects={course.pk: course},
        )

    @classmethod
    def of_view(cls, view: CourseProgressView, courses: dict[int, Course]) -> CourseProgress:
        return cls(
            status=view.status,
            percent=view.percent,
            started_at=view.started_at,
            completed_at=view.completed_at,
            updated_at=view.updated_at,
            mandatory=view.mandatory,
            course_row=view.course,
            course_objects=courses,
        )


@strawberry.type
class Award:
    cycle: int
    awarded_at: datetime
    expires_at: datetime | None
    earned_on: date = strawberry.field(
        description=(
            "The calendar day it was earned, the same in every time zone: the learner's "
            "completedOn when the award is dated by it, else awardedAt's day in the "
            "organisation's time zone."
        )
    )
    expires_on: date | None = strawberry.field(
        description="earnedOn + validityMonths (a renewal: the previous expiresOn + "
        "validityMonths); null = never."
    )


def _courses_of(root: Enrollment) -> list[CourseProgress]:
    return [CourseProgress.of_view(c, root.course_objects) for c in root.view.courses]


def _pending_courses_of(root: Enrollment) -> list[CourseProgress]:
    return [CourseProgress.of_view(c, root.course_objects) for c in root.view.pending_courses]


def _evidence_of(root: Enrollment) -> list[Evidence]:
    return root.evidence_objects()


def _explanation_of(root: Enrollment, info: Info) -> str:
    return i18n.render(root.view.explanation, info.context.language)


@strawberry.type(
    description=(
        "The counts behind progressPercent and explanation, for clients that word their own "
        "(docs/api.md, Languages): INTERNAL, the required courses (the mandatory ones, every "
        "course when none is) done in this cycle; EXTERNAL, the one accepted proof."
    )
)
class ProgressDetail:
    done: int
    required: int
    remaining: int


def _progress_detail_of(root: Enrollment) -> ProgressDetail:
    done, required = progress_counts(root.view)
    return ProgressDetail(done=done, required=required, remaining=required - done)


def _awards_of(root: Enrollment) -> list[Award]:
    return [
        Award(
            cycle=a.cycle,
            awarded_at=a.awarded_at,
            expires_at=a.expires_at,
            earned_on=a.earned_on,
            expires_on=a.expires_on,
        )
        for a in root.view.awards
    ]


def _certification_of(root: Enrollment) -> Certification:
    return Certification.of(root.view.certification)


@strawberry.type
class Enrollment(Node):
    """Leaf fields are filled when built; the certification and the lists are built from the
    view when asked for."""

    certification: Certification = strawberry.field(resolver=_certification_of)
    status: EnrollmentStatus
    progress_percent: int = strawberry.field(description="0..100, from the completion policy.")
    explanation: str = strawberry.field(
        resolver=_explanation_of,
        description=(
            "The policy's one-line reason, for people, in the request's language "
            "(Accept-Language; docs/api.md, Languages)."
        ),
    )
    progress_detail: ProgressDetail = strawberry.field(resolver=_progress_detail_of)
    cycle: int = strawberry.field(description="1, then +1 for each recertification cycle.")
    enrolled_at: datetime
    started_at: datetime | None
    due_at: datetime | None
    overdue: bool
    completed_at: datetime | None = strawberry.field(description="Of the award in force, if any.")
    expires_at: datetime | None = strawberry.field(
        description="Of the award in force; null = never (or no award in force)."
    )
    completed_on: date | None = strawberry.field(
        description="The earnedOn of the award in force (a calendar day), if any."
    )
    expires_on: date | None = strawberry.field(
        description="The expiresOn of the award in force; null = never (or none in force)."
    )
    ended_at: datetime | None = strawberry.field(
        description=(
            "When it was unassigned (unassignCertification): it is kept with its history but "
            "left out of lists and reports; assigning again reopens it. Null: not ended."
        )
    )
    pending_courses: list[CourseProgress] = strawberry.field(
        resolver=_pending_courses_of,
        description="Courses not yet done in this cycle, in the order the player offers them.",
    )
    courses: list[CourseProgress] = strawberry.field(
        resolver=_courses_of,
        description="Every course of the certification, in certification order.",
    )
    evidence: list[Evidence] = strawberry.field(resolver=_evidence_of)
    awards: list[Award] = strawberry.field(resolver=_awards_of)
    pk: strawberry.Private[int]
    learner_pk: strawberry.Private[int]
    view: strawberry.Private[EnrollmentView]
    # One Course object per course, shared by `courses` and `pendingCourses`.
    course_objects: strawberry.Private[dict[int, Course]]
    evidence_list: strawberry.Private[list[Evidence] | None] = None

    @classmethod
    def of(cls, view: EnrollmentView) -> Enrollment:
        row = view.enrollment
        return cls(
            id=strawberry.ID(encode_id("Enrollment", row.id)),
            status=view.status,
            progress_percent=view.progress_percent,
            cycle=view.cycle,
            enrolled_at=row.enrolled_at,
            started_at=row.started_at,
            due_at=row.due_at,
            overdue=view.overdue,
            completed_at=view.completed_at,
            expires_at=view.expires_at,
            completed_on=view.completed_on,
            expires_on=view.expires_on,
            ended_at=row.ended_at,
            pk=row.id,
            learner_pk=row.learner_id,
            view=view,
            course_objects={},
        )

    @described(
        "Whether the award in force was earned after its deadline: dueAt for a first award, "
        "the previous award's expiresAt (or a later dueAt) for a renewal. Null when not "
        "COMPLETED; false without a deadline."
    )
    def completed_late(self) -> bool | None:
        return enrollment_search.completed_late(self.view)

    @described("What the viewer may do with this enrollment now (docs/api.md, Capabilities).")
    def viewer_can(self) -> EnrollmentCapabilities:
        return EnrollmentCapabilities(view=self.view)

    def evidence_objects(self) -> list[Evidence]:
        if self.evidence_list is None:
            self.evidence_list = [Evidence.of(item, self) for item in self.view.evidence]
        return self.evidence_list

    @strawberry.field
    async def learner(self, info: Info) -> User:
        row = await info.context.loaders.users.load(self.learner_pk)
        if row is None:  # the domain showed us the enrollment, so its learner is visible
            raise LookupError(f"learner {self.learner_pk} of enrollment {self.pk} not visible")
        return User.of(row)


async def _enrollment_row_of(evidence: Evidence, info: Info) -> EnrollmentRecord:
    row = await info.context.loaders.enrollments.load(evidence.row.enrollment_id)
    if row is None:  # whoever was shown the evidence may see its enrollment
        enrollment_id = evidence.row.enrollment_id
        raise LookupError(f"enrollment {enrollment_id} of evidence {evidence.pk} not visible")
    return row


async def _enrollment_of_evidence(root: Evidence, info: Info) -> Enrollment:
    if root.parent is not None:
        return root.parent
    row = await _enrollment_row_of(root, info)
    return Enrollment.of(await info.context.loaders.view_of(row))


@strawberry.type
class Evidence(Node):
    """Built from its row; the enrollment is read when asked for, unless it was given."""

    enrollment: Enrollment = strawberry.field(resolver=_enrollment_of_evidence)
    filename: str = strawberry.field(description="Sanitised original name, metadata only.")
    content_type: str = strawberry.field(
        description="Sniffed from the bytes, not taken from the client."
    )
    size_bytes: int
    sha256: str
    status: EvidenceStatus
    submitted_at: datetime
    completed_on: date | None = strawberry.field(
        description="The date the learner states they earned it."
    )
    note: str | None
    reviewed_at: datetime | None
    review_comment: str | None
    pk: strawberry.Private[int]
    reviewer_pk: strawberry.Private[int | None]
    row: strawberry.Private[EvidenceRecord]
    # The enrollment when the evidence was reached from it (Enrollment.evidence).
    parent: strawberry.Private[Enrollment | None]

    @classmethod
    def of(cls, row: EvidenceRecord, parent: Enrollment | None = None) -> Evidence:
        return cls(
            id=strawberry.ID(encode_id("Evidence", row.id)),
            parent=parent,
            filename=row.filename,
            content_type=row.content_type,
            size_bytes=row.size_bytes,
            sha256=row.sha256,
            status=EvidenceStatus(row.status),
            submitted_at=row.submitted_at,
            completed_on=row.completed_on,
            note=row.note,
            reviewed_at=row.reviewed_at,
            review_comment=row.review_comment,
            pk=row.id,
            reviewer_pk=row.reviewed_by_id,
            row=row,
        )

    @described(
        "A short-lived signed, absolute URL that downloads the file as an attachment; it "
        "needs no token and expires after a few minutes: fetch a fresh one. Also as "
        "`download`, with its expiry."
    )
    async def download_url(self, info: Info) -> str:
        return (await file_urls(info).evidence(self.row.id, self.row.sha256)).url

    @described("Downloads the file as an attachment (a short-lived signed URL, no token needed).")
    async def download(self, info: Info) -> SignedUrl:
        return SignedUrl.of(await file_urls(info).evidence(self.row.id, self.row.sha256))

    @described(
        "Shows the file in a browser (inline, embeddable in an <iframe> or <img> of another "
        "origin, sandboxed); a short-lived signed URL like `download`. Null unless the sniffed "
        "type is a PDF or a PNG, JPEG, GIF or WebP image."
    )
    async def preview(self, info: Info) -> SignedUrl | None:
        row = self.row
        found = await file_urls(info).evidence_preview(row.id, row.sha256, row.content_type)
        return None if found is None else SignedUrl.of(found)

    @described("Null when not yet reviewed, or when the viewer may not see the reviewer.")
    async def reviewed_by(self, info: Info) -> User | None:
        if self.reviewer_pk is None:
            return None
        row = await info.context.loaders.users.load(self.reviewer_pk)
        return None if row is None else User.of(row)

    @described("What the viewer may do with this evidence now (docs/api.md, Capabilities).")
    async def viewer_can(self, info: Info) -> EvidenceCapabilities:
        if self.parent is not None:
            return EvidenceCapabilities(row=self.row, learner_id=self.parent.learner_pk)
        enrollment = await _enrollment_row_of(self, info)
        return EvidenceCapabilities(row=self.row, learner_id=enrollment.learner_id)


@strawberry.type
class CompletionPolicy:
    name: str
    description: str
    config_schema: JSON = strawberry.field(description="JSON Schema of the policy's config.")
    plugin: str = strawberry.field(
        description="The plugin (module or distribution) that provides it."
    )

    @classmethod
    def of(cls, installed: InstalledPolicy) -> CompletionPolicy:
        schema: dict[str, Any] = installed.config_schema()
        return cls(
            name=installed.name,
            description=installed.description,
            config_schema=JSON(schema),
            plugin=installed.plugin,
        )


@strawberry.type
class StatusCount:
    status: EnrollmentStatus
    count: int


async def enrollment_connection(page: Page[EnrollmentRecord], info: Info) -> Connection[Enrollment]:
    """The page's enrollments with their read model; neither when the document reads no node
    (a count, say)."""
    if not asks_for_nodes(info):
        return Connection.nodeless(page)
    views = await info.context.loaders.views_of(page.items)
    return Connection.of(page, [Enrollment.of(view) for view in views])


async def evidence_connection(page: Page[EvidenceRecord]) -> Connection[Evidence]:
    return Connection.of(page, [Evidence.of(item) for item in page.items])


@strawberry.type
class CertificationReport:
    certification: Certification
    enrolled: int
    by_status: list[StatusCount]
    overdue: int
    completion_rate: float = strawberry.field(description="completed / enrolled, 0 when none.")
    report: strawberry.Private[certifications.CertificationReport]

    @classmethod
    def of(cls, report: certifications.CertificationReport) -> CertificationReport:
        return cls(
            certification=Certification.of(report.certification),
            enrolled=report.enrolled,
            by_status=[StatusCount(status=s, count=n) for s, n in report.by_status.items()],
            overdue=report.overdue,
            completion_rate=report.completion_rate,
            report=report,
        )

    @described("Enrollments whose award in force expires within this many days.")
    async def expiring_within(self, days: int = 30) -> int:
        return await self.report.expiring_within(days)
