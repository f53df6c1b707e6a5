"""Live updates (docs/api.md): GraphQL subscriptions over graphql-transport-ws on /graphql,
authenticated in connection_init, fed by the process's live feed; each object is re-read with
the subscriber's visibility, never taken from the event."""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import AsyncGenerator, Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from enum import Enum
from typing import Any, TypeVar

import strawberry
from graphql import ExecutionResult as GraphQLExecutionResult
from graphql import GraphQLError
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.extensions import SchemaExtension
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types.graphql import OperationType
from strawberry.types.unset import UnsetType

from gql.api.context import AppServices, Info, RequestContext, request_id_for
from gql.api.loaders import Loaders
from gql.api.types import Enrollment, Evidence
from gql.domain import live
from gql.domain.access import Actor, review_scope
from gql.domain.errors import Forbidden, Unauthenticated
from gql.domain.records import EvidenceRecord
from gql.domain.status import EnrollmentView
from gql.http.authentication import Authenticator
from gql.http.scope import MalformedAuthorization, bearer_token

log = logging.getLogger("certgraph.api.live")
T = TypeVar("T")

# Close codes (RFC 6455 §7.4.1): the process has all the connections it takes; a
# subscriber fell too far behind its events.
TRY_AGAIN_LATER = 1013
POLICY_VIOLATION = 1008


class SharedReads:
    """What one event's re-read gave one viewer, shared by that viewer's subscribers in this
    process (a viewer with many tabs, or many connections of one client, costs one read per
    event); the newest `size` are kept."""

    def __init__(self, size: int = 1024) -> None:
        self.size = size
        self._reads: OrderedDict[tuple[object, ...], asyncio.Task[Any]] = OrderedDict()

    async def get(self, key: tuple[object, ...], read: Callable[[], Coroutine[Any, Any, T]]) -> T:
        task = self._reads.get(key)
        if task is None:
            task = asyncio.get_running_loop().create_task(read())
            self._reads[key] = task
            while len(self._reads) > self.size:
                self._reads.popitem(last=False)
        try:
            result: T = await asyncio.shield(task)
        except Exception:
            self._reads.pop(key, None)  # read again next time
            raise
        return result


def _viewer_key(actor: Actor) -> tuple[object, ...]:
    return (actor.user_id, str(actor.role), actor.manager_id)


@dataclass
class LiveContext(RequestContext):
    """A WebSocket connection's context: shared by its subscriptions, its viewer set by
    connection_init."""

    feed: live.LiveFeed | None = None
    shared: SharedReads = field(default_factory=SharedReads)
    websocket: WebSocket | None = None
    authenticator: Authenticator | None = None
    connection_params: dict[str, Any] = field(default_factory=dict)


class SubscriptionsOverWebSocket(SchemaExtension):
    """A subscription POSTed over HTTP is refused with one BAD_REQUEST error, unrun."""

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        if context.operation_type == OperationType.SUBSCRIPTION and not isinstance(
            context.context, LiveContext
        ):
            context.result = GraphQLExecutionResult(
                data=None,
                errors=[
                    GraphQLError(
                        "subscriptions are served over a WebSocket on /graphql "
                        "(graphql-transport-ws): see docs/api.md, Live updates",
                        extensions={"code": "BAD_REQUEST"},
                    )
                ],
            )
        yield


def _live(info: Info) -> tuple[LiveContext, live.LiveFeed]:
    context = info.context
    if not isinstance(context, LiveContext) or context.feed is None:
        raise Forbidden("subscriptions are served over a WebSocket (graphql-transport-ws)")
    return context, context.feed


async def _next(context: LiveContext, subscriber: live.Subscriber) -> live.LiveEvent | None:
    """The next event, or None once the subscriber fell behind (the connection is closed:
    the client reconnects and reads what it missed by query)."""
    try:
        return await subscriber.next()
    except live.SlowConsumer:
        log.warning("closing a live connection whose subscriber fell behind")
        if context.websocket is None:
            return None
        await context.websocket.close(POLICY_VIOLATION, "Slow consumer")
        # Nothing more is sent on a closed connection: wait to be cancelled when the
        # connection's handler ends (the client's closing handshake ends it).
        await asyncio.Event().wait()
        return None


@strawberry.enum(description="How an evidence item in the review queue changed.")
class ReviewQueueChangeKind(Enum):
    SUBMITTED = "SUBMITTED"
    REVIEWED = "REVIEWED"


@strawberry.type(description="An evidence item entered (SUBMITTED) or left (REVIEWED) the queue.")
class EvidenceReviewQueueChange:
    change: ReviewQueueChangeKind
    evidence_id: strawberry.ID
    evidence: Evidence | None = strawberry.field(
        description="As the viewer may see it now; null when it no longer exists."
    )


