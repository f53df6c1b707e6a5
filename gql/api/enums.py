"""The GraphQL enums are the domain's own enums, registered with strawberry once.

Each name below is the domain class itself (strawberry.enum marks it in place), so resolvers
return domain values unchanged and type checkers see ordinary enum classes.
"""

from __future__ import annotations

import strawberry

from gql.domain import errors, evidence, pages, status
from gql.store import models

strawberry.enum(models.Role, name="Role")
strawberry.enum(models.CertificationKind, name="CertificationKind")
strawberry.enum(
    models.CertificationType,
    name="CertificationType",
    description=(
        "PERPETUAL: awarded once, never expires. "
        "RECURRING: expires after validityMonths and must be earned again."
    ),
)
strawberry.enum(models.CertificationState, name="CertificationState")
strawberry.enum(models.ProgressStatus, name="ProgressStatus")
strawberry.enum(models.EvidenceStatus, name="EvidenceStatus")
strawberry.enum(status.EnrollmentStatus, name="EnrollmentStatus")
strawberry.enum(pages.CertificationSort, name="CertificationSort")
strawberry.enum(pages.CourseSort, name="CourseSort")
strawberry.enum(evidence.ReviewDecision, name="ReviewDecision")
strawberry.enum(
    errors.ErrorCode,
    name="ErrorCode",
    description=(
        "Why a mutation refused its input. NOT_ALLOWED: a business rule forbids it now "
        "(e.g. reviewing your own evidence)."
    ),
)

Role = models.Role
CertificationKind = models.CertificationKind
CertificationType = models.CertificationType
CertificationState = models.CertificationState
ProgressStatus = models.ProgressStatus
EvidenceStatus = models.EvidenceStatus
EnrollmentStatus = status.EnrollmentStatus
CertificationSort = pages.CertificationSort
CourseSort = pages.CourseSort
ReviewDecision = evidence.ReviewDecision
ErrorCode = errors.ErrorCode

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
