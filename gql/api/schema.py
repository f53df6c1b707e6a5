"""The schema, built from settings: production defaults unless CERTGRAPH_DEBUG is true."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import strawberry
from graphql import GraphQLError, GraphQLSchema
from strawberry.extensions import (
    AddValidationRules,
    DisableIntrospection,
    MaxTokensLimiter,
    ParserCache,
    SchemaExtension,
    ValidationCache,
)
from strawberry.printer import print_schema
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext

from gql.api.admin_assignments import AssignmentMutations
from gql.api.admin_bulk import BulkMutations, ExternalIdQuery
from gql.api.admin_exports import ExportMutations
from gql.api.admin_people import PeopleMutations
from gql.api.admin_queries import AdminQuery
from gql.api.audit import AuditQuery
from gql.api.cost import CostLimit
from gql.api.errors import ShapeErrors, log_errors
from gql.api.execution import execution_context_class
from gql.api.extensions import AuthenticationGate, RequestFacts
from gql.api.limits import document_limits_rule
from gql.api.mutations import Mutation as CoreMutation
from gql.api.persisted import PersistedOnlyGate
from gql.api.queries import Query as CoreQuery
from gql.api.scalars import SCALAR_MAP
from gql.api.subscriptions import Subscription, SubscriptionsOverWebSocket
from gql.api.text import NulRefusal
from gql.api.tokens import TokenMutations
from gql.api.uploads import FileMutations
from gql.api.webhooks import WebhookMutations, WebhookQuery
from gql.settings import Settings

# The Mutation root: the use cases of gql.api.mutations plus the file, webhook and API token
# mutations.
Mutation = merge_types(
    "Mutation",
    (CoreMutation, FileMutations, WebhookMutations, TokenMutations, PeopleMutations),
)
Mutation = merge_types("Mutation", (Mutation, BulkMutations))  # createUsers, reviewEvidenceBatch
Mutation = merge_types("Mutation", (Mutation, ExportMutations))  # exportEnrollments
Mutation = merge_types("Mutation", (Mutation, AssignmentMutations))  # unassign, retire/deleteCourse
# The Query root: the reads of gql.api.queries plus the audit log and webhooks (admins).
Query = merge_types("Query", (CoreQuery, AuditQuery, WebhookQuery, AdminQuery))
Query = merge_types("Query", (Query, ExternalIdQuery))  # userByExternalId, ...


# A backstop: validation is linear (gql/api/limits.py), so no document within the token limit
# comes near this; it is wide enough that a loaded machine never trips it on a valid one.
VALIDATION_BUDGET_SECONDS = 5.0


class CertgraphSchema(strawberry.Schema):
    @property
    def graphql_schema(self) -> GraphQLSchema:
        """The graphql-core schema strawberry built (what validation and execution use)."""
        return self._schema

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        log_errors(errors, execution_context.context if execution_context else None)


def schema_extensions(
    settings: Settings,
) -> list[type[SchemaExtension] | Callable[[], SchemaExtension]]:
    """Classes or factories only: an instance would be shared by concurrent requests."""
    # One rule class per schema: a new class per request would make ValidationCache miss.
    limits = document_limits_rule(
        max_depth=settings.max_query_depth,
        max_aliases=settings.max_aliases,
        budget_seconds=VALIDATION_BUDGET_SECONDS,
    )
    extensions: list[type[SchemaExtension] | Callable[[], SchemaExtension]] = [
        lambda: MaxTokensLimiter(max_token_count=settings.max_tokens),
        ParserCache,
        lambda: AddValidationRules([limits]),
    ]
    if not settings.debug:
        extensions.append(DisableIntrospection)
    extensions += [
        ValidationCache,
        PersistedOnlyGate,  # persisted-only mode over WebSocket (HTTP: gql.api.view)
        AuthenticationGate,
        SubscriptionsOverWebSocket,
        NulRefusal,
        lambda: CostLimit(
            max_cost=settings.max_query_cost,
            cost_unit=settings.rate_limit_cost_unit,
            report=settings.debug,
        ),
        lambda: ShapeErrors(mask_internal=not settings.debug),
        RequestFacts,
    ]
    return extensions


def build_schema(
    settings: Settings | None = None,
    extra_extensions: Sequence[type[SchemaExtension]] = (),
) -> CertgraphSchema:
    """`extra_extensions` run innermost (the app factory's tracing, when on)."""
    settings = settings or Settings()
    return CertgraphSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,  # over WebSocket (gql.api.subscriptions)
        extensions=[*schema_extensions(settings), *extra_extensions],
        execution_context_class=execution_context_class(),
        config=StrawberryConfig(
            disable_field_suggestions=not settings.debug,
            scalar_map=SCALAR_MAP,
        ),
    )


def print_sdl() -> str:
    """The schema as SDL: schema.graphql at the repository root is exactly this."""
    return print_schema(build_schema()) + "\n"
