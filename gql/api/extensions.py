"""The authentication gate: in debug mode an unauthenticated request may still run an
introspection-only document (GraphiQL's schema fetch); nothing else runs without a viewer."""

from __future__ import annotations

from collections.abc import Iterator

from graphql import ExecutionResult as GraphQLExecutionResult
from graphql import FieldNode, GraphQLError, get_operation_ast
from strawberry.extensions import SchemaExtension

from gql.api.context import RequestContext
from gql.domain.errors import Unauthenticated
from gql.metrics import GRAPHQL_ERRORS_KEY, OPERATION_KEY


def _only_introspection(execution_context: object) -> bool:
    document = getattr(execution_context, "graphql_document", None)
    if document is None:
        return False
    operation = get_operation_ast(document, getattr(execution_context, "operation_name", None))
    if operation is None:
        return False
    return all(
        isinstance(selection, FieldNode) and selection.name.value.startswith("__")
        for selection in operation.selection_set.selections
    )


class AuthenticationGate(SchemaExtension):
    """Refuse to execute anything for an unauthenticated request: one UNAUTHENTICATED error.

    The document is still parsed and validated first (limits apply to everyone), but no
    resolver runs. The HTTP status is 401 with `WWW-Authenticate: Bearer`, the body a
    GraphQL response whose only error has extensions.code UNAUTHENTICATED. Introspection-only
    documents (GraphiQL's schema fetch, in debug mode) need no token.
    """

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context.context
        authenticated = isinstance(context, RequestContext) and context.actor is not None
        if not authenticated and not _only_introspection(self.execution_context):
            refusal = Unauthenticated("authentication required")
            if isinstance(context, RequestContext):
                refusal = context.auth_error or refusal
                context.response.status_code = 401
                context.response.headers["WWW-Authenticate"] = 'Bearer realm="certgraph"'
            self.execution_context.result = GraphQLExecutionResult(
                data=None,
                errors=[GraphQLError(refusal.message, original_error=refusal)],
            )
        yield


class RequestFacts(SchemaExtension):
    """Leaves the operation's name and whether it answered with errors in the request's scope
    state, where gql.metrics reads them when the answer is done."""

    def on_operation(self) -> Iterator[None]:
        yield
        context = self.execution_context.context
        if not isinstance(context, RequestContext):
            return
        state = context.request.scope.setdefault("state", {})
        name = self.execution_context.operation_name
        document = self.execution_context.graphql_document
        if name is None and document is not None:
            operation = get_operation_ast(document)
            name = operation.name.value if operation is not None and operation.name else None
        state[OPERATION_KEY] = name
        result = self.execution_context.result
        state[GRAPHQL_ERRORS_KEY] = bool(result is not None and result.errors)
