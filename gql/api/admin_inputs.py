"""Inputs of the admin mutations that tell a field left out from an explicit null.

A field left out of a GraphQL input is strawberry's UNSET, which becomes the domain's
UNCHANGED; an explicit `null` stays None and clears the field (docs/api.md, "Partial
updates"). Used by gql.api.mutations (assignCertification, updateCourse,
updateCertification).
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from datetime import datetime
from typing import Any, TypeVar

import strawberry
from strawberry.scalars import JSON
from strawberry.types.unset import UnsetType

from gql.api.enums import CertificationKind, CertificationType
from gql.api.ids import pk_or_unknown
from gql.domain.certifications import CertificationChanges as CertificationChangeSet
from gql.domain.changes import UNCHANGED, Unchanged
from gql.domain.enrollments import Assignment
from gql.domain.errors import DomainError, DomainErrors, InvalidInput, PolicyConfigInvalid, t

T = TypeVar("T")


def changed(value: T | UnsetType) -> T | Unchanged:
    """The domain's value of an input field: UNCHANGED when it was left out."""
    return UNCHANGED if isinstance(value, UnsetType) else value


def or_none(value: T | UnsetType) -> T | None:
    """A create's value of an input field: None when it was left out."""
    return None if isinstance(value, UnsetType) else value


@strawberry.input(
    description=(
        "One learner to assign, with a due date of their own. dueAt left out: the call's dueAt, "
        "else an enrolled learner keeps theirs and a new (or reopened) enrollment gets the "
        "certification's daysToComplete; null: no due date (clears one)."
    )
)
class AssignmentInput:
    learner_id: strawberry.ID
    due_at: datetime | None = strawberry.UNSET


def assignments_of(items: Sequence[AssignmentInput] | None) -> list[Assignment]:
    """The domain's assignments, each learner's ID decoded at its index as sent."""
    return [
        Assignment(
            learner_id=pk_or_unknown(item.learner_id, "User", ["assignments", str(i), "learnerId"]),
            due_at=changed(item.due_at),
        )
        for i, item in enumerate(items or [])
    ]


@strawberry.input(
    description=(
        "updateCourse's changes: only the fields given change; null clears description and "
        "durationMinutes (name cannot be cleared)."
    )
)
class CourseChanges:
    name: str | None = strawberry.UNSET
    description: str | None = strawberry.UNSET
    duration_minutes: int | None = strawberry.UNSET
    external_id: str | None = strawberry.field(
        default=strawberry.UNSET,
        description="As in CourseInput; null clears it.",
    )


@strawberry.input(
    description=(
        "updateCertification's changes: only the fields given change. null clears a nullable "
        "field (to its default where it has one: the kind's policy, the policy's default "
        "config, a 30-day window, the organisation as an INTERNAL issuer); name, kind and type "
        "cannot be cleared. The policy changes only when named; its config is kept unless "
        "policyConfig is given or another policy is named."
    )
)
class CertificationChanges:
    name: str | None = strawberry.UNSET
    overview: str | None = strawberry.UNSET
    kind: CertificationKind | None = strawberry.UNSET
    type_: CertificationType | None = strawberry.field(name="type", default=strawberry.UNSET)
    issuer: str | None = strawberry.UNSET
    validity_months: int | None = strawberry.UNSET
    recertification_window_days: int | None = strawberry.UNSET
    days_to_complete: int | None = strawberry.UNSET
    policy: str | None = strawberry.UNSET
    policy_config: JSON | None = strawberry.UNSET
    badge_name: str | None = strawberry.UNSET
    external_id: str | None = strawberry.field(
        default=strawberry.UNSET,
        description="As in CertificationInput; null clears it.",
    )

    def to_changes(self, root: str = "changes") -> CertificationChangeSet:
        return CertificationChangeSet(
            name=changed(self.name),
            kind=changed(self.kind),
            type=changed(self.type_),
            overview=changed(self.overview),
            issuer=changed(self.issuer),
            validity_months=changed(self.validity_months),
            recertification_window_days=changed(self.recertification_window_days),
            days_to_complete=changed(self.days_to_complete),
            policy=changed(self.policy),
            policy_config=policy_config(changed(self.policy_config), root),
            badge_name=changed(self.badge_name),
            external_id=changed(self.external_id),
        )


def policy_config(value: Any, root: str = "input") -> dict[str, Any] | Unchanged | None:
    """A policyConfig as given: a JSON object, null, or left out (UNCHANGED)."""
    if value is None or isinstance(value, Unchanged | dict):
        return value
    raise PolicyConfigInvalid(t("policyConfig must be a JSON object"), field=[root, "policyConfig"])


def rerooted(error: DomainError, root: str) -> DomainError:
    """The error with its field path under `root` instead of "input" (the domain names an
    update's fields as `input.<field>`; the `changes` argument holds them too)."""
    if isinstance(error, DomainErrors):
        return DomainErrors([rerooted(each, root) for each in error.errors])
    if error.field and error.field[0] == "input":
        error.field = (root, *error.field[1:])
    return error


InputT = TypeVar("InputT")
ChangesT = TypeVar("ChangesT")


def one_of(input: InputT | None, changes: ChangesT | None) -> InputT | ChangesT:
    """The one of an update's two arguments that was given; INVALID_INPUT for both or none."""
    if input is not None and changes is not None:
        raise InvalidInput(t("give input or changes, not both"), field=["changes"])
    if input is not None:
        return input
    if changes is None:
        raise InvalidInput(t("give the changes to make"), field=["changes"])
    return changes


async def under(root: str, use_case: Awaitable[T]) -> T:
    """Run the use case; its errors' fields under `root` instead of "input"."""
    try:
        return await use_case
    except DomainError as exc:
        if root == "input":
            raise
        raise rerooted(exc, root) from None
