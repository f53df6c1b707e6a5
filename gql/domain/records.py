"""The domain's immutable read records, as the store produces them (gql.store.records)."""

from __future__ import annotations

from gql.store.records import CourseLinkRow, CourseRow, LearnerRow, ProgressRow

__all__ = ["CourseLinkRow", "CourseRow", "LearnerRow", "ProgressRow"]
