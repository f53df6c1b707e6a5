"""The domain's read model: the immutable records the store produces (gql.store.records),
named here for the API."""

from __future__ import annotations

from gql.store.records import (
    AuditRecord,
    AwardRecord,
    CertificationRecord,
    CourseLinkRecord,
    CourseRecord,
    EnrollmentRecord,
    EvidenceRecord,
    LearnerRecord,
    ProgressRecord,
    UserRecord,
)

__all__ = [
    "AuditRecord",
    "AwardRecord",
    "CertificationRecord",
    "CourseLinkRecord",
    "CourseRecord",
    "EnrollmentRecord",
    "EvidenceRecord",
    "LearnerRecord",
    "ProgressRecord",
    "UserRecord",
]
