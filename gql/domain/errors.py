"""Typed domain errors. Each carries the ErrorCode of contract.graphql that clients see.

`DomainError`s are expected failures (bad input, business rules): the API turns them into
`UserError`s in mutation payloads, or GraphQL errors with `extensions.code` in queries.
`AccessError`s (UNAUTHENTICATED, FORBIDDEN) are always GraphQL errors.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

# Text for people, translated by the API into the request's language; re-exported so the
# domain's modules take it with their errors.
from gql.i18n import t as t


class ErrorCode(StrEnum):
    INVALID_INPUT = "INVALID_INPUT"
    NOT_FOUND = "NOT_FOUND"
    CONFLICT = "CONFLICT"
    NOT_ALLOWED = "NOT_ALLOWED"
    FILE_TOO_LARGE = "FILE_TOO_LARGE"
    UNSUPPORTED_FILE_TYPE = "UNSUPPORTED_FILE_TYPE"
    POLICY_UNKNOWN = "POLICY_UNKNOWN"
    POLICY_CONFIG_INVALID = "POLICY_CONFIG_INVALID"
    UPLOAD_REFUSED = "UPLOAD_REFUSED"  # a certgraph_check_upload plugin refused the file
    RATE_LIMITED = "RATE_LIMITED"


class DomainError(Exception):
    """`message` is English; when it is a Message (made with `t`) the API renders it in the
    request's language."""

    code: ErrorCode = ErrorCode.INVALID_INPUT

    def __init__(self, message: str, field: Sequence[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field: tuple[str, ...] | None = tuple(field) if field else None


class InvalidInput(DomainError):
    code = ErrorCode.INVALID_INPUT


class NotFound(DomainError):
    code = ErrorCode.NOT_FOUND


class Conflict(DomainError):
    """`existing`: (type name, pk) of the object that already holds the value, when the
    caller may learn it (a re-run then converges on it: docs/api.md, "External IDs")."""

    code = ErrorCode.CONFLICT

    def __init__(
        self,
        message: str,
        field: Sequence[str] | None = None,
        *,
        existing: tuple[str, int] | None = None,
    ) -> None:
        super().__init__(message, field)
        self.existing = existing


class NotAllowed(DomainError):
    code = ErrorCode.NOT_ALLOWED


class FileTooLarge(DomainError):
    code = ErrorCode.FILE_TOO_LARGE


class UnsupportedFileType(DomainError):
    code = ErrorCode.UNSUPPORTED_FILE_TYPE


class PolicyUnknown(DomainError):
    code = ErrorCode.POLICY_UNKNOWN


class PolicyConfigInvalid(DomainError):
    code = ErrorCode.POLICY_CONFIG_INVALID


class UploadRefused(DomainError):
    code = ErrorCode.UPLOAD_REFUSED


class DomainErrors(DomainError):
    """Several refusals at once, each at its own field (a bulk call's rows, in input order);
    the API answers each as its own UserError. Its code is the first one's."""

    def __init__(self, errors: Sequence[DomainError]) -> None:
        if not errors:
            raise ValueError("DomainErrors needs at least one error")
        super().__init__(
            t("{count} error(s): {first}", count=len(errors), first=errors[0].message),
            errors[0].field,
        )
        self.errors: tuple[DomainError, ...] = tuple(errors)
        self.code = errors[0].code


class AccessError(Exception):
    code = "FORBIDDEN"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Unauthenticated(AccessError):
    code = "UNAUTHENTICATED"


class Forbidden(AccessError):
    code = "FORBIDDEN"
