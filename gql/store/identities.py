"""Sign-in with an OpenID provider: the identity lookup every such request makes, and the
writes of a first sign-in and of a role the provider's claim changes."""

from __future__ import annotations

from datetime import datetime

from gql.store.models import User, UserIdentity
from gql.store.records import USER_COLUMNS, UserRecord, record_of
from gql.vocabulary import Role


async def user_of_identity(issuer: str, subject: str) -> UserRecord | None:
    """The user linked to the provider's (issuer, subject), or None. One statement, on the
    unique (issuer, subject) index."""
    rows = (
        await User.filter(identities__issuer=issuer, identities__subject=subject)
        .limit(1)
        .values_list(*USER_COLUMNS)
    )
    return UserRecord(*rows[0]) if rows else None


async def user_with_email(email: str) -> UserRecord | None:
    rows = await User.filter(email=email).limit(1).values_list(*USER_COLUMNS)
    return UserRecord(*rows[0]) if rows else None


async def create_user(name: str, email: str, role: Role, now: datetime) -> UserRecord:
    user = await User.create(name=name, email=email, role=role, created_at=now)
    return record_of(UserRecord, user)


async def link_identity(user_id: int, issuer: str, subject: str, now: datetime) -> int:
    """Store the identity; an IntegrityError when (issuer, subject) is linked already."""
    row = await UserIdentity.create(user_id=user_id, issuer=issuer, subject=subject, created_at=now)
    return int(row.id)


async def change_role(user_id: int, before: Role, after: Role) -> bool:
    """Set the role if it still is `before`; whether it was changed (so two requests racing
    to the same change write and audit it once)."""
    count = await User.filter(id=user_id, role=before).update(role=after)
    return bool(count)
