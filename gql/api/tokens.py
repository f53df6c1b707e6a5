"""API tokens through the API (docs/auth.md, "API tokens"): the ApiToken type (never its
secret, never its hash), `User.apiTokens` (resolved here for gql.api.types), `createApiToken`
(the secret answered once) and `revokeApiToken`."""

from __future__ import annotations

from datetime import datetime

import strawberry

from gql.api.connections import Connection
from gql.api.context import Info
from gql.api.errors import UserError
from gql.api.fields import described, described_mutation
from gql.api.ids import encode_id, pk_or_unknown
from gql.api.mutations import run_use_case
from gql.api.types import Node, User
from gql.domain import tokens
from gql.domain.pages import PageRequest
from gql.domain.tokens import MAX_LIFETIME_DAYS, MAX_NAME_CHARS, ApiTokenRecord, IssuedToken


@strawberry.type(
    description=(
        "An API token (`Authorization: Bearer cg_…`) as its owner and admins see it. Its "
        "secret is answered once, by createApiToken, and never again; only its SHA-256 is "
        "stored."
    )
)
class ApiToken(Node):
    name: str = strawberry.field(description="What its owner calls it; empty when unnamed.")
    created_at: datetime
    last_used_at: datetime | None = strawberry.field(
        description="When it last authenticated a request (kept to the minute); null: never used."
    )
    expires_at: datetime | None = strawberry.field(
        description="From then on it is refused (401 UNAUTHENTICATED); null: until revoked."
    )
    revoked_at: datetime | None = strawberry.field(
        description="When it was revoked; null while it is not."
    )
    active: bool = strawberry.field(
        description="Whether it authenticates now: neither revoked nor expired."
    )
    owner_pk: strawberry.Private[int]

    @classmethod
    def of(cls, row: ApiTokenRecord) -> ApiToken:
        return cls(
            id=strawberry.ID(encode_id("ApiToken", row.id)),
            name=row.name,
            created_at=row.created_at,
            last_used_at=row.last_used_at,
            expires_at=row.expires_at,
            revoked_at=row.revoked_at,
            active=tokens.is_active(row),
            owner_pk=row.user_id,
        )

    @described("Whose token it is.")
    async def user(self, info: Info) -> User | None:
        row = await info.context.loaders.users.load(self.owner_pk)
        return None if row is None else User.of(row)


async def api_token_connection(
    info: Info,
    user_pk: int,
    *,
    include_revoked: bool,
    paging: PageRequest,
) -> Connection[ApiToken]:
    """`User.apiTokens`: the user's tokens, newest first (empty unless the viewer is that user
    or an admin)."""
    page = await tokens.list_api_tokens(
        info.context.viewer, user_pk, include_revoked=include_revoked, paging=paging
    )
    return Connection.of(page, [ApiToken.of(row) for row in page.items])


async def api_token_node(info: Info, pk: int) -> ApiToken | None:
    """The token for `node(id:)`: null unless it is the viewer's own or the viewer an admin."""
    row = await tokens.get_api_token(info.context.viewer, pk)
    return None if row is None else ApiToken.of(row)


@strawberry.type
class ApiTokenPayload:
    token: str | None = strawberry.field(
        default=None,
        description=(
            "The plain token (the secret, cg_…): answered here, once, and never stored; send "
            "it as `Authorization: Bearer <token>`."
        ),
    )
    api_token: ApiToken | None = strawberry.field(
        default=None, description="The new token's details (never the secret)."
    )
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class RevokeApiTokenPayload:
    api_token: ApiToken | None = strawberry.field(
        default=None, description="The token, revoked (revokedAt set, active false)."
    )
    errors: list[UserError] = strawberry.field(default_factory=list)


def _issued(issued: IssuedToken) -> ApiTokenPayload:
    return ApiTokenPayload(token=issued.secret, api_token=ApiToken.of(issued.token))


@strawberry.type
class TokenMutations:
    @described_mutation(
        "A new API token. Without userId it is the viewer's own (anyone signed in may make "
        "tokens for their own scripts); admins make them for anyone (another's userId from "
        f"anyone else is FORBIDDEN). name: at most {MAX_NAME_CHARS} characters, trimmed. "
        "expiresAt: in the future and at most "
        f"{MAX_LIFETIME_DAYS} days ahead; without it the token lasts until revoked. The "
        "secret is in this payload's `token` and nowhere else, ever."
    )
    async def create_api_token(
        self,
        info: Info,
        user_id: strawberry.ID | None = None,
        name: str | None = None,
        expires_at: datetime | None = None,
    ) -> ApiTokenPayload | None:
        return await run_use_case(
            info,
            ApiTokenPayload,
            lambda viewer: tokens.create_api_token(
                viewer,
                None if user_id is None else pk_or_unknown(user_id, "User", ["userId"]),
                name=name,
                expires_at=expires_at,
            ),
            _issued,
        )

    @described_mutation(
        "Revoke an API token: the viewer's own, or anyone's for admins (someone else's reads "
        "as NOT_FOUND). It is refused from the next request on. Revoking a revoked token "
        "changes nothing."
    )
    async def revoke_api_token(self, info: Info, id: strawberry.ID) -> RevokeApiTokenPayload | None:
        return await run_use_case(
            info,
            RevokeApiTokenPayload,
            lambda viewer: tokens.revoke_api_token(viewer, pk_or_unknown(id, "ApiToken", ["id"])),
            lambda row: RevokeApiTokenPayload(api_token=ApiToken.of(row)),
        )


__all__ = [
    "ApiToken",
    "ApiTokenPayload",
    "RevokeApiTokenPayload",
    "TokenMutations",
    "api_token_connection",
    "api_token_node",
]
