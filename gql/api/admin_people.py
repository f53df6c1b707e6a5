"""People's lifecycle through the API (docs/api.md, "People"): `updateUser` (only the fields
given change; an explicit null clears the manager), `deactivateUser` and `reactivateUser`.
Admins only; each answers a UserPayload (gql.api.mutations)."""

from __future__ import annotations

from typing import Any

import strawberry

from gql.api.context import Info
from gql.api.enums import Role
from gql.api.fields import described_mutation
from gql.api.ids import pk_or_unknown
from gql.api.mutations import UserPayload, run_use_case
from gql.api.types import User
from gql.domain import people
from gql.domain.records import UserRecord


@strawberry.input(
    description=(
        "What updateUser changes: only the fields given. An explicit null clears managerId; "
        "name, email and role cannot be null."
    )
)
class UpdateUserInput:
    name: str | None = strawberry.field(
        default=strawberry.UNSET, description="1 to 200 characters, whitespace collapsed."
    )
    email: str | None = strawberry.field(
        default=strawberry.UNSET,
        description="Stored lower-case; no one else may have it (CONFLICT).",
    )
    role: Role | None = strawberry.field(
        default=strawberry.UNSET,
        description=(
            "Not the viewer's own; not away from MANAGER or ADMIN while people report to them "
            "(NOT_ALLOWED)."
        ),
    )
    manager_id: strawberry.ID | None = strawberry.field(
        default=strawberry.UNSET,
        description=(
            "An active MANAGER or ADMIN who is neither this person nor anyone they manage, "
            "directly or not (a cycle: NOT_ALLOWED); null: no manager."
        ),
    )
    external_id: str | None = strawberry.field(
        default=strawberry.UNSET,
        description=(
            "The HR system's key (as createUser's); null clears it; one another user has is "
            "CONFLICT with that user's ID in existingId."
        ),
    )


def _given(value: Any) -> Any:
    """The value sent, or people.KEEP for a field left out."""
    return people.KEEP if value is strawberry.UNSET else value


def _manager_pk(value: strawberry.ID | None) -> int | people.Keep | None:
    """managerId's pk (decoded while the use case runs, so a bad ID is explained), KEEP
    when left out, None when null."""
    if value is strawberry.UNSET:
        return people.KEEP
    return None if value is None else pk_or_unknown(value, "User", ["input", "managerId"])


def _user_payload(row: UserRecord) -> UserPayload:
    return UserPayload(user=User.of(row))


@strawberry.type
class PeopleMutations:
    @described_mutation(
        "Change a person (admins; FORBIDDEN otherwise, audited): only the fields given in "
        "input change, an explicit null managerId clears the manager. Validated as "
        "createUser; audited with what changed, before and after. Changing nothing writes "
        "nothing."
    )
    async def update_user(
        self, info: Info, id: strawberry.ID, input: UpdateUserInput
    ) -> UserPayload | None:
        return await run_use_case(
            info,
            UserPayload,
            lambda viewer: people.update_user(
                viewer,
                pk_or_unknown(id, "User", ["id"]),
                name=_given(input.name),
                email=_given(input.email),
                role=_given(input.role),
                manager_id=_manager_pk(input.manager_id),
                external_id=_given(input.external_id),
            ),
            _user_payload,
        )

    @described_mutation(
        "Deactivate a person (admins; not oneself: NOT_ALLOWED): their API tokens and "
        "provider sign-ins are refused (401) from their next request on. Their enrollments, "
        "awards and history stay; nothing is revoked, so reactivateUser restores them. "
        "Deactivating a deactivated person changes nothing. Audited."
    )
    async def deactivate_user(self, info: Info, id: strawberry.ID) -> UserPayload | None:
        return await run_use_case(
            info,
            UserPayload,
            lambda viewer: people.deactivate_user(viewer, pk_or_unknown(id, "User", ["id"])),
            _user_payload,
        )

    @described_mutation(
        "Reactivate a deactivated person (admins): their tokens that are neither revoked nor "
        "expired work again, and they may sign in. Reactivating an active person changes "
        "nothing. Audited."
    )
    async def reactivate_user(self, info: Info, id: strawberry.ID) -> UserPayload | None:
        return await run_use_case(
            info,
            UserPayload,
            lambda viewer: people.reactivate_user(viewer, pk_or_unknown(id, "User", ["id"])),
            _user_payload,
        )


__all__ = ["PeopleMutations", "UpdateUserInput"]
