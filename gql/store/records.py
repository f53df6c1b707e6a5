"""Immutable rows the store reads with Tortoise's `.values()` / `.values_list()` for the
read paths: converted by the ORM, without building a model per row."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from gql.store.models import EvidenceStatus, ProgressStatus, Role


@dataclass(frozen=True, slots=True)
class CourseRow:
    id: int
    name: str
    description: str
    duration_minutes: int | None
    published_at: datetime


@dataclass(frozen=True, slots=True)
class CourseLinkRow:
    """A certification's course: a certification_course row with its course."""

    id: int
    certification_id: int
    course_id: int
    mandatory: bool
    position: int
    course: CourseRow


@dataclass(frozen=True, slots=True)
class ProgressRow:
    """A learner's progress on a course; `id` None for a row not yet written."""

    id: int | None
    learner_id: int
    course_id: int
    percent: int
    status: ProgressStatus
    started_at: datetime | None
    completed_at: datetime | None
    attempt_started_at: datetime | None
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class TokenUser:
    """The columns of a token's user that make an Actor."""

    id: int
    name: str
    email: str
    role: Role
    manager_id: int | None


@dataclass(frozen=True, slots=True)
class TokenRow:
    """An unrevoked api_token row with its user."""

    id: int
    last_used_at: datetime | None
    user: TokenUser


@dataclass(frozen=True, slots=True)
class LearnerRow:
    """What the access rules read of a user."""

    id: int
    manager_id: int | None


@dataclass(frozen=True, slots=True)
class AwardRecord:
    """An award: one per enrollment and cycle."""

    id: int
    enrollment_id: int
    cycle: int
    awarded_at: datetime
    expires_at: datetime | None


@dataclass(frozen=True, slots=True)
class EvidenceRecord:
    """An evidence submission and its review."""

    id: int
    enrollment_id: int
    filename: str
    content_type: str
    size_bytes: int
    sha256: str
    status: EvidenceStatus
    submitted_at: datetime
    completed_on: date | None
    note: str | None
    reviewed_at: datetime | None
    review_comment: str | None
    reviewed_by_id: int | None
