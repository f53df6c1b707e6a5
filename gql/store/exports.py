"""What an enrollment export reads beside the enrollments themselves: the people on its rows,
one statement per batch, and who asked for a download."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from gql.store.models import User
from gql.vocabulary import Role


@dataclass(frozen=True, slots=True)
class ExportPerson:
    """A learner as an export row shows them, with their manager's e-mail address."""

    id: int
    name: str
    email: str
    external_id: str | None
    manager_email: str | None


async def people(user_ids: list[int]) -> dict[int, ExportPerson]:
    """These users and their managers' e-mail addresses. One statement (none for no ids)."""
    if not user_ids:
        return {}
    rows = await User.filter(id__in=sorted(set(user_ids))).values_list(
        "id", "name", "email", "external_id", "manager__email"
    )
    return {int(row[0]): ExportPerson(*row) for row in rows}


@dataclass(frozen=True, slots=True)
class Requester:
    role: Role
    deactivated_at: datetime | None


async def requester(user_id: int) -> Requester | None:
    """The role and deactivation of the user who asked for an export; None when gone."""
    rows = await User.filter(id=user_id).values_list("role", "deactivated_at")
    if not rows:
        return None
    role, deactivated_at = rows[0]
    return Requester(Role(role), deactivated_at)
