"""What every resolver gets: the request, its id, the authenticated viewer and the loaders."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field

import strawberry
from starlette.requests import Request
from starlette.responses import Response

from gql.api.loaders import Loaders
from gql.domain.access import Actor, authenticate
from gql.domain.errors import Unauthenticated

REQUEST_ID_HEADER = "X-Request-ID"
# A caller's (or proxy's) request id is kept when it is this plain, so logs can be joined.
_CLIENT_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
_BEARER = re.compile(r"^\s*Bearer\s+(\S+)\s*$", re.IGNORECASE)


@dataclass
class RequestContext:
    request: Request
    response: Response
    request_id: str
    actor: Actor | None
    auth_error: Unauthenticated | None = None
    _loaders: Loaders | None = field(default=None, repr=False)

    @property
    def viewer(self) -> Actor:
        """The authenticated viewer; execution never starts without one (see AuthenticationGate)."""
        if self.actor is None:
            raise self.auth_error or Unauthenticated("authentication required")
        return self.actor

    @property
    def loaders(self) -> Loaders:
        if self._loaders is None:
            self._loaders = Loaders(self.viewer)
        return self._loaders

    def reset_loaders(self) -> None:
        """Forget everything loaded so far: called before each mutation writes."""
        self._loaders = None


Info = strawberry.Info[RequestContext, None]


def request_id_for(request: Request) -> str:
    offered = request.headers.get(REQUEST_ID_HEADER, "")
    return offered if _CLIENT_REQUEST_ID.match(offered) else uuid.uuid4().hex


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    match = _BEARER.match(authorization)
    return match.group(1) if match else None


async def build_context(request: Request, response: Response) -> RequestContext:
    request_id = request_id_for(request)
    request.state.request_id = request_id  # for errors shaped after the operation ended
    response.headers[REQUEST_ID_HEADER] = request_id
    authorization = request.headers.get("Authorization")
    token = bearer_token(authorization)
    if authorization and token is None:
        refusal = Unauthenticated("the Authorization header must be 'Bearer <token>'")
        return RequestContext(request, response, request_id, actor=None, auth_error=refusal)
    try:
        actor = await authenticate(token)
    except Unauthenticated as exc:
        return RequestContext(request, response, request_id, actor=None, auth_error=exc)
    return RequestContext(request, response, request_id, actor=actor)
