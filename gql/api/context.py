"""What every resolver gets: the request, its id, the authenticated viewer, the loaders, and
the app's settings and services (handed down by the app factory, never fetched globally)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

import strawberry
from starlette.requests import Request
from starlette.responses import Response

from gql import i18n
from gql.api.loaders import Loaders
from gql.api.persisted import PersistedQueries
from gql.domain.access import Actor, authenticate
from gql.domain.errors import Unauthenticated
from gql.files import BlobStore
from gql.http.authentication import authenticate_headers
from gql.http.ratelimit import RateLimiting, rate_limiting_of
from gql.http.request_id import REQUEST_ID_HEADER, assign_request_id
from gql.http.scope import authentication_of
from gql.plugins import PluginHost
from gql.settings import Settings
from gql.signing import UrlSigner


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
    # Persisted queries (gql.api.persisted): the app factory's; None serves documents as sent.
    persisted: PersistedQueries | None = None


@dataclass
class RequestContext:
    request: Request
    response: Response
    request_id: str
    actor: Actor | None
    services: AppServices
    auth_error: Unauthenticated | None = None
    rate_limiting: RateLimiting | None = None
    # the language learner-facing text is rendered in (Accept-Language, gql/i18n.py)
    language: str = i18n.SOURCE_LANGUAGE
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
            self._loaders = Loaders(self.viewer, plugins=self.plugins)
        return self._loaders

    def reset_loaders(self) -> None:
        """Forget everything loaded so far: called before each mutation writes."""
        if self._loaders is not None:
            self._loaders.release()
            self._loaders = None

    def release(self) -> None:
        """The request is answered: what its loaders hold is freed now, not by the collector."""
        if self._loaders is not None:
            self._loaders.release(end=True)
            self._loaders = None


Info = strawberry.Info[RequestContext, None]


def request_id_for(request: Request) -> str:
    """RequestIdMiddleware's id for the request (made here for in-process callers)."""
    return assign_request_id(request.scope)


async def build_context(
    request: Request, response: Response, services: AppServices
) -> RequestContext:
    """The context of one request; authentication is AuthenticationMiddleware's verdict, or
    made here when the request did not pass through it (in-process callers)."""
    request_id = request_id_for(request)  # on request.state too, for errors shaped later
    response.headers[REQUEST_ID_HEADER] = request_id
    language = i18n.negotiate(request.headers.get("accept-language"))
    response.headers["Content-Language"] = language
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
        language=language,
    )
