"""The GraphQL HTTP endpoint: strawberry's ASGI view with certgraph's context and limits.
The body limit and the 401 of an unauthenticated request are decided from the headers alone,
before a byte of the body is read (docs/api.md, "Limits and production defaults"); every
refusal is gql.http.errors' JSON error, none strawberry's plain text."""

from __future__ import annotations

import json
import logging

import orjson
from cross_web import AsyncHTTPRequestAdapter, HTTPException
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData, GraphQLRequestProtocol
from strawberry.http.parse_content_type import parse_content_type
from strawberry.types import ExecutionResult

from gql.api.context import AppServices, RequestContext, build_context
from gql.api.errors import shape_error
from gql.api.graphiql import graphiql_page
from gql.api.persisted import PersistedQueryRefused
from gql.api.schema import CertgraphSchema
from gql.domain.errors import Unauthenticated
from gql.domain.unit import DeniedReads, collecting_denied_reads, flush_denied_reads
from gql.http.body_limit import BodyLimitMiddleware
from gql.http.errors import (
    BAD_REQUEST,
    BATCHING_NOT_SUPPORTED,
    BEARER_CHALLENGE,
    UNSUPPORTED_MEDIA_TYPE,
    code_for_status,
    error_response,
    language_of,
)
from gql.http.request_id import REQUEST_ID_HEADER
from gql.i18n import t
from gql.settings import Settings

log = logging.getLogger("certgraph.api")


# A GraphQL request is a small JSON document; anything bigger is refused (413) unread.
MAX_JSON_BODY_BYTES = 1024 * 1024
# Room in a multipart body beside the file: the `operations` and `map` fields and the part
# headers of an upload mutation take a few hundred bytes to a few KiB.
MULTIPART_FIELDS_BYTES = 64 * 1024
MULTIPART = "multipart/form-data"
JSON = "application/json"
# Deeper JSON than this is no GraphQL request: variables are inputs of a few levels.
MAX_JSON_DEPTH = 64


def is_multipart(headers: Headers) -> bool:
    """Whether strawberry will parse this request as a multipart form (its own parsing rule)."""
    content_type = headers.get("content-type")
    if not content_type:
        return False
    mime_type, _ = parse_content_type(content_type)
    return mime_type == MULTIPART


def is_graphql_content(headers: Headers) -> bool:
    """Whether strawberry parses this POST at all: JSON (its rule: the type contains
    application/json) or a multipart form; anything else is 415, unread."""
    mime_type, _ = parse_content_type(headers.get("content-type") or "")
    return JSON in mime_type or mime_type == MULTIPART


def multipart_body_limit(settings: Settings) -> int:
    return settings.max_upload_bytes + MULTIPART_FIELDS_BYTES


class RequestBodyLimits:
    """The body limit, chosen by content type: JSON small, multipart upload-sized.

    Anything that is not multipart gets the JSON limit, so a body can only be as large as an
    upload when strawberry will read it as one.
    """

    def __init__(self, app: ASGIApp, *, json_limit: int, multipart_limit: int) -> None:
        self._json = BodyLimitMiddleware(app, max_bytes=json_limit)
        self._multipart = BodyLimitMiddleware(app, max_bytes=multipart_limit)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        multipart = scope["type"] == "http" and is_multipart(Headers(scope=scope))
        limited = self._multipart if multipart else self._json
        await limited(scope, receive, send)


class _Refusal(HTTPException):
    """strawberry's refusal with a code of its own (strawberry's carry only a status)."""

    def __init__(self, status_code: int, code: str, reason: str) -> None:
        super().__init__(status_code, reason)
        self.code = code
        self.message = reason  # a Message, told in the request's language


# strawberry's refusals, by their (English) reason: told in the request's language.
_STRAWBERRY_REASONS: dict[str, str] = {
    reason: reason
    for reason in (
        t("No GraphQL query found in the request"),
        t("Unable to parse request body as JSON"),
        t("Unable to parse the multipart body"),
        t("File(s) missing in form data"),
        t("Unsupported content type"),
        t("GraphQL only supports GET and POST requests."),
        t("Can't get GraphQL operation type"),
        t("The GraphQL operation's `query` must be a string or null, if provided."),
        t("The GraphQL operation's `variables` must be an object or null, if provided."),
        t("The GraphQL operation's `extensions` must be an object or null, if provided."),
    )
}


