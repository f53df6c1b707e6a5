"""The GraphQL enums are the domain's enums (gql.domain.enums), registered with strawberry once.

Each name below is the domain class itself (strawberry.enum marks it in place), so resolvers
return domain values unchanged and type checkers see ordinary enum classes.
"""

from __future__ import annotations

import strawberry

from gql.domain import enums as domain

strawberry.enum(domain.Role, name="Role")
strawberry.enum(domain.CertificationKind, name="CertificationKind")
strawberry.enum(
    domain.CertificationType,
    name="CertificationType",
    description=(
        "PERPETUAL: awarded once, never expires. "
        "RECURRING: expires after validityMonths and must be earned again."
    ),
)
strawberry.enum(domain.CertificationState, name="CertificationState")
strawberry.enum(domain.ProgressStatus, name="ProgressStatus")
strawberry.enum(domain.EvidenceStatus, name="EvidenceStatus")
strawberry.enum(domain.EnrollmentStatus, name="EnrollmentStatus")
strawberry.enum(domain.CertificationSort, name="CertificationSort")
strawberry.enum(domain.CourseSort, name="CourseSort")
strawberry.enum(domain.ReviewDecision, name="ReviewDecision")
strawberry.enum(
    domain.ErrorCode,
    name="ErrorCode",
    description=(
        "Why a mutation refused its input. NOT_ALLOWED: a business rule forbids it now "
        "(e.g. reviewing your own evidence). A GraphQL error's extensions.code is one of these "
        "or: UNAUTHENTICATED (HTTP 401), FORBIDDEN (HTTP 200), GRAPHQL_PARSE_FAILED, "
        "GRAPHQL_VALIDATION_FAILED, QUERY_COST_EXCEEDED, INTERNAL_SERVER_ERROR (HTTP 200); "
        "every other HTTP status answers the same JSON shape with one of BAD_REQUEST (400), "
        "BATCHING_NOT_SUPPORTED (400), MULTIPART_REFUSED (400), FORBIDDEN (403, a signed URL), "
        "NOT_FOUND (404), METHOD_NOT_ALLOWED (405), PAYLOAD_TOO_LARGE (413), "
        "UNSUPPORTED_MEDIA_TYPE (415), RATE_LIMITED (429), INTERNAL_SERVER_ERROR (500), "
        "REQUEST_TIMEOUT (504). See docs/api.md, Errors."
    ),
)

Role = domain.Role
CertificationKind = domain.CertificationKind
CertificationType = domain.CertificationType
CertificationState = domain.CertificationState
ProgressStatus = domain.ProgressStatus
EvidenceStatus = domain.EvidenceStatus
EnrollmentStatus = domain.EnrollmentStatus
CertificationSort = domain.CertificationSort
CourseSort = domain.CourseSort
ReviewDecision = domain.ReviewDecision
ErrorCode = domain.ErrorCode

__all__ = [
    "CertificationKind",
    "CertificationSort",
    "CertificationState",
    "CertificationType",
    "CourseSort",
    "EnrollmentStatus",
    "ErrorCode",
    "EvidenceStatus",
    "ProgressStatus",
    "ReviewDecision",
    "Role",
]
