"""What every resolver gets: the request, its id, the authenticated viewer, the loaders, and
the app's settings and services (handed down by the app factory, never fetched globally)."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

import strawberry
from starlette.requests import Request
from starlette.responses import Response

from gql.api.loaders import Loaders
from gql.domain.access import Actor, authenticate
from gql.domain.errors import Unauthenticated
from gql.files import BlobStore
from gql.http.authentication import authenticate_headers
from gql.http.ratelimit import RateLimiting, rate_limiting_of
from gql.http.scope import authentication_of
from gql.plugins import PluginHost
from gql.settings import Settings
from gql.signing import UrlSigner

REQUEST_ID_HEADER = "X-Request-ID"
# A caller's (or proxy's) request id is kept when it is this plain, so logs can be joined.
_CLIENT_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


class DetachedTasks:
    """Work a request started that must finish although the request is gone (the audit of a
    cut-short request's hidden reads); the app's shutdown waits for it."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def start(self, work: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def finish(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)


@dataclass(frozen=True, slots=True)
class AppServices:
    """What the app factory builds once from its Settings and every request shares."""

    settings: Settings
    plugins: PluginHost
    blobs: BlobStore
    signer: UrlSigner
    detached: DetachedTasks = field(default_factory=DetachedTasks)


@dataclass
class RequestContext:
    request: Request
    response: Response
    request_id: str
    actor: Actor | None
    services: AppServices
    auth_error: Unauthenticated | None = None
    rate_limiting: RateLimiting | None = None
    _loaders: Loaders | None = field(default=None, repr=False)

    @property
    def settings(self) -> Settings:
        return self.services.settings

    @property
    def plugins(self) -> PluginHost:
        return self.services.plugins

    @property
    def blobs(self) -> BlobStore:
        return self.services.blobs

    @property
    def signer(self) -> UrlSigner:
        return self.services.signer

    @property
    def viewer(self) -> Actor:
        """The authenticated viewer; execution never starts without one (see AuthenticationGate)."""
        if self.actor is None:
            raise self.auth_error or Unauthenticated("authentication required")
        return self.actor

    @property
    def loaders(self) -> Loaders:
        if self._loaders is None:
            self._loaders = Loaders(
                self.viewer, plugins=self.plugins, max_page_size=self.settings.max_page_size
            )
        return self._loaders

    def reset_loaders(self) -> None:
        """Forget everything loaded so far: called before each mutation writes."""
        self._loaders = None


Info = strawberry.Info[RequestContext, None]


def request_id_for(request: Request) -> str:
    offered = request.headers.get(REQUEST_ID_HEADER, "")
    return offered if _CLIENT_REQUEST_ID.match(offered) else uuid.uuid4().hex


async def build_context(
    request: Request, response: Response, services: AppServices
) -> RequestContext:
    """The context of one request; authentication is AuthenticationMiddleware's verdict, or
    made here when the request did not pass through it (in-process callers)."""
    request_id = request_id_for(request)
    request.state.request_id = request_id  # for errors shaped after the operation ended
    response.headers[REQUEST_ID_HEADER] = request_id
    verdict = authentication_of(request.scope)
    if verdict is None:
        verdict = await authenticate_headers(request.headers, authenticate)
    return RequestContext(
        request,
        response,
        request_id,
        actor=verdict.actor,
        services=services,
        auth_error=verdict.error,
        rate_limiting=rate_limiting_of(request.scope),
    )
