"""Who, not just how many (docs/api.md, "Admin lists"): `Query.enrollments(filter:)`, the
`EnrollmentFilter` input (the enrollment export takes it too), and `filter_pk`, which turns
a filter's ID argument into a key or refuses it.

A lookup answers null for an ID that is not one of its type; a filter refuses it
(INVALID_INPUT naming the field), since a filter that silently matched nothing would read as
an empty team. A well-formed ID of nothing, or of someone the viewer may not see, selects
nothing, exactly as a missing one does.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

import strawberry

from gql.api.connections import Connection, connection_field
from gql.api.context import Info
from gql.api.enums import EnrollmentStatus
from gql.api.ids import ID_SOURCES, SHOWN_CHARS, decode_any, decode_id
from gql.api.types import Enrollment, enrollment_connection
from gql.domain import enrollment_search
from gql.domain.errors import InvalidInput
from gql.domain.pages import FIRST_PAGE, PageRequest


def _named(type_name: str) -> str:
    article = "an" if type_name in ("Enrollment", "Evidence", "ApiToken") else "a"
    return f"{article} {type_name} ID"


def filter_pk(value: str | None, type_name: str, field: Sequence[str]) -> int | None:
    """The pk of a filter's ID argument of `type_name` (None when not given); INVALID_INPUT
    naming `field` when it is not an ID of that type, saying what it is and where IDs come
    from."""
    if value is None:
        return None
    pk = decode_id(value, type_name)
    if pk is not None:
        return pk
    shown = value if len(value) <= SHOWN_CHARS else value[:SHOWN_CHARS] + "…"
    decoded = decode_any(value)
    what = (
        f"is {_named(decoded[0])}, not {_named(type_name)}"
        if decoded is not None
        else f"is not {_named(type_name)}"
    )
    raise InvalidInput(
        f"{'.'.join(field)}: {json.dumps(shown, ensure_ascii=False)} {what} (IDs are opaque "
        f"strings from an object's `id` field, e.g. `{ID_SOURCES[type_name]}`)",
        field=field,
    )


@strawberry.input(
    description=(
        "Which enrollments: every condition given must hold. Learners see their own, managers "
        "their own and their direct reports', admins everyone's."
    )
)
class EnrollmentFilter:
    certification_id: strawberry.ID | None = None
    learner_id: strawberry.ID | None = None
    manager_id: strawberry.ID | None = strawberry.field(
        default=None, description="The learner's manager: that manager's direct reports."
    )
    status: list[EnrollmentStatus] | None = strawberry.field(
        default=None,
        description="Any of these statuses (as certificationReport counts them); not empty.",
    )
    overdue: bool | None = strawberry.field(
        default=None,
        description="true: past dueAt and not COMPLETED; false: every other enrollment.",
    )
    due_before: datetime | None = strawberry.field(
        default=None, description="dueAt < dueBefore (enrollments without a dueAt are left out)."
    )
    due_after: datetime | None = strawberry.field(
        default=None, description="dueAt >= dueAfter (enrollments without a dueAt are left out)."
    )
    include_ended: bool = strawberry.field(
        default=False,
        description="Also ended (unassigned) enrollments, which are left out by default.",
    )
    learner_active: bool | None = strawberry.field(
        default=True,
        description=(
            "true (default): active learners' enrollments only; false: only deactivated "
            "learners'; null: both."
        ),
    )

    def to_domain(self, field: Sequence[str] = ("filter",)) -> enrollment_search.EnrollmentFilter:
        """The domain's filter; INVALID_INPUT (field under `field`) for an ID of another type."""
        path = list(field)
        return enrollment_search.EnrollmentFilter(
            certification_id=filter_pk(
                self.certification_id, "Certification", [*path, "certificationId"]
            ),
            learner_id=filter_pk(self.learner_id, "User", [*path, "learnerId"]),
            manager_id=filter_pk(self.manager_id, "User", [*path, "managerId"]),
            status=None if self.status is None else tuple(self.status),
            overdue=self.overdue,
            due_before=self.due_before,
            due_after=self.due_after,
            include_ended=self.include_ended,
            learner_active=self.learner_active,
        )


@strawberry.type
class AdminQuery:
    @connection_field(
        "Enrollments the viewer may see that `filter` selects, oldest enrollment first: "
        "learners their own, managers their own and their direct reports', admins everyone's. "
        "Ended enrollments and deactivated learners' are left out unless the filter asks."
    )
    async def enrollments(
        self,
        info: Info,
        filter: EnrollmentFilter | None = None,
        paging: PageRequest = FIRST_PAGE,
    ) -> Connection[Enrollment]:
        ctx = info.context
        page = await enrollment_search.search_enrollments(
            ctx.viewer, filter.to_domain() if filter is not None else None, paging=paging
        )
        return await enrollment_connection(page, info)
