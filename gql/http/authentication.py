"""Verify the bearer token once, before anything else reads the request: the rate limiter
keys on who the token is, and the GraphQL view refuses an unauthenticated request before it
parses or validates the document."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from gql.domain.access import Actor
from gql.domain.errors import Unauthenticated
from gql.http.scope import (
    Authentication,
    MalformedAuthorization,
    bearer_token,
    set_authentication,
)

Authenticator = Callable[[str | None], Awaitable[Actor]]


async def authenticate_headers(headers: Headers, authenticator: Authenticator) -> Authentication:
    attempted = "authorization" in headers
    try:
        token = bearer_token(headers)
    except MalformedAuthorization as exc:
        return Authentication(None, Unauthenticated(str(exc)), attempted)
    try:
        actor = await authenticator(token)
    except Unauthenticated as exc:
        return Authentication(None, exc, attempted)
    return Authentication(actor, None, attempted)


class AuthenticationMiddleware:
    """Store the verdict on the scope for the requests to `paths` (the GraphQL endpoint)."""

    def __init__(
        self, app: ASGIApp, *, authenticator: Authenticator, paths: Collection[str]
    ) -> None:
        self.app = app
        self.authenticator = authenticator
        self.paths = frozenset(paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("path") in self.paths:
            verdict = await authenticate_headers(Headers(scope=scope), self.authenticator)
            set_authentication(scope, verdict)
        await self.app(scope, receive, send)
