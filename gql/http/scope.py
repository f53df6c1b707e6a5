"""What the middlewares read from an ASGI scope: whether a path is guarded, the bearer token
(parsed here and nowhere else) and what authentication found, kept in the scope's state."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.datastructures import Headers
from starlette.types import Scope

if TYPE_CHECKING:
    from gql.domain.access import Actor
    from gql.domain.errors import Unauthenticated

# Probes must answer while a token is throttled or a request is stuck.
UNGUARDED_PATHS = frozenset({"/healthz", "/readyz"})

_BEARER = re.compile(r"^\s*Bearer\s+(\S+)\s*$", re.IGNORECASE)
_AUTHENTICATION = "certgraph.authentication"


def is_guarded(scope: Scope) -> bool:
    return scope["type"] == "http" and scope.get("path") not in UNGUARDED_PATHS


@dataclass(frozen=True, slots=True)
class Authentication:
    """The verdict on a request's credentials: an actor, or why there is none.

    `attempted` is true when the request offered an Authorization header at all.
    """

    actor: Actor | None
    error: Unauthenticated | None
    attempted: bool


class MalformedAuthorization(ValueError):
    """The Authorization header is not `Bearer <token>`."""


def bearer_token(headers: Headers) -> str | None:
    """The token of `Authorization: Bearer <token>`; None without the header."""
    authorization = headers.get("authorization")
    if not authorization:
        return None
    match = _BEARER.match(authorization)
    if match is None:
        raise MalformedAuthorization("the Authorization header must be 'Bearer <token>'")
    return match.group(1)


def set_authentication(scope: Scope, authentication: Authentication) -> None:
    scope.setdefault("state", {})[_AUTHENTICATION] = authentication


def authentication_of(scope: Scope) -> Authentication | None:
    found = scope.get("state", {}).get(_AUTHENTICATION)
    return found if isinstance(found, Authentication) else None


def client_address(scope: Scope) -> str:
    """The peer's address: uvicorn replaces it by X-Forwarded-For only for trusted proxies."""
    client = scope.get("client")
    return str(client[0]) if client else "unknown"
