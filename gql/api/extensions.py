"""Schema extensions of our own: the authentication gate and reusable validation rules."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from graphql import ExecutionResult as GraphQLExecutionResult
from graphql import FieldNode, GraphQLError, get_operation_ast
from strawberry.extensions import AddValidationRules, SchemaExtension

from gql.api.context import RequestContext
from gql.domain.errors import Unauthenticated


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


def with_shared_rules(extension: AddValidationRules) -> Callable[[], AddValidationRules]:
    """A factory of per-request extensions that reuse `extension`'s validation-rule classes.

    Strawberry's limiters build a new rule class per instance; a new class per request would
    make every ValidationCache lookup a miss. Reusing the classes keeps the cache useful, and
    a fresh extension per request keeps no state shared between concurrent requests.
    """
    rules = list(extension.validation_rules)
    return lambda: AddValidationRules(rules)
