"""Live updates (docs/api.md): GraphQL subscriptions over graphql-transport-ws on /graphql,
authenticated in connection_init, fed by the process's live feed; each object is re-read with
the subscriber's visibility, never taken from the event."""

from __future__ import annotations

import asyncio
import copy
import json
import logging
from collections import OrderedDict
from collections.abc import AsyncGenerator, Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from enum import Enum
from functools import partial
from typing import Any, TypeVar, cast

import strawberry
from graphql import ExecutionResult as GraphQLExecutionResult
from graphql import GraphQLError
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import ASGIWebSocketAdapter, GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.extensions import SchemaExtension
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types.graphql import OperationType
from strawberry.types.unset import UnsetType

from gql import i18n
from gql.api.context import AppServices, Info, RequestContext, request_id_for
from gql.api.loaders import Loaders
from gql.api.types import Enrollment, Evidence
from gql.domain import live
from gql.domain.access import Actor, review_scope
from gql.domain.errors import Forbidden, Unauthenticated, t
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
    event); the newest `size` are kept. Also the store of shared executions (`Shared`):
    `executions` counts those run."""

    def __init__(self, size: int = 1024) -> None:
        self.size = size
        self.executions = 0
        self._reads: OrderedDict[tuple[object, ...], asyncio.Task[Any]] = OrderedDict()

    async def get(self, key: tuple[object, ...], read: Callable[[], Coroutine[Any, Any, T]]) -> T:
        task = self._reads.get(key)
        if task is None:
            task = asyncio.get_running_loop().create_task(read())
            self._reads[key] = task
            while len(self._reads) > self.size:
                self._reads.popitem(last=False)
        elif task.done() and not task.cancelled() and task.exception() is None:
            done: T = task.result()  # the common case of a fan-out: no waiting, no shield
            return done
        try:
            result: T = await asyncio.shield(task)
        except Exception:
            self._reads.pop(key, None)  # read again next time
            raise
        return result


def _viewer_key(actor: Actor) -> tuple[object, ...]:
    return (actor.user_id, str(actor.role), actor.manager_id)


@dataclass(frozen=True, slots=True, eq=False)
class Shared:
    """What a subscription yields: the object one event gave it (made by `make`), and `key`,
    all that its execution depends on (the event, the item, the viewer, the document, its
    variables, the language). Every subscriber of this process yielding an equal key is sent
    the one result of one execution (docs/api.md, "Live updates")."""

    make: Callable[[], object]
    key: tuple[object, ...]
    results: SharedReads


def sharing_executor(base: type[Any]) -> type[Any]:
    """`base` (graphql-core's per-operation executor, as strawberry configures it) executing a
    subscription's `Shared` item once per key: the first subscriber executes it, the others
    await that result. A result with errors is not shared (each subscriber executes its own:
    errors carry the request's id)."""

    class SharingExecutor(base):  # type: ignore[misc]
        root_value: Any
        shared: Shared | None = None

        def build_per_event_executor(self, payload: Any) -> Any:
            if not isinstance(payload, Shared):
                return super().build_per_event_executor(payload)
            executor = super().build_per_event_executor(_Unmade)
            executor.shared = payload
            return executor

        def execute_operation(self, serially: bool | None = None) -> Any:
            shared = self.shared
            if shared is None:
                return super().execute_operation(serially)
            return self._shared_result(shared, serially)

        async def _shared_result(self, shared: Shared, serially: bool | None) -> Any:
            executed = False

            async def execute() -> Any:
                nonlocal executed
                executed = True
                return await self._execute(shared, serially)

            result = await shared.results.get(shared.key, execute)
            if result.errors and not executed:
                return await self._execute(shared, serially)
            return result

        async def _execute(self, shared: Shared, serially: bool | None) -> Any:
            if self.root_value is _Unmade:
                self.root_value = shared.make()
            result = super().execute_operation(serially)
            if self.is_awaitable(result):
                result = await result
            shared.results.executions += 1
            return result

    SharingExecutor.__name__ = SharingExecutor.__qualname__ = f"Sharing{base.__name__}"
    return SharingExecutor


class _Unmade:
    """The root of a per-event executor whose `Shared` item is made only when it executes."""


class EncodedResults:
    """The JSON of the newest results sent, by the identity of their data: a result shared by
    many subscribers is serialised once (each message adds only its operation id)."""

    def __init__(self, size: int = 64) -> None:
        self.size = size
        # id(data) -> (data, its JSON): holding `data` keeps its id from being reused
        self._encoded: OrderedDict[int, tuple[object, str]] = OrderedDict()

    def next_message(self, message: object) -> str | None:
        """A `next` message carrying only data, encoded; None for any other message."""
        if not isinstance(message, dict) or message.get("type") != "next":
            return None
        payload = message.get("payload")
        operation = message.get("id")
        if not isinstance(payload, dict) or payload.keys() != {"data"}:
            return None
        data = payload["data"]
        if not isinstance(data, dict) or not isinstance(operation, str):
            return None
        found = self._encoded.get(id(data))
        if found is None or found[0] is not data:
            found = (data, json.dumps(data, separators=(",", ":")))
            self._encoded[id(data)] = found
            while len(self._encoded) > self.size:
                self._encoded.popitem(last=False)
        return f'{{"id":{json.dumps(operation)},"type":"next","payload":{{"data":{found[1]}}}}}'


def _document_key(info: Info) -> tuple[object, ...]:
    """The subscription's document as its subscribers' results depend on it: the text of the
    operation's document, its name, its variables, and the language it is answered in."""
    operation = info.operation
    source = operation.loc.source.body if operation.loc is not None else None
    text = source if source is not None else repr(operation)
    variables = json.dumps(info.variable_values, sort_keys=True, default=str)
    name = operation.name.value if operation.name is not None else None
    return (text, name, variables, info.context.language)


@dataclass
class LiveContext(RequestContext):
    """A WebSocket connection's context: shared by its subscriptions, its viewer set by
    connection_init."""

    feed: live.LiveFeed | None = None
    shared: SharedReads = field(default_factory=SharedReads)
    results: SharedReads = field(default_factory=SharedReads)  # of executions: `Shared`
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
            message = t(
                "subscriptions are served over a WebSocket on /graphql "
                "(graphql-transport-ws): see docs/api.md, Live updates"
            )
            language = getattr(context.context, "language", i18n.SOURCE_LANGUAGE)
            context.result = GraphQLExecutionResult(
                data=None,
                errors=[
                    GraphQLError(i18n.render(message, language), extensions={"code": "BAD_REQUEST"})
                ],
            )
        yield


def _live(info: Info) -> tuple[LiveContext, live.LiveFeed]:
    context = info.context
    if not isinstance(context, LiveContext) or context.feed is None:
        raise Forbidden(t("subscriptions are served over a WebSocket (graphql-transport-ws)"))
    return context, context.feed


def _shared(context: LiveContext, make: Callable[[], T], key: tuple[object, ...]) -> T:
    """The item a subscription yields, executed once per key (`Shared`); typed as the object
    it stands for, which is what the execution resolves it to."""
    return cast(T, Shared(make, key, context.results))


async def _next(context: LiveContext, subscriber: live.Subscriber) -> live.LiveEvent | None:
    """The next event, or None once the subscriber fell behind (the connection is closed:
    the client reconnects and reads what it missed by query)."""
    try:
        return await subscriber.next()
    except live.SlowConsumer:
        log.warning("closing a live connection whose subscriber fell behind")
        if context.websocket is None:
            return None
        reason = i18n.render(t("Slow consumer"), context.language)
        await context.websocket.close(POLICY_VIOLATION, reason)
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
        document = _document_key(info)
        async with feed.subscribe(live.Interest(learner_id=viewer.user_id)) as subscriber:
            while (event := await _next(context, subscriber)) is not None:

                async def read(event: live.LiveEvent = event) -> list[EnrollmentView]:
                    rows = await live.enrollments_changed(viewer, event)
                    return await Loaders(viewer, plugins=context.plugins).views_of(rows)

                key = ("enrollments", event.seq, *_viewer_key(viewer))
                views = await context.shared.get(key, read)
                context.reset_loaders()  # nested fields are read afresh too
                for index, view in enumerate(views):
                    yield _shared(
                        context,
                        partial(Enrollment.of, view),
                        (*key, index, *document),
                    )

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
            raise Forbidden(t("only managers and admins review evidence"))
        document = _document_key(info)
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

                key = ("queue", event.seq, *_viewer_key(viewer))
                found = await context.shared.get(key, read)
                if found is None:
                    continue
                context.reset_loaders()
                yield _shared(context, partial(_queue_change, event, *found), (*key, *document))


def _queue_change(
    event: live.LiveEvent, row: EvidenceRecord, view: EnrollmentView | None
) -> EvidenceReviewQueueChange:
    evidence = None
    if view is not None:
        parent = Enrollment.of(view)
        evidence = next((item for item in parent.evidence_objects() if item.pk == row.id), None)
    return EvidenceReviewQueueChange(
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


# Where a connection's refusal is kept, in its language, for LiveWebSocket.close.
_REFUSAL = "certgraph.live_refusal"


def _language_of(params: dict[str, Any], default: str) -> str:
    """connection_init's {"Accept-Language": ...} (or "accept-language", "language"), else the
    upgrade request's header (`default`): browsers cannot set a WebSocket's headers."""
    for key in ("Accept-Language", "accept-language", "language"):
        value = params.get(key)
        if isinstance(value, str) and value:
            return i18n.negotiate(value)
    return default


class LiveWebSocket(ASGIWebSocketAdapter):
    """strawberry's WebSocket adapter; its refusal of a connection (4403, "Forbidden") is
    told in the connection's language."""

    async def close(self, code: int, reason: str) -> None:
        if code == 4403:
            reason = self.ws.scope.get(_REFUSAL, reason)
        await super().close(code, reason)


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
        # The schema as the WebSocket runs it: a subscription's items executed once per key.
        live_schema = copy.copy(self.schema)
        assert isinstance(live_schema, strawberry.Schema)
        live_schema.execution_context_class = sharing_executor(live_schema.execution_context_class)
        self.schema = live_schema
        self.services = services
        self.feed = feed
        self.authenticator = authenticator
        self.max_connections = settings.subscriptions_max_connections
        self.connections = 0
        self.shared = SharedReads()
        self.results = SharedReads()
        self.encoded = EncodedResults()

    websocket_adapter_class = LiveWebSocket

    def encode_json(self, data: object) -> str | bytes:
        """A shared result's JSON is made once for all its subscribers."""
        encoded = self.encoded.next_message(data)
        return encoded if encoded is not None else super().encode_json(data)

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
            language = i18n.negotiate(websocket.headers.get("accept-language"))
            reason = i18n.render(t("Too many connections"), language)
            await websocket.close(TRY_AGAIN_LATER, reason)
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
            language=i18n.negotiate(request.headers.get("accept-language")),
            feed=self.feed,
            shared=self.shared,
            results=self.results,
            websocket=request,
            authenticator=self.authenticator,
        )

    async def on_ws_connect(self, context: RequestContext) -> UnsetType | dict[str, object] | None:
        assert isinstance(context, LiveContext) and context.authenticator is not None
        context.language = _language_of(context.connection_params, context.language)
        try:
            token = _token_of(context.connection_params)
            if token is None:
                raise Unauthenticated("connection_init carries no token")
            context.actor = await context.authenticator(token)
        except (Unauthenticated, MalformedAuthorization) as exc:
            log.info("live connection refused: %s", exc)
            if context.websocket is not None:
                refusal = i18n.render(t("Forbidden"), context.language)
                context.websocket.scope[_REFUSAL] = refusal
            raise ConnectionRejectionError from None
        return UnsetType()  # connection_ack without a payload