@strawberry.type
class Subscription:
    @strawberry.subscription(  # type: ignore[untyped-decorator]  # strawberry's is untyped
        description=(
            "The viewer's own enrollments, each time one changes (enrolment, start, progress, "
            "evidence submitted or reviewed, completion, reminders, expiry, unassignment)."
        )
    )
    async def viewer_enrollment_changed(self, info: Info) -> AsyncGenerator[Enrollment]:
        context, feed = _live(info)
        viewer = context.viewer
        async with feed.subscribe(live.Interest(learner_id=viewer.user_id)) as subscriber:
            while (event := await _next(context, subscriber)) is not None:

                async def read(event: live.LiveEvent = event) -> list[EnrollmentView]:
                    rows = await live.enrollments_changed(viewer, event)
                    return await Loaders(viewer, plugins=context.plugins).views_of(rows)

                key = ("enrollments", event.seq, *_viewer_key(viewer))
                views = await context.shared.get(key, read)
                context.reset_loaders()  # nested fields are read afresh too
                for view in views:
                    yield Enrollment.of(view)

    @strawberry.subscription(  # type: ignore[untyped-decorator]  # strawberry's is untyped
        description=(
            "Evidence entering or leaving the review queue: a manager's reports', anyone's "
            "for admins (never the viewer's own). FORBIDDEN for learners."
        )
    )
    async def evidence_review_queue_changed(
        self, info: Info
    ) -> AsyncGenerator[EvidenceReviewQueueChange]:
        context, feed = _live(info)
        viewer = context.viewer
        if review_scope(viewer) is None:
            raise Forbidden("only managers and admins review evidence")
        interest = live.Interest(types=live.EVIDENCE_TYPES)
        async with feed.subscribe(interest) as subscriber:
            while (event := await _next(context, subscriber)) is not None:

                async def read(
                    event: live.LiveEvent = event,
                ) -> tuple[EvidenceRecord, EnrollmentView | None] | None:
                    row = await live.reviewable_evidence(viewer, event)
                    if row is None:
                        return None
                    enrollment = await live.visible_enrollment(viewer, row.enrollment_id)
                    if enrollment is None:
                        return row, None
                    loaders = Loaders(viewer, plugins=context.plugins)
                    return row, await loaders.view_of(enrollment)

                found = await context.shared.get(("queue", event.seq, *_viewer_key(viewer)), read)
                if found is None:
                    continue
                row, view = found
                context.reset_loaders()
                evidence = None
                if view is not None:
                    parent = Enrollment.of(view)
                    evidence = next(
                        (item for item in parent.evidence_objects() if item.pk == row.id), None
                    )
                yield EvidenceReviewQueueChange(
                    change=(
                        ReviewQueueChangeKind.SUBMITTED
                        if event.type == "evidence_submitted"
                        else ReviewQueueChangeKind.REVIEWED
                    ),
                    evidence_id=strawberry.ID(evidence.id if evidence else str(row.id)),
                    evidence=evidence,
                )


def _token_of(params: dict[str, Any]) -> str | None:
    """The bearer token of connection_init's payload: {"Authorization": "Bearer ..."}, the
    same in lower case, or {"token": "..."}."""
    for key in ("Authorization", "authorization"):
        value = params.get(key)
        if isinstance(value, str):
            return bearer_token(Headers({"authorization": value}))
    token = params.get("token")
    return token if isinstance(token, str) and token else None


class LiveGraphQL(GraphQL[RequestContext, None]):
    """strawberry's WebSocket handling, graphql-transport-ws only, with certgraph's
    authentication and limits; the Origin must be one of CERTGRAPH_CORS_ORIGINS (or the
    server's own, or absent: not a browser)."""

    def __init__(
        self,
        schema: Any,
        services: AppServices,
        feed: live.LiveFeed,
        authenticator: Authenticator,
    ) -> None:
        settings = services.settings
        super().__init__(
            schema,
            graphql_ide=None,
            allow_queries_via_get=False,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            connection_init_wait_timeout=timedelta(
                seconds=settings.subscriptions_init_timeout_seconds
            ),
            max_subscriptions_per_connection=settings.subscriptions_max_per_connection,
            allowed_origins=tuple(settings.cors_origins),
        )
        self.services = services
        self.feed = feed
        self.authenticator = authenticator
        self.max_connections = settings.subscriptions_max_connections
        self.connections = 0
        self.shared = SharedReads()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":  # the route takes WebSockets only
            await super().__call__(scope, receive, send)
            return
        if self.connections >= self.max_connections:
            websocket = WebSocket(scope, receive, send)
            offered = websocket.scope.get("subprotocols") or []
            protocol = (
                GRAPHQL_TRANSPORT_WS_PROTOCOL if GRAPHQL_TRANSPORT_WS_PROTOCOL in offered else None
            )
            await websocket.accept(subprotocol=protocol)
            await websocket.close(TRY_AGAIN_LATER, "Too many connections")
            return
        self.connections += 1
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.connections -= 1

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> RequestContext:
        assert isinstance(request, WebSocket)
        # Resolvers read the connection's handshake as a Request, like an HTTP one's (its
        # scope's state shared).
        handshake = Request({**request.scope, "type": "http", "method": "GET"})
        return LiveContext(
            request=handshake,
            response=Response(),
            request_id=request_id_for(handshake),
            actor=None,
            services=self.services,
            feed=self.feed,
            shared=self.shared,
            websocket=request,
            authenticator=self.authenticator,
        )

    async def on_ws_connect(self, context: RequestContext) -> UnsetType | dict[str, object] | None:
        assert isinstance(context, LiveContext) and context.authenticator is not None
        try:
            token = _token_of(context.connection_params)
            if token is None:
                raise Unauthenticated("connection_init carries no token")
            context.actor = await context.authenticator(token)
        except (Unauthenticated, MalformedAuthorization) as exc:
            log.info("live connection refused: %s", exc)
            raise ConnectionRejectionError from None
        return UnsetType()  # connection_ack without a payload
