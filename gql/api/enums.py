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
        "(e.g. reviewing your own evidence)."
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
