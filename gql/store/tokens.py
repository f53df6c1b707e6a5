"""The bearer-token lookup every request makes, and its last-used bookkeeping."""

from __future__ import annotations

from datetime import datetime

from gql.store.models import ApiToken, Role
from gql.store.records import TokenRecord, UserRecord


async def active_token(token_hash: str) -> TokenRecord | None:
    """The unrevoked token with this hash and its user, or None. One statement.

    A token whose user row is gone (deleted outside certgraph, where the cascade did not
    run) is no token.
    """
    rows = (
        await ApiToken.filter(token_hash=token_hash, revoked_at=None, user__id__isnull=False)
        .limit(1)
        .values_list(
            "id",
            "last_used_at",
            "user__id",
            "user__name",
            "user__email",
            "user__role",
            "user__manager_id",
        )
    )
    if not rows:
        return None
    r = rows[0]
    return TokenRecord(r[0], r[1], UserRecord(r[2], r[3], r[4], Role(r[5]), r[6]))


async def touch_token(token_id: int, used_at: datetime) -> None:
    """Set a token's last_used_at. One statement."""
    await ApiToken.filter(id=token_id).update(last_used_at=used_at)