def _refusal_response(refusal: HTTPException, language: str) -> Response:
    """strawberry answers its HTTPException as plain text; certgraph as its JSON error."""
    code = refusal.code if isinstance(refusal, _Refusal) else code_for_status(refusal.status_code)
    message = refusal.message if isinstance(refusal, _Refusal) else refusal.reason
    return error_response(
        refusal.status_code,
        code,
        _STRAWBERRY_REASONS.get(message, message),
        language=language,
    )


class _RefusedUnread(Exception):
    """Raised from `get_context` to answer before strawberry reads the body."""

    def __init__(self, response: Response) -> None:
        super().__init__("refused before reading the body")
        self.response = response


def _unauthenticated_response(context: RequestContext) -> Response:
    refusal = context.auth_error or Unauthenticated("authentication required")
    # The same body and headers as AuthenticationGate gives in debug mode.
    return error_response(
        401,
        refusal.code,
        refusal.message,
        language=context.language,
        headers={"WWW-Authenticate": BEARER_CHALLENGE, REQUEST_ID_HEADER: context.request_id},
    )


def json_depth_over(value: object, limit: int) -> bool:
    """Whether `value` nests deeper than `limit` (iterative: no recursion to exhaust)."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return False


# Where get_context leaves the request's context for __call__ to release.
_CONTEXT_KEY = "certgraph.context"


class CertgraphGraphQL(GraphQL[RequestContext, None]):
    """POST JSON or multipart; GraphiQL (GET, HTML) only in debug mode; no batches."""

    def __init__(self, schema: CertgraphSchema, services: AppServices) -> None:
        settings = services.settings
        super().__init__(
            schema,
            graphql_ide="graphiql" if settings.debug else None,
            allow_queries_via_get=False,
            # File parts are limited by the body limit (graphql_endpoint) and again, per file,
            # while gql.files copies them (FILE_TOO_LARGE).
            multipart_uploads_enabled=True,
        )
        self.mask_internal = not settings.debug
        self.services = services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        # strawberry's HTTP branch, plus an early refusal and closing the parsed form: its
        # spooled file parts are released as soon as the answer is sent.
        request = Request(scope=scope, receive=receive)
        denied = DeniedReads()
        try:
            # Reads of hidden objects are audited in one batch once the answer is sent, so a
            # hidden object answers as fast as a missing one (gql.domain.unit).
            with collecting_denied_reads(denied):
                try:
                    response = await self.run(request)
                except HTTPException as exc:
                    response = _refusal_response(exc, language_of(scope))
                except PersistedQueryRefused as refused:
                    response = refused.response(language_of(scope))
                except _RefusedUnread as refused:
                    response = refused.response
            await response(scope, receive, send)
            await flush_denied_reads(denied)
        finally:
            await request.close()
            context = scope.pop(_CONTEXT_KEY, None)
            if context is not None:
                context.release()
            if denied.rows:  # cut short (a timeout, a client gone): still audit what it read
                self.services.detached.start(flush_denied_reads(denied))

    async def render_graphql_ide(self, request: Request) -> Response:
        # certgraph's own page: its assets come from this server, not a CDN (graphiql.py).
        return graphiql_page()

    def encode_json(self, data: object) -> bytes:
        # orjson: the standard library's encoder was a few per cent of a large answer's time
        return orjson.dumps(data)

    def decode_json(self, data: str | bytes) -> object:
        # strawberry answers 400 only for a JSONDecodeError: a body that is not UTF-8, or JSON
        # that is neither an operation object nor a batch, would reach its parser as a 500.
        try:
            decoded = json.loads(data)
        except UnicodeDecodeError as exc:
            raise json.JSONDecodeError("the body is not UTF-8", "", 0) from exc
        except RecursionError:
            decoded = None  # nested past the interpreter's limit: refused below, unread
            too_deep = True
        else:
            too_deep = json_depth_over(decoded, MAX_JSON_DEPTH)
        if too_deep:
            log.info("request refused: its JSON nests deeper than %d levels", MAX_JSON_DEPTH)
            raise _Refusal(
                400,
                BAD_REQUEST,
                t("The request body nests deeper than {levels} levels", levels=MAX_JSON_DEPTH),
            )
        if not isinstance(decoded, dict | list):
            raise _Refusal(400, BAD_REQUEST, t("The request body must be a JSON object"))
        return decoded

    def _validate_batch_request(
        self, request_data: list[GraphQLRequestData], protocol: GraphQLRequestProtocol
    ) -> None:
        # strawberry's own check, with batching off, answers "Batching is not enabled".
        raise _Refusal(
            400,
            BATCHING_NOT_SUPPORTED,
            t(
                "a JSON array (a batch of operations) is not supported: send one operation "
                "per request"
            ),
        )

    async def parse_http_body(
        self, request: AsyncHTTPRequestAdapter
    ) -> GraphQLRequestData | list[GraphQLRequestData]:
        # Persisted queries (gql.api.persisted): the document of a hash, or a refusal.
        data = await super().parse_http_body(request)
        persisted = self.services.persisted
        if persisted is None or isinstance(data, list):
            return data
        return await persisted.resolve(data)

    async def parse_multipart(self, request: AsyncHTTPRequestAdapter) -> dict[str, str]:
        # strawberry walks the client's `operations` and `map` without checking their shape.
        try:
            return await super().parse_multipart(request)
        except (AttributeError, IndexError, TypeError, ValueError) as exc:
            raise _Refusal(
                400,
                BAD_REQUEST,
                t("The multipart request does not follow the GraphQL multipart request spec"),
            ) from exc

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> RequestContext:
        # Subscriptions are not served: the route takes HTTP only.
        assert isinstance(request, Request) and isinstance(response, Response)
        context = await build_context(request, response, self.services)
        # strawberry builds the context before it reads the body: refusing here means an
        # unauthenticated request is never parsed, validated, or (an upload) spooled.
        debug = self.services.settings.debug
        if context.actor is None and (not debug or is_multipart(request.headers)):
            raise _RefusedUnread(_unauthenticated_response(context))
        if request.method == "POST" and not is_graphql_content(request.headers):
            raise _RefusedUnread(
                error_response(
                    415,
                    UNSUPPORTED_MEDIA_TYPE,
                    t(
                        "POST a GraphQL request as application/json, or as "
                        "multipart/form-data for an upload"
                    ),
                    language=context.language,
                )
            )
        request.scope[_CONTEXT_KEY] = context  # released once answered (__call__)
        return context

    async def process_result(
        self, request: Request | WebSocket, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        # ShapeErrors shapes errors during the operation; an error raised by an extension
        # itself (ParserCache re-raises syntax errors, the token limit among them) ends the
        # operation before it can, so every result is shaped once more on its way out.
        assert isinstance(request, Request)  # HTTP only: no WebSocket route is served
        if result.errors:
            request_id = getattr(request.state, "request_id", None)
            result.errors = [
                shape_error(error, mask_internal=self.mask_internal, request_id=request_id)
                for error in result.errors
            ]
        return await super().process_result(request, result)


def graphql_endpoint(services: AppServices, schema: CertgraphSchema) -> ASGIApp:
    """The /graphql ASGI app: the view behind the body limits."""
    view = CertgraphGraphQL(schema, services)
    return RequestBodyLimits(
        view,
        json_limit=MAX_JSON_BODY_BYTES,
        multipart_limit=multipart_body_limit(services.settings),
    )


__all__ = [
    "MAX_JSON_BODY_BYTES",
    "MULTIPART_FIELDS_BYTES",
    "CertgraphGraphQL",
    "RequestBodyLimits",
    "graphql_endpoint",
    "is_multipart",
    "multipart_body_limit",
]
