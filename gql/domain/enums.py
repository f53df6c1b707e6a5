"""The domain's enums, as the layers above name them.

Those whose values are stored in columns are the product's vocabulary (gql.vocabulary);
EnrollmentStatus (gql.domain.status), the sorts (gql.domain.pages), the review
decision and the error codes are the domain's own.
"""

from __future__ import annotations

from gql.domain.errors import ErrorCode
from gql.domain.evidence import ReviewDecision
from gql.domain.pages import CertificationSort, CourseSort
from gql.domain.status import EnrollmentStatus
from gql.vocabulary import (
    CertificationKind,
    CertificationState,
    CertificationType,
    EnrollmentOrigin,
    EvidenceStatus,
    ProgressStatus,
    Role,
)

__all__ = [
    "CertificationKind",
    "CertificationSort",
    "CertificationState",
    "CertificationType",
    "CourseSort",
    "EnrollmentOrigin",
    "EnrollmentStatus",
    "ErrorCode",
    "EvidenceStatus",
    "ProgressStatus",
    "ReviewDecision",
    "Role",
]
