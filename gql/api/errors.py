"""How failures reach clients: a mutation's expected failures as payload `errors`, access and
read failures as GraphQL errors with `extensions.code`, anything else masked with the request
id while the log keeps the traceback (docs/api.md, "Errors")."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

import strawberry
from graphql import GraphQLError, GraphQLSyntaxError
from strawberry.extensions import MaskErrors

from gql import i18n
from gql.api.enums import ErrorCode
from gql.domain.errors import AccessError, Conflict, DomainError, DomainErrors
from gql.vocabulary import encode_id

log = logging.getLogger("certgraph.api")


INTERNAL_ERROR_MESSAGE = "Internal server error."
INTERNAL_ERROR_CODE = "INTERNAL_SERVER_ERROR"
PARSE_FAILED_CODE = "GRAPHQL_PARSE_FAILED"
VALIDATION_FAILED_CODE = "GRAPHQL_VALIDATION_FAILED"
# graphql-core's hints name types, fields, arguments and enum values the client did not
# ask for: in production they map the schema for someone who may not introspect it.
_SUGGESTION = re.compile(r"\s*Did you mean [^?]*\?")


@strawberry.type(description="An expected failure of a mutation: bad input or a business rule.")
class UserError:
    code: ErrorCode
    message: str
    field: list[str] | None = strawberry.field(
        default=None, description="Path of the offending input field, when there is one."
    )
    existing_id: strawberry.ID | None = strawberry.field(
        default=None,
        description=(
            "CONFLICT over a unique value (an externalId, a user's email): the ID of the "
            "object that holds it already, so a re-run can use it instead of creating again."
        ),
    )

    @classmethod
    def of(cls, error: DomainError, language: str = i18n.SOURCE_LANGUAGE) -> UserError:
        existing = error.existing if isinstance(error, Conflict) else None
        return cls(
            code=error.code,
            message=i18n.render(error.message, language),
            field=list(error.field) if error.field else None,
            existing_id=None if existing is None else strawberry.ID(encode_id(*existing)),
        )


def user_errors(error: DomainError, language: str = i18n.SOURCE_LANGUAGE) -> list[UserError]:
    """The UserErrors of a refusal: one, or one per error of a DomainErrors (a bulk call's),
    their messages in `language`."""
    if isinstance(error, DomainErrors):
        return [UserError.of(each, language) for each in error.errors]
    return [UserError.of(error, language)]


def is_ours(error: GraphQLError) -> bool:
    return isinstance(error.original_error, DomainError | AccessError)


def is_internal(error: GraphQLError) -> bool:
    """An error raised while resolving that is not one of ours is a bug, to be masked.

    Errors without a path come from parsing, validation or variable coercion: they describe
    the client's document and are safe to show.
    """
    return error.path is not None and not is_ours(error)


def code_of(error: GraphQLError) -> str:
    original = error.original_error
    if isinstance(original, DomainError):
        return str(original.code)
    if isinstance(original, AccessError):
        return original.code
    if is_internal(error):
        return INTERNAL_ERROR_CODE
    given = (error.extensions or {}).get("code")
    if isinstance(given, str):
        return given  # a refusal of our own extensions (the cost limit) names itself
    if isinstance(error, GraphQLSyntaxError):
        return PARSE_FAILED_CODE
    return VALIDATION_FAILED_CODE


def request_id_of(context: Any) -> str | None:
    request_id = getattr(context, "request_id", None)
    return request_id if isinstance(request_id, str) else None


def language_of(context: Any) -> str:
    language = getattr(context, "language", None)
    return language if isinstance(language, str) else i18n.SOURCE_LANGUAGE


def log_errors(errors: Sequence[GraphQLError], context: Any) -> None:
    """Log before masking: internal errors with their traceback, the rest in one line."""
    request_id = request_id_of(context)
    for error in errors:
        if is_internal(error):
            log.error(
                "internal error in request %s at %s: %s",
                request_id,
                ".".join(str(p) for p in error.path or ()),
                error.message,
                exc_info=error.original_error,
            )
        else:
            log.info("request %s refused: %s: %s", request_id, code_of(error), error.message)


def shape_error(
    error: GraphQLError,
    *,
    mask_internal: bool,
    request_id: str | None,
    language: str = i18n.SOURCE_LANGUAGE,
) -> GraphQLError:
    """Give the error an `extensions.code`; replace an internal one by a masked copy; a
    refusal of ours is told in `language`.

    Idempotent, so errors may pass through it twice (see CertgraphGraphQL.process_result).
    """
    if is_internal(error):
        if mask_internal:
            error = GraphQLError(
                INTERNAL_ERROR_MESSAGE,
                nodes=error.nodes,
                source=error.source,
                positions=error.positions,
                path=error.path,
            )
        error.extensions = {"code": INTERNAL_ERROR_CODE, "requestId": request_id}
        return error
    extensions: dict[str, Any] = {**(error.extensions or {}), "code": code_of(error)}
    if mask_internal and _SUGGESTION.search(error.message):
        error = GraphQLError(
            _SUGGESTION.sub("", error.message),
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            path=error.path,
            original_error=error.original_error,
        )
    original = error.original_error
    if isinstance(original, DomainError | AccessError) and language != i18n.SOURCE_LANGUAGE:
        error = GraphQLError(
            i18n.render(original.message, language),
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            path=error.path,
            original_error=original,
        )
    if isinstance(original, DomainError) and original.field:
        extensions["field"] = list(original.field)
    error.extensions = extensions
    return error


class ShapeErrors(MaskErrors):
    """MaskErrors with an allow-list: only our own errors (`DomainError`, `AccessError`) and
    document errors (no path) pass unmasked; every error gets an `extensions.code`."""

    def __init__(self, mask_internal: bool = True) -> None:
        super().__init__(should_mask_error=is_internal, error_message=INTERNAL_ERROR_MESSAGE)
        self.mask_internal = mask_internal

    def _process_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        request_id = request_id_of(self.execution_context.context)
        return [
            shape_error(
                error,
                mask_internal=self.mask_internal,
                request_id=request_id,
                language=language_of(self.execution_context.context),
            )
            for error in errors
        ]
