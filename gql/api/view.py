"""The GraphQL HTTP endpoint: strawberry's ASGI view with our context and defaults."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse
from strawberry.types import ExecutionResult

from gql.api.context import RequestContext, build_context
from gql.api.errors import shape_error
from gql.api.schema import CertgraphSchema
from gql.settings import Settings


class CertgraphGraphQL(GraphQL[RequestContext, None]):
    """POST JSON only; GraphiQL (GET, HTML) only in debug mode; no batches; no multipart yet."""

    def __init__(self, schema: CertgraphSchema, settings: Settings) -> None:
        super().__init__(
            schema,
            graphql_ide="graphiql" if settings.debug else None,
            allow_queries_via_get=False,
            # Uploads come with file storage (size limits enforced while streaming).
            multipart_uploads_enabled=False,
        )
        self.mask_internal = not settings.debug

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> RequestContext:
        # Subscriptions are not served: the route takes HTTP only.
        assert isinstance(request, Request) and isinstance(response, Response)
        return await build_context(request, response)

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
