"""Bulk and idempotent admin work through the API (docs/api.md, "Bulk calls" and "External
IDs and re-runs"): `createUsers` (up to 1,000 users, all or nothing, every row's problems at
its index), `reviewEvidenceBatch` (up to 200 reviews, each decided on its own), and the
lookups by externalId (`userByExternalId`, `courseByExternalId`, `certificationByExternalId`).
Each call is one request for the rate limit, whatever its length."""

from __future__ import annotations

from collections.abc import Sequence

import strawberry

from gql.api.context import Info
from gql.api.enums import ReviewDecision, Role
from gql.api.errors import UserError, user_errors
from gql.api.fields import described, described_mutation
from gql.api.ids import UNKNOWN_PK, UndecodedId, decode_id, explain_undecoded, pk_or_unknown
from gql.api.mutations import UserInput, run_use_case
from gql.api.types import Certification, Course, Evidence, User
from gql.domain import bulk, certifications, courses, users
from gql.domain.access import Actor
from gql.domain.external_ids import find_by_external_id
from gql.domain.records import UserRecord


@strawberry.type
class CreateUsersPayload:
    users: list[User] = strawberry.field(
        default_factory=list,
        description="The users created, in input order; empty when any row has an error.",
    )
    errors: list[UserError] = strawberry.field(
        default_factory=list,
        description=(
            'Every row\'s problems, in input order, each at its path ["input", "<index>", '
            '"<field>"]; CONFLICT errors carry the existing user\'s ID in existingId.'
        ),
    )


@strawberry.input(description="One review of reviewEvidenceBatch: as reviewEvidence takes it.")
class ReviewEvidenceInput:
    evidence_id: strawberry.ID
    decision: ReviewDecision
    comment: str | None = None


@strawberry.type(description="What became of one review of reviewEvidenceBatch.")
class ReviewResult:
    index: int = strawberry.field(description="Its position in the input list (from 0).")
    evidence_id: strawberry.ID = strawberry.field(description="As sent.")
    evidence: Evidence | None = strawberry.field(
        default=None, description="The evidence as reviewed; null when this review failed."
    )
    errors: list[UserError] = strawberry.field(
        default_factory=list,
        description='Why this review failed, at ["input", "<index>", "<field>"]; empty if done.',
    )


@strawberry.type
class ReviewEvidenceBatchPayload:
    results: list[ReviewResult] = strawberry.field(
        default_factory=list, description="One per review sent, in input order."
    )
    reviewed: int = strawberry.field(default=0, description="How many reviews were done.")
    errors: list[UserError] = strawberry.field(
        default_factory=list,
        description=(
            "Every refusal: of the whole call (too many reviews: nothing done), or of single "
            'reviews at ["input", "<index>", "<field>"] (the others are done).'
        ),
    )


def _new_user(row: UserInput, index: int) -> bulk.NewUser:
    manager = None
    if row.manager_id is not None:
        manager = pk_or_unknown(row.manager_id, "User", ["input", str(index), "managerId"])
    return bulk.NewUser(
        name=row.name,
        email=row.email,
        role=Role(row.role),
        manager_id=manager,
        external_id=row.external_id,
    )


def _created(rows: Sequence[UserRecord]) -> CreateUsersPayload:
    return CreateUsersPayload(users=[User.of(row) for row in rows])


@strawberry.type
class BulkMutations:
    @described_mutation(
        "Create up to 1,000 users in one call (admins), all or none: each row as createUser "
        "takes it. Every row's problems come back together, in input order, at "
        '["input", "<index>", "<field>"]: what createUser refuses, an email or externalId '
        "repeated within the call (INVALID_INPUT naming the earlier row), an email or "
        "externalId a user has already (CONFLICT, with that user's ID in existingId). One "
        "request for the rate limit."
    )
    async def create_users(self, info: Info, input: list[UserInput]) -> CreateUsersPayload | None:
        return await run_use_case(
            info,
            CreateUsersPayload,
            lambda viewer: bulk.create_users(
                viewer, [_new_user(row, i) for i, row in enumerate(input)]
            ),
            _created,
        )

    @described_mutation(
        "Approve or reject up to 200 pieces of PENDING evidence in one call, each exactly as "
        "reviewEvidence would (its rules, audit and evidence_reviewed event) and on its own: "
        "a review that is refused (already reviewed, not yours to review) leaves the others "
        "done. One request for the rate limit."
    )
    async def review_evidence_batch(
        self, info: Info, input: list[ReviewEvidenceInput]
    ) -> ReviewEvidenceBatchPayload | None:
        undecoded: dict[int, UndecodedId] = {}
        reviews = []
        for index, item in enumerate(input):
            pk = decode_id(item.evidence_id, "Evidence")
            if pk is None:
                field = ("input", str(index), "evidenceId")
                undecoded[index] = UndecodedId(item.evidence_id, "Evidence", field)
            reviews.append(
                bulk.Review(
                    evidence_id=UNKNOWN_PK if pk is None else pk,
                    decision=item.decision,
                    comment=item.comment,
                )
            )

        async def shape(outcomes: list[bulk.ReviewOutcome]) -> ReviewEvidenceBatchPayload:
            done = [o.evidence for o in outcomes if o.evidence is not None]
            # each enrollment is read when asked for, all at once (the reviewer was allowed to
            # review the evidence, so they may see it)
            objects = {row.id: Evidence.of(row) for row in done}
            results = []
            all_errors: list[UserError] = []
            for outcome in outcomes:
                errors: list[UserError] = []
                if outcome.error is not None:
                    noted = [undecoded[outcome.index]] if outcome.index in undecoded else []
                    errors = user_errors(
                        explain_undecoded(outcome.error, noted), info.context.language
                    )
                all_errors += errors
                results.append(
                    ReviewResult(
                        index=outcome.index,
                        evidence_id=input[outcome.index].evidence_id,
                        evidence=None if outcome.evidence is None else objects[outcome.evidence.id],
                        errors=errors,
                    )
                )
            return ReviewEvidenceBatchPayload(
                results=results, reviewed=len(done), errors=all_errors
            )

        async def review(viewer: Actor) -> list[bulk.ReviewOutcome]:
            return await bulk.review_evidence_batch(
                viewer, reviews, plugins=info.context.plugins, time_zone=info.context.settings.zone
            )

        return await run_use_case(info, ReviewEvidenceBatchPayload, review, shape)


@strawberry.type
class ExternalIdQuery:
    @described(
        "The user with this externalId (exact match); null when there is none or the viewer "
        "may not see them (the same rules as `node`)."
    )
    async def user_by_external_id(self, info: Info, external_id: str) -> User | None:
        pk = await find_by_external_id("User", external_id)
        row = None if pk is None else await users.get_user(info.context.viewer, pk)
        return None if row is None else User.of(row)

    @described("The course with this externalId (exact match); null when there is none.")
    async def course_by_external_id(self, info: Info, external_id: str) -> Course | None:
        pk = await find_by_external_id("Course", external_id)
        row = None if pk is None else await courses.get_course(info.context.viewer, pk)
        return None if row is None else Course.of(row)

    @described(
        "The certification with this externalId (exact match); null when there is none or "
        "the viewer may not see it (a DRAFT: admins only)."
    )
    async def certification_by_external_id(
        self, info: Info, external_id: str
    ) -> Certification | None:
        pk = await find_by_external_id("Certification", external_id)
        viewer = info.context.viewer
        row = None if pk is None else await certifications.get_certification(viewer, pk)
        return None if row is None else Certification.of(row)
