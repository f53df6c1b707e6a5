"""Building blocks for the domain tests: everything is made through the domain functions.

Rows are only written directly where the use case does not exist yet (evidence), and each
such place says so.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

from gql import clock
from gql.domain import certifications, courses, enrollments, users
from gql.domain.access import Actor
from gql.domain.errors import DomainError
from gql.domain.pages import Page
from gql.domain.records import CertificationRecord, CourseRecord
from gql.domain.status import EnrollmentView, describe_enrollments
from gql.store import reads
from gql.store.models import (
    CertificationKind,
    CertificationType,
    Enrollment,
    Evidence,
    EvidenceStatus,
    Role,
)

CourseSpec = CourseRecord | tuple[CourseRecord, bool]


def field_of(error: DomainError) -> str | None:
    """The offending input field in snake_case, whatever wrapper path the domain puts first."""
    if not error.field:
        return None
    return re.sub(r"(?<!^)(?=[A-Z])", "_", error.field[-1]).lower()


async def collect_ids(fetch: Callable[[str | None], Awaitable[Page[Any]]]) -> list[int]:
    """Walk a list page by page (the caller fixes the page size) and return the item IDs."""
    seen: list[int] = []
    after: str | None = None
    for _ in range(100):
        page = await fetch(after)
        assert len(page.cursors) == len(page.items)
        seen.extend(item.id for item in page.items)
        if not page.has_next_page:
            return seen
        assert page.items, "a page with has_next_page must not be empty"
        after = page.cursors[-1]
    raise AssertionError("pagination did not end within 100 pages")


class Factory:
    """Makes users, courses and certifications through the admin use cases."""

    def __init__(self) -> None:
        self._seq = itertools.count(1)
        self._admin: Actor | None = None

    def _next(self) -> int:
        return next(self._seq)

    async def user(
        self, role: Role = Role.LEARNER, *, name: str | None = None, manager: Actor | None = None
    ) -> Actor:
        n = self._next()
        user = await users.create_user(
            Actor.system(),
            name=name or f"{role.value.title()} {n}",
            email=f"{role.value.lower()}{n}@example.com",
            role=role,
            manager_id=None if manager is None else manager.user_id,
        )
        return Actor.of(user)

    async def admin(self) -> Actor:
        """One admin user per test (an actor with a user id, so audit rows name it)."""
        if self._admin is None:
            self._admin = await self.user(Role.ADMIN)
        return self._admin

    async def learner(self, manager: Actor | None = None) -> Actor:
        return await self.user(Role.LEARNER, manager=manager)

    async def course(
        self, name: str | None = None, *, duration_minutes: int | None = None
    ) -> CourseRecord:
        return await courses.create_course(
            await self.admin(),
            name=name or f"Course {self._next():03d}",
            duration_minutes=duration_minutes,
        )

    async def certification(
        self,
        *links: CourseSpec,
        name: str | None = None,
        kind: CertificationKind = CertificationKind.INTERNAL,
        type: CertificationType = CertificationType.PERPETUAL,
        validity_months: int | None = None,
        recertification_window_days: int | None = None,
        days_to_complete: int | None = None,
        policy: str | None = None,
        policy_config: dict[str, Any] | None = None,
        issuer: str | None = None,
        publish: bool = True,
    ) -> CertificationRecord:
        """A certification over `links` (a bare course is mandatory), published unless told."""
        admin = await self.admin()
        cert = await certifications.create_certification(
            admin,
            certifications.CertificationData(
                name=name or f"Certification {self._next():03d}",
                kind=kind,
                type=type,
                validity_months=validity_months,
                recertification_window_days=recertification_window_days,
                days_to_complete=days_to_complete,
                policy=policy,
                policy_config=policy_config,
                issuer=issuer or ("Example Board" if kind == CertificationKind.EXTERNAL else None),
            ),
        )
        if links:
            await certifications.set_certification_courses(
                admin, cert.id, [_link(spec) for spec in links]
            )
        if publish:
            cert = await certifications.publish_certification(admin, cert.id)
        return cert

    async def assign(
        self, cert: CertificationRecord, learner: Actor, due_at: datetime | None = None
    ) -> Enrollment:
        assert learner.user_id is not None
        rows = await enrollments.assign_certification(
            await self.admin(), cert.id, [learner.user_id], due_at
        )
        assert len(rows) == 1
        return rows[0]

    async def progress(
        self, learner: Actor, course: CourseRecord, percent: int
    ) -> enrollments.ProgressRecorded:
        return await enrollments.record_course_progress(
            learner, course_id=course.id, percent=percent
        )

    async def complete(
        self, learner: Actor, course: CourseRecord, *, at: datetime | None = None
    ) -> enrollments.ProgressRecorded:
        """The learner completes a course now; with `at`, an admin records it back-dated."""
        if at is None:
            return await enrollments.record_course_progress(
                learner, course_id=course.id, completed=True
            )
        return await enrollments.record_course_progress(
            await self.admin(),
            course_id=course.id,
            learner_id=learner.user_id,
            completed=True,
            completed_at=at,
        )

    async def view(self, enrollment: Enrollment | int) -> EnrollmentView:
        """The read model of one enrollment, read afresh from the database."""
        enrollment_id = enrollment if isinstance(enrollment, int) else enrollment.id
        return (await describe_enrollments(await reads.enrollments(id=enrollment_id)))[
            enrollment_id
        ]

    async def evidence(
        self,
        enrollment: Enrollment,
        status: EvidenceStatus,
        *,
        submitted_at: datetime | None = None,
        reviewed_at: datetime | None = None,
        reevaluate: bool = True,
    ) -> Evidence:
        """A submission row written directly (the submit use case is not part of these tests),
        then, unless told, the certification's enrollments re-evaluated through an admin use
        case (setting the same courses again), the way a submission or review would."""
        at = submitted_at or clock.now()
        row = await Evidence.create(
            enrollment_id=enrollment.id,
            sha256="0" * 64,
            filename="proof.pdf",
            content_type="application/pdf",
            size_bytes=1,
            status=status,
            submitted_at=at,
            reviewed_at=reviewed_at if status != EvidenceStatus.PENDING else None,
        )
        if not reevaluate:
            return row
        cert_id: int = enrollment.certification_id  # type: ignore[attr-defined]
        links = (await certifications.course_links([cert_id])).get(cert_id, [])
        await certifications.set_certification_courses(
            await self.admin(),
            cert_id,
            [
                certifications.CourseLink(course_id=link.course_id, mandatory=link.mandatory)  # type: ignore[attr-defined]
                for link in links
            ],
        )
        return row

    async def enrollment_of(self, learner: Actor, cert: CertificationRecord) -> Enrollment:
        return await Enrollment.get(learner_id=learner.user_id, certification_id=cert.id)


def _link(spec: CourseSpec) -> certifications.CourseLink:
    if isinstance(spec, tuple):
        course, mandatory = spec
        return certifications.CourseLink(course_id=course.id, mandatory=mandatory)
    return certifications.CourseLink(course_id=spec.id, mandatory=True)


def ids(rows: Sequence[Any]) -> list[int]:
    return [row.id for row in rows]
