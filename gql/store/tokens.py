"""The bearer-token lookup every request makes, and its last-used bookkeeping."""

from __future__ import annotations

from datetime import datetime

from gql.store.models import ApiToken, User
from gql.store.records import USER_COLUMNS, TokenRecord, UserRecord


async def active_token(token_hash: str) -> TokenRecord | None:
    """The unrevoked token with this hash and its user, or None. One statement.

    Read from the user's side: a token whose user row is gone (deleted outside certgraph,
    where the cascade did not run) is no token.
    """
    rows = await User.filter(tokens__token_hash=token_hash, tokens__revoked_at=None).values_list(
        *USER_COLUMNS, "tokens__id", "tokens__last_used_at"
    )
    if not rows:
        return None
    r = rows[0]
    return TokenRecord(r[5], r[6], UserRecord(*r[:5]))


async def touch_token(token_id: int, used_at: datetime) -> None:
    """Set a token's last_used_at. One statement."""
    await ApiToken.filter(id=token_id).update(last_used_at=used_at)
