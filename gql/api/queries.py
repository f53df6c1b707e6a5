"""The Query root. Lookups by ID go through the domain, which decides visibility (and audits
refusals): an object the viewer may not see reads as null, exactly like one that does not
exist, and so does a malformed ID or an ID of another type."""

from __future__ import annotations

from typing import Annotated

import strawberry

from gql.api.admin_queries import filter_pk
from gql.api.connections import Connection, connection_field
from gql.api.context import Info
from gql.api.enums import CertificationKind, CertificationSort, CertificationState, CourseSort, Role
from gql.api.fields import described
from gql.api.ids import decode_any, decode_id, encode_id, pk_or_unknown
from gql.api.tokens import api_token_node
from gql.api.types import (
    Certification,
    CertificationReport,
    CompletionPolicy,
    Course,
    Enrollment,
    Evidence,
    Node,
    User,
    evidence_connection,
)
from gql.api.webhooks import webhook_node
from gql.domain import certifications, courses, enrollments, evidence, pages, users
from gql.domain.pages import FIRST_PAGE, PageRequest


async def _user(info: Info, pk: int) -> User | None:
    row = await users.get_user(info.context.viewer, pk)
    return None if row is None else User.of(row)


async def _certification(info: Info, pk: int) -> Certification | None:
    row = await certifications.get_certification(info.context.viewer, pk)
    return None if row is None else Certification.of(row)


async def _course(info: Info, pk: int) -> Course | None:
    row = await courses.get_course(info.context.viewer, pk)
    return None if row is None else Course.of(row)


async def _enrollment(info: Info, pk: int) -> Enrollment | None:
    ctx = info.context
    row = await enrollments.get_enrollment(ctx.viewer, pk)
    if row is None:
        return None
    return Enrollment.of(await ctx.loaders.view_of(row))


async def _evidence(info: Info, pk: int) -> Node | None:
    ctx = info.context
    row = await evidence.get_evidence(ctx.viewer, pk)
    if row is None:
        return None
    enrollment_row = await enrollments.get_enrollment(ctx.viewer, row.enrollment_id)
    if enrollment_row is None:
        return None
    enrollment = Enrollment.of(await ctx.loaders.view_of(enrollment_row))
    return next((item for item in enrollment.evidence_objects() if item.pk == row.id), None)


@strawberry.type
class Query:
    @described("The authenticated user.")
    def viewer(self, info: Info) -> User:
        actor = info.context.viewer
        assert actor.user_id is not None  # API viewers are always users
        return User(
            id=strawberry.ID(encode_id("User", actor.user_id)),
            name=actor.name,
            email=actor.email,
            role=actor.role,
            active=True,  # a deactivated person's credentials are refused
            deactivated_at=None,
            pk=actor.user_id,
            manager_pk=actor.manager_id,
        )

    @described("Any object by its global ID; null when not found or not visible.")
    async def node(self, info: Info, id: strawberry.ID) -> Node | None:
        decoded = decode_any(id)
        if decoded is None:
            return None
        type_name, pk = decoded
        if type_name == "User":
            return await _user(info, pk)
        if type_name == "Certification":
            return await _certification(info, pk)
        if type_name == "Course":
            return await _course(info, pk)
        if type_name == "Enrollment":
            return await _enrollment(info, pk)
        if type_name == "Webhook":
            return await webhook_node(info, pk)
        if type_name == "ApiToken":
            return await api_token_node(info, pk)
        return await _evidence(info, pk)

    @strawberry.field
    async def user(self, info: Info, id: strawberry.ID) -> User | None:
        pk = decode_id(id, "User")
        return None if pk is None else await _user(info, pk)

    @connection_field()
    async def users(
        self,
        info: Info,
        role: Role | None = None,
        search: str | None = None,
        paging: PageRequest = FIRST_PAGE,
        manager_id: Annotated[
            strawberry.ID | None,
            strawberry.argument(description="Only this manager's direct reports."),
        ] = None,
        active: Annotated[
            bool | None,
            strawberry.argument(
                description=(
                    "true (default): active people only; false: only deactivated ones; null: both."
                )
            ),
        ] = True,
    ) -> Connection[User]:
        page = await users.list_users(
            info.context.viewer,
            role=role,
            search=search,
            manager_id=filter_pk(manager_id, "User", ["managerId"]),
            active=active,
            paging=paging,
        )
        return Connection.of(page, [User.of(row) for row in page.items])

    @strawberry.field
    async def certification(self, info: Info, id: strawberry.ID) -> Certification | None:
        pk = decode_id(id, "Certification")
        return None if pk is None else await _certification(info, pk)

    @connection_field("Learners see PUBLISHED ones; admins see every state.")
    async def certifications(
        self,
        info: Info,
        sort: CertificationSort = pages.CertificationSort.RELEVANCE,
        kind: CertificationKind | None = None,
        state: CertificationState | None = None,
        search: str | None = None,
        paging: PageRequest = FIRST_PAGE,
    ) -> Connection[Certification]:
        page = await certifications.list_certifications(
            info.context.viewer,
            sort=sort,
            kind=kind,
            state=state,
            search=search,
            paging=paging,
        )
        return Connection.of(page, [Certification.of(row) for row in page.items])

    @strawberry.field
    async def course(self, info: Info, id: strawberry.ID) -> Course | None:
        pk = decode_id(id, "Course")
        return None if pk is None else await _course(info, pk)

    @connection_field()
    async def courses(
        self,
        info: Info,
        sort: CourseSort = pages.CourseSort.NAME_ASC,
        search: str | None = None,
        paging: PageRequest = FIRST_PAGE,
        include_retired: Annotated[
            bool, strawberry.argument(description="List retired courses too (retireCourse).")
        ] = False,
    ) -> Connection[Course]:
        page = await courses.list_courses(
            info.context.viewer,
            sort=sort,
            search=search,
            include_retired=include_retired,
            paging=paging,
        )
        return Connection.of(page, [Course.of(row) for row in page.items])

    @connection_field(
        "PENDING evidence the viewer may review: a manager's direct reports', or all for an "
        "admin. Oldest first."
    )
    async def evidence_review_queue(
        self,
        info: Info,
        paging: PageRequest = FIRST_PAGE,
        certification_id: Annotated[
            strawberry.ID | None,
            strawberry.argument(description="Only evidence for this certification."),
        ] = None,
        learner_id: Annotated[
            strawberry.ID | None, strawberry.argument(description="Only this learner's evidence.")
        ] = None,
    ) -> Connection[Evidence]:
        ctx = info.context
        page = await evidence.list_review_queue(
            ctx.viewer,
            certification_id=filter_pk(certification_id, "Certification", ["certificationId"]),
            learner_id=filter_pk(learner_id, "User", ["learnerId"]),
            paging=paging,
        )
        return await evidence_connection(page)

    @described("Null when the certification is not found; FORBIDDEN for learners.")
    async def certification_report(
        self, info: Info, certification_id: strawberry.ID
    ) -> CertificationReport | None:
        pk = pk_or_unknown(certification_id, "Certification")
        report = await certifications.certification_report(info.context.viewer, pk)
        return None if report is None else CertificationReport.of(report)

    @described("The installed completion policies and the plugins providing them.")
    def completion_policies(self, info: Info) -> list[CompletionPolicy]:
        host = info.context.plugins
        return [CompletionPolicy.of(p) for _, p in sorted(host.policies.items())]
