"""The domain's immutable read records, as the store produces them (gql.store.records)."""

from __future__ import annotations

from gql.store.records import (
    AwardRecord,
    CourseLinkRow,
    CourseRow,
    EvidenceRecord,
    LearnerRow,
    ProgressRow,
)

__all__ = [
    "AwardRecord",
    "CourseLinkRow",
    "CourseRow",
    "EvidenceRecord",
    "LearnerRow",
    "ProgressRow",
]
